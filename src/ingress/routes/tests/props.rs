//! The route table against a slow, obvious reading of the Kubernetes rules (property tests),
//! and rule paths normalised as request paths are.

use super::*;

/// A path as routing sees it: normalised (`router::http::route` does this to requests, and
/// `build` to rules), `None` when it cannot be.
fn normalized(path: &str) -> Option<String> {
    let options = crate::ingress::NormalizeOptions {
        keep_encoded_slashes: true,
    };
    crate::ingress::normalize_target(path, options)
        .ok()
        .map(|p| p.into_owned())
}

/// The Kubernetes definition, written the slow and obvious way: split into elements, ignore a
/// trailing slash, compare element-wise; the longest match wins, then `Exact`, then the first.
/// Rule paths are taken as routing sees them, normalised.
fn reference_lookup(rules: &[(String, PathType)], valid: &[bool], request: &str) -> Option<usize> {
    fn elements(path: &str) -> Vec<&str> {
        let mut elements: Vec<&str> = path.split('/').collect();
        while elements.last() == Some(&"") {
            elements.pop();
        }
        elements
    }
    let request = request.split('?').next().unwrap_or_default();
    let request = if request.is_empty() { "/" } else { request };
    let mut best: Option<(usize, bool, usize)> = None; // (length, exact, index)
    for (i, (path, path_type)) in rules.iter().enumerate() {
        if !valid[i] {
            continue;
        }
        let path = &normalized(path).unwrap_or_default();
        let (matched, len) = match path_type {
            Exact => (path == request, path.len()),
            Prefix | ImplementationSpecific => {
                let rule = elements(path);
                let req = elements(request);
                let is_prefix = rule.is_empty() || req.starts_with(&rule);
                (is_prefix, path.trim_end_matches('/').len())
            }
            PathType::RegularExpression => (false, 0), // the strategy makes none
        };
        let candidate = (len, *path_type == Exact, i);
        let better =
            |(bl, be, _): (usize, bool, usize)| len > bl || (len == bl && candidate.1 && !be);
        if matched && best.is_none_or(better) {
            best = Some(candidate);
        }
    }
    best.map(|(_, _, i)| i)
}

fn small_path() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec!["/", "a", "b", "ab", "/a", "/b", "//", "?"]),
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn lookup_never_panics(authority in any::<String>(), path in any::<String>()) {
        let t = table(
            vec![
                rule(Some("*.example.com"), "/a", Prefix, "w"),
                rule(Some("example.com"), "/a/b", Exact, "e"),
                rule(None, "/", Prefix, "any"),
                rule(None, "/\u{e9}/x", ImplementationSpecific, "u"),
            ],
            vec![("example.com", "d")],
            None,
        );
        let host = Hostname::from_authority(&authority);
        let _ = t.lookup(host.as_ref(), &path);
        let _ = t.lookup(None, &path);
        let _ = t.lookup(Some(&self::host("foo.example.com")), &path);
    }

    #[test]
    fn lookup_agrees_with_the_element_wise_definition(
        rules in prop::collection::vec(
            (small_path(), prop::sample::select(vec![Exact, Prefix, ImplementationSpecific])),
            0..8,
        ),
        requests in prop::collection::vec(small_path(), 1..8),
    ) {
        let (t, conflicts) = RouteTable::build(
            rules
                .iter()
                .map(|(path, path_type)| Rule {
                    host: None,
                    path: path.clone(),
                    path_type: *path_type,
                    backend: (),
                    conditions: Conditions::default(),
                })
                .collect(),
            vec![],
            None,
        );
        let mut valid = vec![true; rules.len()];
        for conflict in &conflicts {
            if let Conflict::Invalid { rule, .. } = conflict {
                valid[*rule] = false;
            }
        }
        for request in &requests {
            // A request whose target cannot be normalised is refused before routing.
            let Some(request) = normalized(request) else { continue };
            let request = request.split('?').next().unwrap_or_default();
            let got = match t.lookup(None, request) {
                Lookup::Matched { rule, .. } => Some(rule),
                _ => None,
            };
            let want = reference_lookup(&rules, &valid, request);
            prop_assert_eq!(got, want, "request {:?}", request);
        }
    }
}

#[test]
fn rule_paths_are_normalised_as_request_paths_are() {
    let t = table(
        vec![
            rule(None, "/%7Euser", Prefix, "tilde"),
            rule(None, "/a%3ab", Exact, "colon"),
            rule(None, "/x//y/../z", ImplementationSpecific, "merged"),
        ],
        vec![],
        None,
    );
    // Requests arrive normalised (router::http::route): `/~user`, `/a%3Ab`, `/x/z`.
    assert_eq!(backend_for(&t, "a.test", "/~user/x"), Some("tilde"));
    assert_eq!(backend_for(&t, "a.test", "/a%3Ab"), Some("colon"));
    assert_eq!(backend_for(&t, "a.test", "/x/z"), Some("merged"));
}

#[test]
fn a_rule_path_that_cannot_be_normalised_is_left_out() {
    let (_, conflicts) = RouteTable::build(
        vec![rule(None, "/a\\b", ImplementationSpecific, "x")],
        vec![],
        None::<&str>,
    );
    assert!(
        matches!(
            &conflicts[..],
            [Conflict::Invalid {
                reason: PathError::Normalize { .. },
                ..
            }]
        ),
        "{conflicts:?}"
    );
}

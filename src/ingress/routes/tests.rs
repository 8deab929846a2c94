use super::*;
use proptest::prelude::*;

use PathType::{Exact, ImplementationSpecific, Prefix};

fn rule(
    host: Option<&str>,
    path: &str,
    path_type: PathType,
    backend: &'static str,
) -> Rule<&'static str> {
    Rule {
        host: host.map(|h| HostPattern::parse(h).unwrap()),
        path: path.to_owned(),
        path_type,
        backend,
        conditions: Conditions::default(),
    }
}

fn pattern(text: &str) -> HostPattern {
    HostPattern::parse(text).unwrap()
}

fn host(authority: &str) -> Hostname {
    Hostname::from_authority(authority).unwrap()
}

/// Builds a table that must have no conflicts.
fn table(
    rules: Vec<Rule<&'static str>>,
    host_defaults: Vec<(&str, &'static str)>,
    default: Option<&'static str>,
) -> RouteTable<&'static str> {
    let host_defaults = host_defaults
        .into_iter()
        .map(|(h, b)| (pattern(h), b))
        .collect();
    let (table, conflicts) = RouteTable::build(rules, host_defaults, default);
    assert_eq!(conflicts, vec![]);
    table
}

fn backend_for(
    table: &RouteTable<&'static str>,
    authority: &str,
    path: &str,
) -> Option<&'static str> {
    let host = Hostname::from_authority(authority);
    table.lookup(host.as_ref(), path).backend().copied()
}

/// One row of the examples: the rule paths, the requests, and the rule that must match.
type Example = (
    &'static [(&'static str, PathType)],
    &'static [&'static str],
    Option<usize>,
);

/// The "Examples" table of the Kubernetes Ingress documentation (Concepts → Services, Load
/// Balancing, and Networking → Ingress → Path types → Examples), row by row. `want` is the
/// index of the rule that must match, or `None` for "no, uses default backend".
const KUBERNETES_EXAMPLES: &[Example] = &[
    // Prefix | / | (all paths) | Yes
    (
        &[("/", Prefix)],
        &["/", "/foo", "/foo/", "/aaa/bbb/ccc", "//", "/Foo?x=/y"],
        Some(0),
    ),
    // Exact | /foo | /foo | Yes
    (&[("/foo", Exact)], &["/foo"], Some(0)),
    // Exact | /foo | /bar | No
    (&[("/foo", Exact)], &["/bar"], None),
    // Exact | /foo | /foo/ | No
    (&[("/foo", Exact)], &["/foo/"], None),
    // Exact | /foo/ | /foo | No
    (&[("/foo/", Exact)], &["/foo"], None),
    // Prefix | /foo | /foo, /foo/ | Yes
    (&[("/foo", Prefix)], &["/foo", "/foo/"], Some(0)),
    // Prefix | /foo/ | /foo, /foo/ | Yes
    (&[("/foo/", Prefix)], &["/foo", "/foo/"], Some(0)),
    // Prefix | /aaa/bb | /aaa/bbb | No
    (&[("/aaa/bb", Prefix)], &["/aaa/bbb"], None),
    // Prefix | /aaa/bbb | /aaa/bbb | Yes
    (&[("/aaa/bbb", Prefix)], &["/aaa/bbb"], Some(0)),
    // Prefix | /aaa/bbb/ | /aaa/bbb | Yes, ignores trailing slash
    (&[("/aaa/bbb/", Prefix)], &["/aaa/bbb"], Some(0)),
    // Prefix | /aaa/bbb | /aaa/bbb/ | Yes, matches trailing slash
    (&[("/aaa/bbb", Prefix)], &["/aaa/bbb/"], Some(0)),
    // Prefix | /aaa/bbb | /aaa/bbb/ccc | Yes, matches subpath
    (&[("/aaa/bbb", Prefix)], &["/aaa/bbb/ccc"], Some(0)),
    // Prefix | /aaa/bbb | /aaa/bbbxyz | No, does not match string prefix
    (&[("/aaa/bbb", Prefix)], &["/aaa/bbbxyz"], None),
    // Prefix | /, /aaa | /aaa/ccc | Yes, matches /aaa prefix
    (&[("/", Prefix), ("/aaa", Prefix)], &["/aaa/ccc"], Some(1)),
    // Prefix | /, /aaa, /aaa/bbb | /aaa/bbb | Yes, matches /aaa/bbb prefix
    (
        &[("/", Prefix), ("/aaa", Prefix), ("/aaa/bbb", Prefix)],
        &["/aaa/bbb"],
        Some(2),
    ),
    // Prefix | /, /aaa, /aaa/bbb | /ccc | Yes, matches / prefix
    (
        &[("/", Prefix), ("/aaa", Prefix), ("/aaa/bbb", Prefix)],
        &["/ccc"],
        Some(0),
    ),
    // Prefix | /aaa | /ccc | No, uses default backend
    (&[("/aaa", Prefix)], &["/ccc"], None),
    // Mixed | /foo (Prefix), /foo (Exact) | /foo | Yes, prefers Exact
    (&[("/foo", Prefix), ("/foo", Exact)], &["/foo"], Some(1)),
];

fn check_examples(prefix_as: PathType) {
    for (row, (paths, requests, want)) in KUBERNETES_EXAMPLES.iter().enumerate() {
        // The backend of each rule is its index in the row; `usize::MAX` is the default.
        let rule = |(i, &(path, path_type)): (usize, &(&str, PathType))| Rule {
            host: None,
            path: path.to_owned(),
            path_type: if path_type == Prefix {
                prefix_as
            } else {
                path_type
            },
            backend: i,
            conditions: Conditions::default(),
        };
        let in_order = paths.iter().enumerate().map(rule).collect();
        let (table, conflicts) = RouteTable::build(in_order, vec![], Some(usize::MAX));
        assert_eq!(conflicts, vec![], "row {row}");
        // The order of the rules must not matter either.
        let backwards = paths.iter().enumerate().rev().map(rule).collect();
        let (reversed, _) = RouteTable::build(backwards, vec![], Some(usize::MAX));
        for request in *requests {
            for t in [&table, &reversed] {
                let got = t.lookup(None, request);
                match want {
                    Some(i) => assert!(
                        matches!(got, Lookup::Matched { backend, .. } if backend == i),
                        "row {row}: {paths:?} with {request:?} gave {got:?}, want rule {i}"
                    ),
                    None => assert_eq!(
                        got,
                        Lookup::Default(&usize::MAX),
                        "row {row}: {paths:?} with {request:?}"
                    ),
                }
            }
        }
    }
}

#[test]
fn kubernetes_path_examples_hold() {
    check_examples(Prefix);
}

#[test]
fn implementation_specific_behaves_as_prefix_in_the_kubernetes_examples() {
    check_examples(ImplementationSpecific);
}

#[test]
fn matched_reports_the_input_index_of_the_rule() {
    let t = table(
        vec![
            rule(Some("a.com"), "/x", Prefix, "a-x"),
            rule(None, "/", Prefix, "any"),
            rule(Some("a.com"), "/x/y", Exact, "a-xy"),
        ],
        vec![],
        None,
    );
    assert_eq!(
        t.lookup(Some(&host("a.com")), "/x/y"),
        Lookup::Matched {
            backend: &"a-xy",
            rule: 2
        }
    );
    assert_eq!(
        t.lookup(Some(&host("a.com")), "/x/z"),
        Lookup::Matched {
            backend: &"a-x",
            rule: 0
        }
    );
    assert_eq!(
        t.lookup(Some(&host("b.com")), "/x"),
        Lookup::Matched {
            backend: &"any",
            rule: 1
        }
    );
}

#[test]
fn longest_path_wins_and_exact_wins_a_tie() {
    let t = table(
        vec![
            rule(None, "/foo/", Prefix, "prefix-foo"),
            rule(None, "/foo", Exact, "exact-foo"),
            rule(None, "/foo/", Exact, "exact-foo-slash"),
            rule(None, "/foo/bar", Prefix, "prefix-foo-bar"),
        ],
        vec![],
        None,
    );
    // `/foo/` as a prefix counts as `/foo`: a tie with the exact `/foo`, which wins.
    assert_eq!(backend_for(&t, "x", "/foo"), Some("exact-foo"));
    assert_eq!(backend_for(&t, "x", "/foo/"), Some("exact-foo-slash"));
    assert_eq!(backend_for(&t, "x", "/foo/baz"), Some("prefix-foo"));
    assert_eq!(backend_for(&t, "x", "/foo/bar/baz"), Some("prefix-foo-bar"));
    assert_eq!(backend_for(&t, "x", "/foo//bar"), Some("prefix-foo"));
}

#[test]
fn paths_are_case_sensitive() {
    let t = table(
        vec![
            rule(None, "/Foo", Exact, "exact"),
            rule(None, "/Bar", Prefix, "prefix"),
        ],
        vec![],
        None,
    );
    assert_eq!(backend_for(&t, "x", "/Foo"), Some("exact"));
    assert_eq!(backend_for(&t, "x", "/foo"), None);
    assert_eq!(backend_for(&t, "x", "/Bar/x"), Some("prefix"));
    assert_eq!(backend_for(&t, "x", "/bar/x"), None);
}

#[test]
fn query_string_is_ignored_and_empty_path_is_root() {
    let t = table(
        vec![
            rule(None, "/foo", Exact, "foo"),
            rule(None, "/", Exact, "root"),
        ],
        vec![],
        None,
    );
    assert_eq!(backend_for(&t, "x", "/foo?a=1"), Some("foo"));
    assert_eq!(backend_for(&t, "x", "/foo?"), Some("foo"));
    assert_eq!(backend_for(&t, "x", "/foo/?a"), None);
    assert_eq!(backend_for(&t, "x", ""), Some("root"));
    assert_eq!(backend_for(&t, "x", "?a=/foo"), Some("root"));
}

#[test]
fn empty_implementation_specific_path_matches_everything() {
    let t = table(
        vec![
            rule(None, "", ImplementationSpecific, "all"),
            rule(None, "/a", Prefix, "a"),
        ],
        vec![],
        None,
    );
    assert_eq!(backend_for(&t, "x", "/b"), Some("all"));
    assert_eq!(backend_for(&t, "x", "*"), Some("all"));
    assert_eq!(backend_for(&t, "x", "/a/b"), Some("a"));
}

#[test]
fn exact_host_beats_wildcard_which_beats_any_host() {
    let t = table(
        vec![
            rule(None, "/", Prefix, "any"),
            rule(Some("*.example.com"), "/", Prefix, "wildcard"),
            rule(Some("foo.example.com"), "/", Prefix, "exact"),
        ],
        vec![],
        None,
    );
    assert_eq!(backend_for(&t, "foo.example.com", "/"), Some("exact"));
    assert_eq!(backend_for(&t, "bar.example.com", "/"), Some("wildcard"));
    assert_eq!(backend_for(&t, "example.com", "/"), Some("any"));
    assert_eq!(backend_for(&t, "a.b.example.com", "/"), Some("any"));
    assert_eq!(backend_for(&t, "other.org", "/"), Some("any"));
    assert_eq!(t.lookup(None, "/").backend(), Some(&"any"));
}

#[test]
fn only_the_most_specific_host_group_is_searched() {
    let rules = vec![
        rule(None, "/any", Prefix, "any"),
        rule(Some("*.example.com"), "/wild", Prefix, "wildcard"),
        rule(Some("foo.example.com"), "/foo", Prefix, "exact"),
    ];
    let t = table(rules.clone(), vec![], None);
    assert_eq!(
        t.lookup(Some(&host("foo.example.com")), "/wild"),
        Lookup::NoPath
    );
    assert_eq!(
        t.lookup(Some(&host("foo.example.com")), "/any"),
        Lookup::NoPath
    );
    assert_eq!(
        t.lookup(Some(&host("bar.example.com")), "/any"),
        Lookup::NoPath
    );
    assert_eq!(
        backend_for(&t, "bar.example.com", "/wild/x"),
        Some("wildcard")
    );
    let t = table(
        rules,
        vec![("foo.example.com", "foo-default")],
        Some("global"),
    );
    assert_eq!(
        t.lookup(Some(&host("foo.example.com")), "/wild"),
        Lookup::HostDefault(&"foo-default")
    );
    assert_eq!(
        t.lookup(Some(&host("bar.example.com")), "/any"),
        Lookup::Default(&"global")
    );
}

#[test]
fn wildcard_group_covers_one_label_only() {
    let t = table(
        vec![rule(Some("*.foo.com"), "/", Prefix, "wildcard")],
        vec![],
        None,
    );
    assert_eq!(backend_for(&t, "bar.foo.com", "/"), Some("wildcard"));
    assert_eq!(
        t.lookup(Some(&host("baz.bar.foo.com")), "/"),
        Lookup::NoHost
    );
    assert_eq!(t.lookup(Some(&host("foo.com")), "/"), Lookup::NoHost);
}

#[test]
fn hosts_match_case_insensitively_and_without_port() {
    let t = table(
        vec![
            rule(Some("Example.COM"), "/", Prefix, "exact"),
            rule(Some("*.Example.com"), "/", Prefix, "wildcard"),
            rule(Some("[::1]"), "/", Prefix, "ipv6"),
            rule(Some("192.0.2.1"), "/", Prefix, "ipv4"),
        ],
        vec![],
        None,
    );
    for authority in [
        "example.com",
        "EXAMPLE.com:8443",
        "example.com.",
        "eXample.com.:80",
    ] {
        assert_eq!(
            backend_for(&t, authority, "/"),
            Some("exact"),
            "{authority}"
        );
    }
    for authority in ["WWW.example.com", "www.EXAMPLE.COM:443"] {
        assert_eq!(
            backend_for(&t, authority, "/"),
            Some("wildcard"),
            "{authority}"
        );
    }
    for authority in ["[::1]", "[::1]:443", "[0:0::1]:8080"] {
        assert_eq!(backend_for(&t, authority, "/"), Some("ipv6"), "{authority}");
    }
    assert_eq!(backend_for(&t, "192.0.2.1:80", "/"), Some("ipv4"));
}

#[test]
fn ip_hosts_are_never_covered_by_a_wildcard() {
    let t = table(
        vec![rule(Some("*.0.2.1"), "/", Prefix, "wildcard")],
        vec![],
        None,
    );
    assert_eq!(t.lookup(Some(&host("192.0.2.1")), "/"), Lookup::NoHost);
    assert_eq!(backend_for(&t, "a.0.2.1", "/"), Some("wildcard"));
}

#[test]
fn host_default_comes_before_the_global_default() {
    let t = table(
        vec![
            rule(Some("a.com"), "/api", Prefix, "a-api"),
            rule(Some("*.b.com"), "/api", Prefix, "b-api"),
        ],
        vec![("a.com", "a-default"), ("*.b.com", "b-default")],
        Some("global"),
    );
    assert_eq!(
        t.lookup(Some(&host("a.com")), "/web"),
        Lookup::HostDefault(&"a-default")
    );
    assert_eq!(
        t.lookup(Some(&host("x.b.com")), "/web"),
        Lookup::HostDefault(&"b-default")
    );
    assert_eq!(
        t.lookup(Some(&host("c.com")), "/api"),
        Lookup::Default(&"global")
    );
    assert_eq!(t.lookup(None, "/api"), Lookup::Default(&"global"));
}

#[test]
fn a_host_default_alone_makes_a_host_group() {
    let t = table(
        vec![rule(Some("*.example.com"), "/", Prefix, "wildcard")],
        vec![("foo.example.com", "foo-default")],
        None,
    );
    assert_eq!(
        t.lookup(Some(&host("foo.example.com")), "/"),
        Lookup::HostDefault(&"foo-default")
    );
    assert_eq!(backend_for(&t, "bar.example.com", "/"), Some("wildcard"));
}

#[test]
fn misses_without_defaults_say_whether_the_host_or_the_path_is_unknown() {
    let t = table(
        vec![rule(Some("a.com"), "/api", Prefix, "api")],
        vec![],
        None,
    );
    assert_eq!(t.lookup(Some(&host("a.com")), "/web"), Lookup::NoPath);
    assert_eq!(t.lookup(Some(&host("b.com")), "/api"), Lookup::NoHost);
    assert_eq!(t.lookup(None, "/api"), Lookup::NoHost);
    let any = table(vec![rule(None, "/api", Prefix, "api")], vec![], None);
    assert_eq!(any.lookup(Some(&host("b.com")), "/web"), Lookup::NoPath);
    assert_eq!(any.lookup(None, "/web"), Lookup::NoPath);
    assert_eq!(any.lookup(None, "/api").backend(), Some(&"api"));
}

#[test]
fn empty_table_answers_no_host_or_the_global_default() {
    let empty = RouteTable::<&str>::default();
    assert_eq!(empty.lookup(Some(&host("a.com")), "/"), Lookup::NoHost);
    let t = table(vec![], vec![], Some("global"));
    assert_eq!(
        t.lookup(Some(&host("a.com")), "/"),
        Lookup::Default(&"global")
    );
    assert_eq!(t.lookup(None, "/"), Lookup::Default(&"global"));
}

#[test]
fn duplicate_rules_keep_the_first_and_report_the_later() {
    let (t, conflicts) = RouteTable::build(
        vec![
            rule(Some("*.a.com"), "/foo", Prefix, "first"),
            rule(Some("*.a.com"), "/foo", Exact, "exact"),
            rule(Some("*.A.com"), "/foo", Prefix, "second"),
            rule(Some("x.a.com"), "/foo", Prefix, "other-host"),
            rule(Some("*.a.com"), "/foo/", Prefix, "trailing-slash"),
            rule(Some("*.a.com"), "/foo", ImplementationSpecific, "impl"),
            rule(None, "/foo", Exact, "any-1"),
            rule(None, "/foo", Exact, "any-2"),
        ],
        vec![],
        None,
    );
    let dup = |rule, first, host: Option<&str>, path: &str, path_type| Conflict::Duplicate {
        rule,
        first,
        host: host.map(pattern),
        path: path.to_owned(),
        path_type,
    };
    assert_eq!(
        conflicts,
        vec![
            dup(2, 0, Some("*.a.com"), "/foo", Prefix),
            dup(4, 0, Some("*.a.com"), "/foo/", Prefix),
            dup(5, 0, Some("*.a.com"), "/foo", ImplementationSpecific),
            dup(7, 6, None, "/foo", Exact),
        ]
    );
    assert_eq!(
        conflicts[0].to_string(),
        "rules[2] (Prefix \"/foo\" on host *.a.com) matches the same requests as rules[0], \
         which comes first; rules[2] is ignored"
    );
    assert_eq!(
        conflicts[3].to_string(),
        "rules[7] (Exact \"/foo\" on any host) matches the same requests as rules[6], \
         which comes first; rules[7] is ignored"
    );
    assert_eq!(backend_for(&t, "y.a.com", "/foo/bar"), Some("first"));
    assert_eq!(backend_for(&t, "y.a.com", "/foo"), Some("exact"));
    assert_eq!(backend_for(&t, "x.a.com", "/foo"), Some("other-host"));
    assert_eq!(backend_for(&t, "b.com", "/foo"), Some("any-1"));
}

#[test]
fn duplicate_host_defaults_keep_the_first_and_report_the_later() {
    let (t, conflicts) = RouteTable::build(
        vec![],
        vec![
            (pattern("a.com"), "first"),
            (pattern("*.a.com"), "wildcard"),
            (pattern("A.com."), "second"),
        ],
        None,
    );
    assert_eq!(
        conflicts,
        vec![Conflict::DuplicateHostDefault {
            index: 2,
            first: 0,
            host: pattern("a.com")
        }]
    );
    assert_eq!(
        conflicts[0].to_string(),
        "host_defaults[2] repeats the host a.com of host_defaults[0], which comes first; \
         host_defaults[2] is ignored"
    );
    assert_eq!(
        t.lookup(Some(&host("a.com")), "/"),
        Lookup::HostDefault(&"first")
    );
}

#[test]
fn invalid_rules_are_reported_with_their_index_and_reason() {
    let cases = [
        ("foo", Prefix, r#"path "foo" must start with '/'"#),
        ("", Exact, r#"path "" must start with '/'"#),
        ("", Prefix, r#"path "" must start with '/'"#),
        (
            "foo",
            ImplementationSpecific,
            r#"path "foo" must start with '/'"#,
        ),
        (
            "/foo?bar",
            Prefix,
            concat!(
                r#"path "/foo?bar" contains '?', so no request can match it "#,
                "(the query string and fragment are not part of the path)"
            ),
        ),
        (
            "/foo#top",
            ImplementationSpecific,
            concat!(
                r#"path "/foo#top" contains '#', so no request can match it "#,
                "(the query string and fragment are not part of the path)"
            ),
        ),
        (
            "/a//b",
            Prefix,
            r#"Prefix path "/a//b" must not contain "//""#,
        ),
        (
            "/a/./b",
            Exact,
            r#"Exact path "/a/./b" must not contain "/./""#,
        ),
        (
            "/a/../b",
            Prefix,
            r#"Prefix path "/a/../b" must not contain "/../""#,
        ),
        (
            "/a%2Fb",
            Exact,
            r#"Exact path "/a%2Fb" must not contain "%2F""#,
        ),
        (
            "/a%2fb",
            Prefix,
            r#"Prefix path "/a%2fb" must not contain "%2f""#,
        ),
        (
            "/a/..",
            Prefix,
            r#"Prefix path "/a/.." must not end with "/..""#,
        ),
        ("/a/.", Exact, r#"Exact path "/a/." must not end with "/.""#),
    ];
    let rules = cases
        .iter()
        .map(|&(path, path_type, _)| rule(None, path, path_type, "x"))
        .collect();
    let (t, conflicts) = RouteTable::build(rules, vec![], None);
    assert_eq!(conflicts.len(), cases.len());
    for (i, (conflict, (_, _, reason))) in conflicts.iter().zip(cases).enumerate() {
        assert!(matches!(conflict, Conflict::Invalid { rule, .. } if *rule == i));
        assert_eq!(
            conflict.to_string(),
            format!("rules[{i}]: {reason}; the rule is ignored")
        );
    }
    assert_eq!(t.lookup(None, "/a//b"), Lookup::NoHost);
    // The API server accepts these for ImplementationSpecific, and so do we.
    let (_, conflicts) = RouteTable::build(
        vec![rule(None, "/a//b/./c/..", ImplementationSpecific, "x")],
        vec![],
        None,
    );
    assert_eq!(conflicts, vec![]);
}

#[test]
fn path_type_uses_the_kubernetes_spelling() {
    for (json, path_type) in [
        (r#""Exact""#, Exact),
        (r#""Prefix""#, Prefix),
        (r#""ImplementationSpecific""#, ImplementationSpecific),
    ] {
        assert_eq!(serde_json::from_str::<PathType>(json).unwrap(), path_type);
        assert_eq!(serde_json::to_string(&path_type).unwrap(), json);
        assert_eq!(format!("\"{path_type}\""), json);
    }
    assert!(serde_json::from_str::<PathType>(r#""prefix""#).is_err());
}

/// Property tests against the element-wise definition, and rule-path normalisation.
mod props;

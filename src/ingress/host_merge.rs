//! Matching across routes on a Gateway listener: a request is matched against the rules of
//! every route whose hostnames cover its host, not only those of the most specific hostname.
//!
//! The Gateway API orders matches across all the routes that apply to a host (conformance
//! HTTPRouteMatchingAcrossRoutes: with one route for `example.com` serving `/` and another
//! for `*.com` serving `/v2`, `example.com/v2` goes to the second), while an Ingress serves a
//! host from one host group only. Both are served by the same [`RouteTable`], whose lookup
//! picks one group; so for a Gateway listener's table the build gives each host pattern a
//! copy of the rules of every wider pattern covering it (`*.x` covers hosts and wildcards
//! any depth under `x`; no hostname covers everything). The copies come after the table's own
//! rules, the most specific covering pattern first, so on a tie in match precedence (equal
//! paths and conditions' rank) the rule of the more specific hostname wins, as the spec's
//! hostname precedence says; a copy equal in path and conditions to a rule already there is
//! dropped, never reported as a conflict.
//!
//! Why copies at build time rather than a search of several groups per request: a lookup
//! stays one group probe, the cost of every request on every other table is unchanged, and
//! the copies are paid once per snapshot (rules × covering patterns, small in practice).
//!
//! [`RouteTable`]: super::RouteTable

use super::{HostPattern, Rule};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// Whether `wide` covers every host `narrow` covers, `*.x` reaching any depth under `x` and
/// `None` (no hostname) covering everything; a pattern never covers itself.
pub(super) fn covers(wide: Option<&HostPattern>, narrow: &HostPattern) -> bool {
    let suffix = match wide {
        None => return true,
        Some(HostPattern::Exact(_)) => return false,
        Some(HostPattern::Wildcard(suffix)) => suffix.as_str(),
    };
    let name = match narrow {
        HostPattern::Exact(name) | HostPattern::Wildcard(name) => name.as_str(),
    };
    name.strip_suffix(suffix)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// The copies to add after `rules` (as `(position of the source rule, copy)`): for each host
/// pattern in use, the rules of each pattern covering it, most specific first (longer
/// wildcard suffixes, then no hostname), each in input order.
pub(super) fn covering_copies<T: Clone>(rules: &[Rule<T>]) -> Vec<(usize, Rule<T>)> {
    let mut by_host: BTreeMap<Option<&HostPattern>, Vec<usize>> = BTreeMap::new();
    for (i, rule) in rules.iter().enumerate() {
        by_host.entry(rule.host.as_ref()).or_default().push(i);
    }
    let mut wide: Vec<Option<&HostPattern>> = by_host
        .keys()
        .copied()
        .filter(|h| !matches!(h, Some(HostPattern::Exact(_))))
        .collect();
    wide.sort_by_key(|h| match h {
        Some(pattern) => Reverse(pattern.to_string().len()),
        None => Reverse(0),
    });
    let mut copies = Vec::new();
    for narrow in by_host.keys().flatten() {
        for w in wide.iter().filter(|w| covers(**w, narrow)) {
            for &i in by_host.get(w).into_iter().flatten() {
                let mut copy = rules[i].clone();
                copy.host = Some((*narrow).clone());
                copies.push((i, copy));
            }
        }
    }
    copies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::PathType;

    fn pattern(text: &str) -> HostPattern {
        HostPattern::parse(text).unwrap()
    }

    fn rule(host: Option<&str>, to: &'static str) -> Rule<&'static str> {
        Rule {
            host: host.map(pattern),
            path: "/".into(),
            path_type: PathType::Prefix,
            backend: to,
            conditions: Default::default(),
        }
    }

    #[test]
    fn coverage_follows_gateway_wildcards() {
        let p = |t| pattern(t);
        assert!(covers(None, &p("example.com")));
        assert!(covers(Some(&p("*.com")), &p("example.com")));
        assert!(covers(Some(&p("*.com")), &p("a.b.example.com")));
        assert!(covers(Some(&p("*.com")), &p("*.example.com")));
        assert!(!covers(Some(&p("*.com")), &p("*.com")));
        assert!(!covers(Some(&p("*.com")), &p("com")));
        assert!(!covers(Some(&p("*.com")), &p("example.net")));
        assert!(!covers(Some(&p("*.example.com")), &p("badexample.com")));
        assert!(!covers(Some(&p("example.com")), &p("example.com")));
    }

    #[test]
    fn each_pattern_gets_its_covering_rules_most_specific_first() {
        let rules = vec![
            rule(Some("a.example.com"), "exact"),
            rule(None, "any"),
            rule(Some("*.com"), "com"),
            rule(Some("*.example.com"), "example"),
            rule(Some("other.net"), "net"),
        ];
        let got: Vec<(String, &str)> = covering_copies(&rules)
            .into_iter()
            .map(|(i, r)| (r.host.unwrap().to_string(), rules[i].backend))
            .collect();
        let want = [
            ("*.com", "any"),
            ("*.example.com", "com"),
            ("*.example.com", "any"),
            ("a.example.com", "example"),
            ("a.example.com", "com"),
            ("a.example.com", "any"),
            ("other.net", "any"),
        ];
        let mut got = got;
        got.sort_by_key(|(h, _)| h.clone());
        let want: Vec<(String, &str)> = want.iter().map(|(h, b)| (h.to_string(), *b)).collect();
        assert_eq!(got, want);
    }
}

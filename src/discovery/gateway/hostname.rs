//! Hostname intersection of a listener and a route (Gateway API spec, `HTTPRoute.spec.hostnames`
//! and `Listener.hostname`): which hosts a route serves through a listener.
//!
//! A pure function with table tests (facts from the upstream conformance scenarios
//! HTTPRouteHostnameIntersection and HTTPRouteListenerHostnameMatching), kept apart so the
//! Gateway translation that uses it stays about objects, not strings. A wildcard `*.x` matches
//! one or more labels before `.x`, never `x` itself; comparisons ignore ASCII case.

/// The hosts a route serves through a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intersection {
    /// Every host (neither side names any).
    Any,
    /// These hosts (exact names or `*.` wildcards), in the route's order, without repeats.
    Hosts(Vec<String>),
    /// None: the route names hosts and none intersects (NoMatchingListenerHostname).
    Empty,
}

/// The intersection of `listener`'s hostname (`None`: any) and a route's `hostnames`.
pub fn intersect(listener: Option<&str>, route: &[String]) -> Intersection {
    let listener = listener.filter(|l| !l.is_empty());
    let route: Vec<String> = route.iter().map(|h| h.to_ascii_lowercase()).collect();
    match (listener, route.is_empty()) {
        (None, true) => Intersection::Any,
        (Some(l), true) => Intersection::Hosts(vec![l.to_ascii_lowercase()]),
        (l, false) => {
            let l = l.map(str::to_ascii_lowercase);
            let mut out: Vec<String> = Vec::new();
            for h in route {
                let hit = match &l {
                    None => Some(h),
                    Some(l) => pair(l, &h),
                };
                if let Some(hit) = hit
                    && !out.contains(&hit)
                {
                    out.push(hit);
                }
            }
            if out.is_empty() {
                Intersection::Empty
            } else {
                Intersection::Hosts(out)
            }
        }
    }
}

/// The more specific of two names when one covers the other (both lower case).
fn pair(listener: &str, route: &str) -> Option<String> {
    if listener == route {
        return Some(route.to_owned());
    }
    if covers(listener, route) {
        return Some(route.to_owned());
    }
    if covers(route, listener) {
        return Some(listener.to_owned());
    }
    None
}

/// Whether wildcard `pattern` (`*.suffix`) covers `name` (exact or a narrower wildcard).
fn covers(pattern: &str, name: &str) -> bool {
    let Some(suffix) = pattern.strip_prefix('*') else {
        return false;
    };
    let name = name.strip_prefix('*').unwrap_or(name);
    // `suffix` starts with '.': at least one label must stand before it.
    name.len() > suffix.len() && name.ends_with(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn got(listener: Option<&str>, route: &[&str]) -> Intersection {
        intersect(listener, &hosts(route))
    }

    fn some(list: &[&str]) -> Intersection {
        Intersection::Hosts(hosts(list))
    }

    #[test]
    fn neither_side_names_hosts_means_any_host() {
        assert_eq!(got(None, &[]), Intersection::Any);
        assert_eq!(got(Some(""), &[]), Intersection::Any);
    }

    #[test]
    fn one_side_only_gives_that_sides_hosts() {
        assert_eq!(
            got(Some("very.specific.com"), &[]),
            some(&["very.specific.com"])
        );
        assert_eq!(
            got(None, &["a.example", "*.b.example"]),
            some(&["a.example", "*.b.example"])
        );
    }

    /// Conformance HTTPRouteHostnameIntersection, listener-1 `very.specific.com`.
    #[test]
    fn exact_listener() {
        let l = Some("very.specific.com");
        let route = [
            "non.matching.com",
            "*.nonmatchingwildcard.io",
            "very.specific.com",
        ];
        assert_eq!(got(l, &route), some(&["very.specific.com"]));
        assert_eq!(got(l, &["*.specific.com"]), some(&["very.specific.com"]));
        assert_eq!(
            got(l, &["specific.but.wrong.com", "wildcard.io"]),
            Intersection::Empty
        );
    }

    /// Conformance HTTPRouteHostnameIntersection, listeners `*.wildcard.io` and
    /// `*.anotherwildcard.io`.
    #[test]
    fn wildcard_listener() {
        let l = Some("*.wildcard.io");
        let route = ["foo.wildcard.io", "bar.wildcard.io", "foo.bar.wildcard.io"];
        assert_eq!(got(l, &route), some(&route));
        assert_eq!(
            got(l, &["wildcard.io"]),
            Intersection::Empty,
            "needs a label"
        );
        let l = Some("*.anotherwildcard.io");
        assert_eq!(
            got(l, &["*.anotherwildcard.io"]),
            some(&["*.anotherwildcard.io"])
        );
        assert_eq!(got(l, &["*.io"]), some(&["*.anotherwildcard.io"]));
        assert_eq!(got(l, &["*.wildcard.io"]), Intersection::Empty);
    }

    /// Conformance HTTPRouteListenerHostnameMatching: `bar.com`, `foo.bar.com`, `*.bar.com`.
    #[test]
    fn listener_hostname_matching() {
        assert_eq!(got(Some("bar.com"), &["bar.com"]), some(&["bar.com"]));
        assert_eq!(got(Some("*.bar.com"), &["bar.com"]), Intersection::Empty);
        assert_eq!(
            got(Some("*.bar.com"), &["foo.bar.com"]),
            some(&["foo.bar.com"])
        );
        assert_eq!(
            got(Some("foo.bar.com"), &["*.bar.com"]),
            some(&["foo.bar.com"])
        );
    }

    #[test]
    fn case_is_ignored_and_repeats_dropped() {
        assert_eq!(
            got(Some("*.Example.com"), &["A.example.com", "a.EXAMPLE.com"]),
            some(&["a.example.com"])
        );
    }
}

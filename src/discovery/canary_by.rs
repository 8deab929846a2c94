//! ingress-nginx's `canary-by-header` (+ `-value`, `-pattern`) and `canary-by-cookie`, as route
//! conditions: a canary Ingress with them adds, beside its main route's weighted split, routes
//! for the same host and path whose header conditions send a request to the canary, or keep it
//! on the main Service, before the weights are drawn.
//!
//! Why conditions rather than a special case in the proxy: the route table already orders
//! routes for one path by the Gateway API's precedence (more header matches first, then input
//! order), which is exactly ingress-nginx's order here: the header decides first, then the
//! cookie, then the weight. So the annotations become plain routes that `check`, the access
//! log and `/debug/table` show like any other, and nothing on the request path knows about
//! canaries.
//!
//! The rules, as ingress-nginx documents them:
//! - `canary-by-header: NAME`: `NAME: always` goes to the canary, `NAME: never` stays on the
//!   main Service, any other value falls through (to the cookie, then the weight).
//! - `canary-by-header-value: V`: `NAME: V` goes to the canary (then `always`/`never` are not
//!   special); `canary-by-header-pattern: RE` likewise for values matching `RE` (whole value,
//!   the `regex` crate's syntax), ignored when `-value` is set.
//! - `canary-by-cookie: NAME`: a cookie `NAME=always` goes to the canary, `NAME=never` stays.

use crate::ingress::{Conditions, NamedMatch, ValueMatch};

/// A canary's header and cookie rules; the default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct CanaryBy {
    /// `canary-by-header`, lowercase.
    header: Option<String>,
    /// `canary-by-header-value`.
    value: Option<String>,
    /// `canary-by-header-pattern`, checked to compile.
    pattern: Option<String>,
    /// `canary-by-cookie`.
    cookie: Option<String>,
}

/// A route a canary adds: its conditions, and whether it goes to the canary (else the main
/// Service).
pub(super) type CanaryRoute = (Conditions, bool);

impl CanaryBy {
    /// Reads one annotation (`name` without the prefix); `None` when `name` is not one of
    /// these or its value is not usable (the caller reports it).
    pub(super) fn set(&mut self, name: &str, value: &str) -> Option<()> {
        match name {
            "canary-by-header" => self.header = Some(token(value)?.to_ascii_lowercase()),
            "canary-by-header-value" => self.value = Some(field_value(value)?.to_owned()),
            "canary-by-header-pattern" => {
                ValueMatch::regex(value).ok()?;
                self.pattern = Some(value.to_owned());
            }
            "canary-by-cookie" => self.cookie = Some(token(value)?.to_owned()),
            _ => return None,
        }
        Some(())
    }

    /// The routes to add, in the order they are tried (header before cookie).
    pub(super) fn routes(&self) -> Vec<CanaryRoute> {
        let mut out = Vec::new();
        if let Some(name) = &self.header {
            let chosen = match (&self.value, &self.pattern) {
                (Some(v), _) => Some(ValueMatch::Exact(v.as_str().into())),
                (None, Some(p)) => ValueMatch::regex(p).ok(),
                (None, None) => None,
            };
            match chosen {
                Some(value) => out.push((header(name, value), true)),
                None => {
                    out.push((header(name, ValueMatch::Exact("always".into())), true));
                    out.push((header(name, ValueMatch::Exact("never".into())), false));
                }
            }
        }
        if let Some(name) = &self.cookie {
            for (word, to_canary) in [("always", true), ("never", false)] {
                if let Ok(value) = ValueMatch::regex(&cookie_pattern(name, word)) {
                    out.push((header("cookie", value), to_canary));
                }
            }
        }
        out
    }
}

fn header(name: &str, value: ValueMatch) -> Conditions {
    Conditions {
        headers: vec![NamedMatch {
            name: name.into(),
            value,
        }],
        ..Conditions::default()
    }
}

/// A `Cookie` field value holding the cookie `name` with the value `word`, among others.
fn cookie_pattern(name: &str, word: &str) -> String {
    format!(
        r"(?:.*;)?[ \t]*{}={word}[ \t]*(?:;.*)?",
        regex::escape(name)
    )
}

/// An RFC 9110 token (a field or cookie name).
fn token(value: &str) -> Option<&str> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    ok.then_some(value)
}

/// A field value without control characters.
fn field_value(value: &str) -> Option<&str> {
    (!value.is_empty() && !value.bytes().any(|b| b.is_ascii_control())).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(route: &CanaryRoute, name: &str, value: &str) -> bool {
        route.0.headers[0].name.as_ref() == name
            && route.0.headers[0].value.matches(value.as_bytes())
    }

    #[test]
    fn a_header_alone_means_always_and_never() {
        let mut by = CanaryBy::default();
        assert_eq!(by.set("canary-by-header", "X-Canary"), Some(()));
        let routes = by.routes();
        assert_eq!(routes.len(), 2);
        assert!(routes[0].1 && matches(&routes[0], "x-canary", "always"));
        assert!(!routes[1].1 && matches(&routes[1], "x-canary", "never"));
        assert!(!matches(&routes[0], "x-canary", "Always"));
    }

    #[test]
    fn a_value_beats_a_pattern_and_replaces_always_and_never() {
        let mut by = CanaryBy::default();
        by.set("canary-by-header", "x-canary");
        by.set("canary-by-header-pattern", "v[0-9]+");
        let routes = by.routes();
        assert_eq!(routes.len(), 1);
        assert!(matches(&routes[0], "x-canary", "v12") && !matches(&routes[0], "x-canary", "v"));
        by.set("canary-by-header-value", "beta");
        let routes = by.routes();
        assert!(matches(&routes[0], "x-canary", "beta") && !matches(&routes[0], "x-canary", "v1"));
    }

    #[test]
    fn cookies_are_found_among_others_and_only_whole() {
        let mut by = CanaryBy::default();
        by.set("canary-by-cookie", "beta");
        let routes = by.routes();
        let always = &routes[0];
        for yes in [
            "beta=always",
            "a=1; beta=always",
            "beta=always; b=2",
            "a=1;beta=always;b=2",
        ] {
            assert!(matches(always, "cookie", yes), "{yes}");
        }
        for no in [
            "beta=never",
            "xbeta=always",
            "beta=alwaysx",
            "a=beta=always",
            "beta=always2",
        ] {
            assert!(!matches(always, "cookie", no), "{no}");
        }
        assert!(matches(&routes[1], "cookie", "a=1; beta=never"));
    }

    #[test]
    fn bad_values_are_refused() {
        let mut by = CanaryBy::default();
        assert_eq!(by.set("canary-by-header", "x canary"), None);
        assert_eq!(by.set("canary-by-header-pattern", "("), None);
        assert_eq!(by.set("canary-by-header-value", "a\r\nb"), None);
        assert_eq!(by.set("canary-by-cookie", ""), None);
        assert_eq!(by, CanaryBy::default());
    }
}

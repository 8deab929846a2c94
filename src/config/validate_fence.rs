//! `[[routes]] listeners`: the file's listeners a route is fenced to. Kept apart from
//! `validate_http.rs` because it is the one route key checked against the listeners rather
//! than on its own; what a fence means at run time is in [`crate::ingress::listener_routes`].

use super::ListenerConfig;
use super::validate::Issues;
use std::sync::Arc;

/// The fence of the route at `path` (`None`: unfenced), each name checked against the
/// file's `listeners` (`routes[2].listeners[0]: no listener named "x"`).
pub(super) fn fence(
    names: Option<&[String]>,
    path: &str,
    listeners: &[ListenerConfig],
    issues: &mut Issues,
) -> Option<Arc<[Arc<str>]>> {
    let names = names?;
    if names.is_empty() {
        issues.push(
            format!("{path}.listeners"),
            "must name at least one listener (leave it out to serve every listener)",
        );
        return None;
    }
    let mut fence: Vec<Arc<str>> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match listeners.iter().find(|l| *l.name == **name) {
            Some(l) if !fence.contains(&l.name) => fence.push(Arc::clone(&l.name)),
            Some(_) => {}
            None => issues.push(
                format!("{path}.listeners[{i}]"),
                format!("no listener named {name:?}"),
            ),
        }
    }
    Some(fence.into())
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use crate::ingress::{Hostname, HttpRoutes, Lookup, RequestView};

    const BASE: &str = r#"
[[services]]
name = "web"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"
[[listeners]]
name = "public"
listen = "127.0.0.1:8081"
[[listeners]]
name = "internal"
listen = "127.0.0.1:8082"
"#;

    fn issues(routes: &str) -> Vec<String> {
        match Config::parse(&format!("{BASE}{routes}"), "t") {
            Err(ConfigError::Invalid { issues, .. }) => {
                issues.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected validation issues, got {other:?}"),
        }
    }

    #[test]
    fn unknown_or_no_listeners_are_named_with_their_path() {
        let r = "[[routes]]\npath = \"/\"\nservice = \"web\"\n";
        let fenced = "[[routes]]\npath = \"/x\"\nservice = \"web\"\n";
        let bad = issues(&format!("{r}{fenced}listeners = [\"public\", \"x\"]\n"));
        assert_eq!(bad, ["routes[1].listeners[1]: no listener named \"x\""]);
        let empty = issues(&format!("{r}listeners = []\n"));
        assert_eq!(
            empty,
            [
                "routes[0].listeners: must name at least one listener (leave it out to serve \
              every listener)"
            ]
        );
    }

    #[test]
    fn a_fenced_route_is_served_only_on_its_listeners() {
        let routes = "[[routes]]\npath = \"/\"\nservice = \"web\"\n\
                      [[routes]]\npath = \"/admin\"\nservice = \"web\"\nlisteners = [\"internal\"]\n";
        let c = Config::parse(&format!("{BASE}{routes}"), "t").unwrap();
        let fence = c.http.routes[1].listeners.as_deref().map(<[_]>::to_vec);
        assert_eq!(fence, Some(vec!["internal".into()]));
        let table = HttpRoutes::build(&c.http);
        let host = Hostname::parse("a.test").unwrap();
        let rule =
            |listener: &str| match table.lookup_on(listener, &host, "/admin", &RequestView::NONE) {
                Lookup::Matched { rule, .. } => rule,
                other => panic!("{other:?}"),
            };
        assert_eq!(rule("internal"), 1);
        assert_eq!(rule("public"), 0);
    }
}

//! Validation of a route's backends: `service` or a weighted `backends` split (one of the
//! two), `hash_on` and `fallback_service`. Each bad value is named by its path, e.g.
//! `routes[2].backends: weights sum to 0`.

use super::file::RawRoute;
use super::validate::Issues;
use super::validate_http::ServiceRef;
use crate::ingress::{BackendPolicy, HashOn, Role, WeightedService};
use std::sync::Arc;

/// The route's service (with a split: its first backend of weight > 0) and its backend
/// policy; `None` after reporting what is wrong.
pub(super) fn route_backends(
    raw: &RawRoute,
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Option<(Arc<str>, BackendPolicy)> {
    let before = issues.len();
    let hash_on = raw.hash_on.as_deref().and_then(|text| {
        HashOn::parse(text)
            .map_err(|e| issues.push(format!("{path}.hash_on"), e.to_string()))
            .ok()
    });
    let fallback_service = raw
        .fallback_service
        .as_deref()
        .and_then(|s| service(s, format!("{path}.fallback_service"), issues));
    let (primary, split) = match (&raw.service, &raw.backends) {
        (Some(_), Some(_)) => {
            issues.push(path.to_owned(), "set either service or backends, not both");
            return None;
        }
        (None, None) => {
            issues.push(
                format!("{path}.service"),
                "required (or backends, or a redirect)",
            );
            return None;
        }
        (Some(name), None) => (service(name, format!("{path}.service"), issues), Vec::new()),
        (None, Some(backends)) => {
            let split = split(backends, path, service, issues);
            let primary = split
                .iter()
                .find(|b| b.weight > 0)
                .map(|b| Arc::clone(&b.service));
            (primary, split)
        }
    };
    let policy = BackendPolicy {
        split,
        hash_on,
        fallback_service,
    };
    (issues.len() == before).then_some((primary?, policy))
}

/// The weighted services of `backends`, each resolved; reports an empty list and a list
/// whose weights sum to 0.
fn split(
    backends: &[super::file::RawBackend],
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Vec<WeightedService> {
    if backends.is_empty() {
        issues.push(format!("{path}.backends"), "must name at least one service");
    } else if backends.iter().all(|b| b.weight == 0) {
        issues.push(format!("{path}.backends"), "weights sum to 0");
    }
    backends
        .iter()
        .enumerate()
        .filter_map(|(i, b)| {
            let name = service(&b.service, format!("{path}.backends[{i}].service"), issues)?;
            Some(WeightedService {
                service: name,
                weight: b.weight,
                role: Role::Primary,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use crate::ingress::{HashOn, Role};

    const SERVICES: &str = "[[services]]\nname = \"web\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9001\"\n\
        [[services]]\nname = \"canary\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9002\"\n";

    fn parse(routes: &str) -> Result<Config, Vec<String>> {
        Config::parse(&format!("{SERVICES}{routes}"), "t").map_err(|e| match e {
            ConfigError::Invalid { issues, .. } => issues.iter().map(|i| i.to_string()).collect(),
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn a_split_hash_key_and_fallback_are_read() {
        let c = parse(
            "[[routes]]\nbackends = [{ service = \"web\", weight = 0 }, { service = \"canary\" }]\n\
             hash_on = \"header:X-User\"\nfallback_service = \"web\"\n",
        )
        .unwrap();
        let route = &c.http.routes[0];
        assert_eq!(&*route.service, "canary", "the first backend of weight > 0");
        let split = &route.backends.split;
        assert_eq!(
            (split[0].weight, split[1].weight),
            (0, 1),
            "weight defaults to 1"
        );
        assert_eq!(split[1].role, Role::Primary);
        assert_eq!(
            route.backends.hash_on,
            Some(HashOn::Header("x-user".into()))
        );
        assert_eq!(route.backends.fallback_service.as_deref(), Some("web"));
    }

    #[test]
    fn each_bad_backend_value_is_named_by_its_path() {
        let cases = [
            (
                "backends = [{ service = \"web\", weight = 0 }]",
                "routes[0].backends: weights sum to 0",
            ),
            (
                "backends = []",
                "routes[0].backends: must name at least one service",
            ),
            (
                "backends = [{ service = \"nope\" }]",
                "routes[0].backends[0].service: no service named",
            ),
            (
                "service = \"web\"\nbackends = [{ service = \"web\" }]",
                "routes[0]: set either service or backends",
            ),
            (
                "path = \"/x\"",
                "routes[0].service: required (or backends, or a redirect)",
            ),
            (
                "service = \"web\"\nhash_on = \"query:x\"",
                "routes[0].hash_on: invalid hash_on",
            ),
            (
                "service = \"web\"\nfallback_service = \"nope\"",
                "routes[0].fallback_service: no service named",
            ),
        ];
        for (route, want) in cases {
            let found = parse(&format!("[[routes]]\n{route}\n")).unwrap_err();
            assert!(
                found.iter().any(|i| i.starts_with(want)),
                "{route}: {found:?}"
            );
        }
    }
}

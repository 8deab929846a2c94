//! The two backend decisions of a routed request, taken once whichever way it came: which
//! service serves it ([`choose`]: the route's weighted split, then its fallback), and what a
//! hashing scheduler hashes for it ([`key`]: the route's `hash_on`).
//!
//! Statuses, as the Gateway API says for a split: a backend that cannot be used at all (its
//! service is not in the table, e.g. a Kubernetes Service that does not exist) answers 500 for
//! its share of the requests; a service that exists but has no endpoint answers 503 when a
//! request finds no endpoint to send to. A route's `fallback_service` takes the request
//! instead in both cases: when the chosen service is missing or none of its endpoints has a
//! weight above 0 (ingress-nginx's `default-backend`: "the configured service does not have
//! any active endpoints"). Endpoints benched by passive health do not count as missing: the
//! scheduler still tries one of them when nothing else is left.

use super::reply::Local;
use super::route::LogInfo;
use crate::balance::Key;
use crate::ingress::{HashOn, RouteTarget};
use crate::service_table::{Service, Snapshot};
use http::StatusCode;
use std::net::IpAddr;
use std::sync::Arc;

/// The service that serves a request routed to `target`, noting its name and metric handles
/// in `log` (the route's own handles stay for a route without a split).
pub(super) fn choose<'a>(
    snapshot: &'a Snapshot,
    target: &'a RouteTarget,
    log: &mut LogInfo,
) -> Result<&'a Arc<Service>, Local> {
    let name = match &target.backends.split {
        Some(split) => {
            let backend = split.choose();
            log.metrics = Some(backend.metrics(&target.name));
            &backend.service
        }
        None => &target.service,
    };
    log.service = Some(Arc::clone(name));
    let service = snapshot.service(name);
    // The fallback is looked at first: a route without one scans no endpoints.
    if let Some(fallback) = &target.backends.fallback
        && !service.is_some_and(|s| usable(s))
        && let Some(instead) = snapshot.service(&fallback.service)
    {
        log.service = Some(Arc::clone(&fallback.service));
        log.metrics = Some(fallback.metrics(&target.name));
        return Ok(instead);
    }
    service.ok_or_else(|| {
        tracing::debug!(service = %name, route = %target.name, "backend service not in the table");
        Local::new(StatusCode::INTERNAL_SERVER_ERROR, "backend not available\n")
    })
}

/// Whether any endpoint of `service` may get requests.
fn usable(service: &Service) -> bool {
    service.endpoints.iter().any(|e| e.weight > 0)
}

/// The affinity key of a request on `target` from `client`: the route's `hash_on` value
/// from the request (`forward`: its normalised target, whose path is hashed; `fields`: its
/// header fields, names in any case), or the client's address when there is none or the
/// request lacks it.
pub(super) fn key<'f, I>(
    target: &RouteTarget,
    client: IpAddr,
    forward: &str,
    fields: impl Fn() -> I,
) -> Key
where
    I: Iterator<Item = (&'f [u8], &'f [u8])>,
{
    let found = match &target.backends.hash_on {
        None | Some(HashOn::ClientIp) => None,
        Some(HashOn::Path) => Some(Key::of_bytes(super::route::path_of(forward).as_bytes())),
        Some(HashOn::Header(name)) => fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| Key::of_bytes(value)),
        Some(HashOn::Cookie(name)) => {
            let cookies = fields()
                .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                .map(|(_, v)| v);
            super::sticky::cookie(cookies, name).map(|v| Key::of_bytes(v.as_bytes()))
        }
    };
    found.unwrap_or(Key::Client(client))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HttpConfig;
    use crate::ingress::{BackendPolicy, HttpRoutes, Lookup};

    fn target_with(hash_on: &str) -> HttpRoutes {
        let config = HttpConfig {
            routes: vec![crate::config::RouteConfig {
                host: None,
                path: "/".into(),
                path_type: crate::ingress::PathType::Prefix,
                service: "s".into(),
                name: "r".into(),
                backends: BackendPolicy {
                    hash_on: Some(HashOn::parse(hash_on).unwrap()),
                    ..BackendPolicy::default()
                },
                ..crate::config::RouteConfig::default()
            }],
            ..HttpConfig::default()
        };
        HttpRoutes::build(&config)
    }

    fn key_of(hash_on: &str, path: &str, fields: &[(&str, &str)]) -> Key {
        let routes = target_with(hash_on);
        let Lookup::Matched { backend, .. } = routes.lookup(None, "/") else {
            panic!("no route");
        };
        let client: IpAddr = "192.0.2.1".parse().unwrap();
        key(backend, client, path, || {
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        })
    }

    #[test]
    fn keys_come_from_the_named_part_of_the_request() {
        let client = Key::Client("192.0.2.1".parse().unwrap());
        let fields = [("X-User", "alice"), ("Cookie", "a=1; session=s1")];
        assert_eq!(
            key_of("header:x-user", "/", &fields),
            Key::of_bytes(b"alice")
        );
        assert_eq!(key_of("cookie:session", "/", &fields), Key::of_bytes(b"s1"));
        assert_eq!(key_of("path", "/a/b", &fields), Key::of_bytes(b"/a/b"));
        assert_eq!(key_of("client_ip", "/", &fields), client);
    }

    #[test]
    fn a_missing_header_or_cookie_falls_back_to_the_client_address() {
        let client = Key::Client("192.0.2.1".parse().unwrap());
        assert_eq!(key_of("header:x-user", "/", &[("x-other", "1")]), client);
        assert_eq!(key_of("cookie:session", "/", &[("cookie", "a=1")]), client);
    }
}

//! The ingress-nginx annotations for mirroring and retries (`mirror-target`,
//! `proxy-next-upstream`, `proxy-next-upstream-tries`, `proxy-next-upstream-timeout`), read
//! into the route policy every route source shares ([`UpstreamPolicyConfig`]).
//!
//! nginx's retries have no budget: here every Ingress route with these annotations gets the
//! default one (20 % of requests, 3 in reserve), so retries never multiply load. A mirror
//! target is taken only when it names a cluster Service by its DNS name
//! (`http://name.namespace.svc[.cluster.local][:port]`, path `$request_uri` or none): the
//! copy then goes to that Service's endpoints, like any backend. Anything else (another host,
//! `https`, another path) is reported unsupported.

use super::report::ObjectReport;
use crate::config::upstream_policy::{
    Condition, MAX_ATTEMPTS, MirrorConfig, RetryConfig, RetryOn, UpstreamPolicyConfig,
};
use k8s_openapi::api::networking::v1::{IngressBackend, IngressServiceBackend, ServiceBackendPort};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What the annotations ask for, before the mirror's Service is looked up.
#[derive(Debug, Clone, Default)]
pub(super) struct PolicyNotes {
    /// `mirror-target`: namespace, name and port of the Service.
    pub(super) mirror: Option<(String, String, i32)>,
    /// `proxy-next-upstream`: the conditions, `Some(empty)` for `off`.
    pub(super) on: Option<RetryOn>,
    /// `proxy-next-upstream-tries`.
    pub(super) tries: Option<u32>,
    /// `proxy-next-upstream-timeout`.
    pub(super) timeout: Option<Duration>,
}

/// Reads one of this module's annotations into `notes`; `None` when the value is not taken,
/// and tokens of `proxy-next-upstream` that have no equivalent are added to `unsupported`.
pub(super) fn parse(
    name: &str,
    value: &str,
    notes: &mut PolicyNotes,
    unsupported: &mut Vec<String>,
) -> Option<()> {
    match name {
        "mirror-target" => mirror_target(value).map(|t| notes.mirror = Some(t)),
        "proxy-next-upstream" => {
            notes.on = Some(next_upstream(value, unsupported));
            Some(())
        }
        "proxy-next-upstream-tries" => {
            let tries: u32 = value.parse().ok()?;
            // nginx's 0 is "no limit": the most we allow.
            notes.tries = Some(if tries == 0 {
                MAX_ATTEMPTS
            } else {
                tries.min(MAX_ATTEMPTS)
            });
            Some(())
        }
        "proxy-next-upstream-timeout" => {
            let secs: u64 = value.parse().ok()?;
            notes.timeout = (secs > 0).then(|| Duration::from_secs(secs));
            Some(())
        }
        _ => None,
    }
}

/// The conditions nginx's tokens name. `error` is a failed connect or a connection that broke
/// before the response head; `timeout` the same for deadlines. `off` retries nothing.
fn next_upstream(value: &str, unsupported: &mut Vec<String>) -> RetryOn {
    let mut on = RetryOn::default();
    for token in value.split_whitespace() {
        let added: &[Condition] = match token {
            "error" => &[Condition::ConnectFailure, Condition::Reset],
            "timeout" => &[Condition::ConnectFailure, Condition::Timeout],
            "http_502" => &[Condition::Status502],
            "http_503" => &[Condition::Status503],
            "http_504" => &[Condition::Status504],
            "off" => return RetryOn::default(),
            other => {
                unsupported.push(format!("proxy-next-upstream={other}"));
                &[]
            }
        };
        on = added.iter().fold(on, |on, c| on.with(*c));
    }
    on
}

/// The Service a `mirror-target` URL names: `http://name.namespace.svc[.cluster.local][:port]`
/// with the path `$request_uri` or none.
fn mirror_target(value: &str) -> Option<(String, String, i32)> {
    let rest = value.strip_prefix("http://")?;
    let authority = rest
        .strip_suffix("$request_uri")
        .unwrap_or(rest)
        .trim_end_matches('/');
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok().filter(|p| *p > 0)?),
        None => (authority, 80),
    };
    let host = host.to_ascii_lowercase();
    let base = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))?;
    let (name, namespace) = base.split_once('.')?;
    let label = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    (label(name) && label(namespace))
        .then(|| (namespace.to_owned(), name.to_owned(), i32::from(port)))
}

/// The route policy of an Ingress's routes; a mirror Service that cannot be used is reported
/// (`skip`, the routes keep working without a mirror). `backend` resolves a Service port as
/// the Ingress's own backends are.
pub(super) fn upstream_policy(
    notes: &PolicyNotes,
    rep: &mut ObjectReport<'_>,
    backend: impl Fn(&str, &IngressBackend) -> Result<Arc<str>, (&'static str, String)>,
) -> UpstreamPolicyConfig {
    let retry = (notes.on.is_some() || notes.tries.is_some()).then(|| {
        let on = notes
            .on
            .unwrap_or_else(|| next_upstream("error timeout", &mut Vec::new()));
        let tries = if on == RetryOn::default() {
            1
        } else {
            notes.tries.unwrap_or(3)
        };
        RetryConfig {
            attempts: NonZeroU32::new(tries).unwrap_or(NonZeroU32::MIN),
            on,
            budget_percent: 20,
            min_retries: 3,
        }
    });
    let mirror = notes.mirror.as_ref().and_then(|(ns, name, port)| {
        let target = IngressBackend {
            service: Some(IngressServiceBackend {
                name: name.clone(),
                port: Some(ServiceBackendPort {
                    number: Some(*port),
                    name: None,
                }),
            }),
            resource: None,
        };
        match backend(ns, &target) {
            Ok(service) => Some(MirrorConfig {
                service,
                per_million: 1_000_000,
                max_in_flight: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
                max_body_bytes: 64 * 1024,
            }),
            Err((reason, detail)) => {
                rep.skip(reason, &format!("mirror-target: {detail}"));
                None
            }
        }
    });
    UpstreamPolicyConfig {
        retry,
        timeouts: crate::config::upstream_policy::RouteTimeouts {
            request: notes.timeout,
            backend_request: None,
        },
        mirror,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_targets_naming_a_cluster_service_are_taken() {
        let want = Some(("ns".to_owned(), "svc".to_owned(), 8080));
        assert_eq!(
            mirror_target("http://svc.ns.svc.cluster.local:8080$request_uri"),
            want
        );
        assert_eq!(mirror_target("http://svc.ns.svc:8080"), want);
        assert_eq!(
            mirror_target("http://svc.ns.svc"),
            Some(("ns".to_owned(), "svc".to_owned(), 80))
        );
    }

    #[test]
    fn other_mirror_targets_are_refused() {
        for v in [
            "https://svc.ns.svc:8080$request_uri",
            "http://example.com$request_uri",
            "http://svc.ns.svc:8080/other",
            "http://svc.ns.svc:0",
            "http://svc.svc",
            "svc.ns.svc",
        ] {
            assert_eq!(mirror_target(v), None, "{v}");
        }
    }

    #[test]
    fn next_upstream_tokens_map_and_the_rest_is_reported() {
        let mut unsupported = Vec::new();
        let on = next_upstream("error http_503 non_idempotent http_404", &mut unsupported);
        assert!(on.has(Condition::ConnectFailure) && on.has(Condition::Reset));
        assert!(on.status(503) && !on.status(502) && !on.has(Condition::Timeout));
        assert_eq!(
            unsupported,
            [
                "proxy-next-upstream=non_idempotent",
                "proxy-next-upstream=http_404"
            ]
        );
        assert_eq!(
            next_upstream("error off", &mut unsupported),
            RetryOn::default()
        );
    }
}

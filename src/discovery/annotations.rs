//! The `nginx.ingress.kubernetes.io/*` annotations Switchyard honours, for migrating from
//! ingress-nginx.
//!
//! Only a documented, safe subset is read; values are parsed, never evaluated (no snippets,
//! no templates). Every other annotation under the prefix is reported as unsupported (once per
//! Ingress version, by the caller), so nothing is silently ignored. A value that does not parse
//! is reported the same way and the setting keeps its default.
//!
//! | annotation | maps to |
//! |---|---|
//! | `ssl-redirect` | host `redirect_https` (default true for hosts in the Ingress's `tls`) |
//! | `force-ssl-redirect` | host `redirect_https` for every host of the Ingress |
//! | `backend-protocol` | service `upstream_protocol`: HTTP → http1, GRPC/H2C → h2c, HTTPS/GRPCS → https with `upstream_verify = false` (as ingress-nginx: encrypted, not verified) |
//! | `proxy-body-size` | route `max_body_bytes` (`k`/`m`/`g` units, `0` = unlimited) |
//! | `proxy-connect-timeout` | service `connect_timeout` (seconds) |
//! | `proxy-read-timeout` | service `response_timeout` (time to response headers) |
//! | `proxy-send-timeout` | service `idle_timeout` (the connection's idle deadline) |
//! | `load-balance` | service `scheduler`: round_robin → rr, least_conn → lc, ewma → twos |
//! | `whitelist-source-range`, `allowlist-source-range` | route extras (`allow_sources`) |
//! | `affinity: cookie`, `session-cookie-name` | route extras (`sticky_cookie`) |
//! | `upstream-hash-by` | route `hash_on` (`$request_uri`/`$uri` → path, `$remote_addr`/`$binary_remote_addr` → client_ip, `$http_NAME` → header, `$cookie_NAME` → cookie), and service `scheduler` `mh` unless `load-balance` says otherwise |
//! | `default-backend` | route `fallback_service` (a Service of the namespace, its first port) |
//! | `canary: "true"`, `canary-weight`, `canary-weight-total` | the main route's weighted split (see `canary.rs`) |
//! | `canary-by-header` (+ `-value`, `-pattern`), `canary-by-cookie` | routes beside the split with header conditions that send a request to the canary or keep it on the main Service first (see `canary_by.rs`) |
//! | `rewrite-target` (+ `use-regex`) | route `rewrite`: with `use-regex: "true"` the path is a case-insensitive regex anchored at the start and the whole path becomes the target with `$1`… from its groups; without, the path prefix is replaced (ingress-nginx would still treat the path as a regex) |
//! | `app-root` | an Exact `/` route per rule host answering 302 to it (query kept) |
//! | `permanent-redirect` (+ `permanent-redirect-code`, default 301) | route `redirect` to that fixed URL, path not added |
//! | `temporal-redirect` (+ `temporal-redirect-code`, default 302) | the same; wins over `permanent-redirect` |
//! | `upstream-vhost` | route `rewrite.host` (`X-Forwarded-Host` keeps the client's) |
//! | `x-forwarded-prefix` | route `request_headers.set` of `X-Forwarded-Prefix` |
//! | `server-alias` | the Ingress's host rules served under these names too (comma-separated) |
//! | `ssl-passthrough` | with `--enable-ssl-passthrough` only: the Ingress's hosts are `[[passthrough]]` names on the TLS listeners, to the backend of each host's `/` path (else reported unsupported) |
//! | `limit-rps`, `limit-rpm`, `limit-burst-multiplier` (default 5) | route `rate_limit`: rate, burst = rate × multiplier (differences in [`super::annotations_policy`]) |
//! | `limit-connections` | route `max_connections_per_client` (requests in flight; 429, not 503) |
//! | `limit-whitelist` | route `rate_limit.allow` (skips both limits) |
//! | `enable-cors`, `cors-allow-origin`, `cors-allow-methods`, `cors-allow-headers`, `cors-expose-headers`, `cors-allow-credentials`, `cors-max-age` | route `cors` (ingress-nginx defaults: origin `*`, its method and header lists, credentials true, max-age 1728000); `cors-*` without `enable-cors: "true"` do nothing, as in ingress-nginx |
//! | `mirror-target` | route `mirror` (100 %) when the URL names a cluster Service: `http://name.namespace.svc[.cluster.local][:port]`, path `$request_uri` or none |
//! | `proxy-next-upstream` | route `retry.on`: `error` → connect-failure + reset, `timeout` → connect-failure + timeout, `http_502/503/504`, `off`; other tokens reported |
//! | `proxy-next-upstream-tries` | route `retry.attempts` (`0`, nginx's "no limit", → 10), with the default budget |
//! | `proxy-next-upstream-timeout` | route `timeouts.request` (seconds; `0` none) |
//! | `use-regex` | the Ingress's `Prefix` and `ImplementationSpecific` paths become `RegularExpression` paths `(?i:PATH)(?s:.*)`: as nginx's `location ~* "^PATH"`, case-insensitive and anchored at the start only, longest pattern first, before every prefix; `Exact` paths stay exact. Differences: only the annotated Ingress's paths become regexes (ingress-nginx turns every path of the host into one), and the syntax is the `regex` crate's (no look-around or backreferences: such a path is skipped, reason `invalid_path`) |
//!
//! The filter annotations are read in [`super::filter_notes`].
//!

use crate::balance::Scheduler;
use crate::config::UpstreamProtocol;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The annotation prefix of ingress-nginx.
pub(super) const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// Per-route settings: `RouteConfig.allow_sources` and `RouteConfig.sticky_cookie`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RouteExtras {
    /// Client networks allowed (empty: everyone).
    pub(super) allow_sources: Vec<ipnet::IpNet>,
    /// Cookie name for endpoint affinity.
    pub(super) sticky_cookie: Option<Arc<str>>,
    /// `limit-*` annotations (see [`super::annotations_policy`]).
    pub(super) limits: crate::policy::limit::LimitConfig,
    /// `enable-cors` and `cors-*`.
    pub(super) cors: Option<crate::policy::cors::CorsConfig>,
}

/// Per-service settings an Ingress asks for; `None` keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BackendSettings {
    /// `backend-protocol`.
    pub(super) upstream_protocol: Option<UpstreamProtocol>,
    /// `proxy-connect-timeout`.
    pub(super) connect_timeout: Option<Duration>,
    /// `proxy-read-timeout`.
    pub(super) response_timeout: Option<Duration>,
    /// `proxy-send-timeout`.
    pub(super) idle_timeout: Option<Duration>,
    /// `load-balance`.
    pub(super) scheduler: Option<Scheduler>,
}

impl BackendSettings {
    /// True when nothing is overridden.
    pub(super) fn is_empty(&self) -> bool {
        *self == BackendSettings::default()
    }

    /// Applies the overrides to a service config.
    pub(super) fn apply(&self, config: &mut crate::config::ServiceConfig) {
        if let Some(p) = self.upstream_protocol {
            config.upstream_protocol = p;
            // An Ingress cannot name a CA: like ingress-nginx (`proxy-ssl-verify` off by
            // default), HTTPS backends are encrypted but not verified.
            config.upstream_verify = !matches!(p, UpstreamProtocol::Https | UpstreamProtocol::H2);
        }
        if let Some(d) = self.connect_timeout {
            config.connect_timeout = d;
        }
        if let Some(d) = self.response_timeout {
            config.response_timeout = d;
        }
        if let Some(d) = self.idle_timeout {
            config.idle_timeout = d;
        }
        if let Some(s) = self.scheduler {
            config.scheduler = s;
        }
    }
}

/// What one Ingress's annotations ask for.
#[derive(Debug, Clone, Default)]
pub(super) struct Annotations {
    /// `ssl-redirect` (`None`: the nginx default, true for TLS hosts).
    pub(super) ssl_redirect: Option<bool>,
    /// `force-ssl-redirect`.
    pub(super) force_ssl_redirect: bool,
    /// `proxy-body-size`: `Some(None)` is unlimited.
    pub(super) max_body_bytes: Option<Option<u64>>,
    /// Settings for the services this Ingress routes to.
    pub(super) backend: BackendSettings,
    /// Settings for the routes of this Ingress.
    pub(super) extras: RouteExtras,
    /// `upstream-hash-by`, `default-backend`, `canary*`.
    pub(super) backends: super::backend_annotations::BackendNotes,
    /// `use-regex`: the Ingress's paths are regexes (for `rewrite-target`).
    pub(super) use_regex: bool,
    /// Rewrites, redirects, `upstream-vhost`, `x-forwarded-prefix`, `server-alias`.
    pub(super) filters: super::filter_notes::FilterNotes,
    /// `ssl-passthrough`.
    pub(super) ssl_passthrough: bool,
    /// Mirroring and retries (`mirror-target`, `proxy-next-upstream*`).
    pub(super) upstream: super::annotations_upstream::PolicyNotes,
    /// `name=value` (or `name`) of annotations not honoured: unknown, or a bad value.
    pub(super) unsupported: Vec<String>,
}

/// Reads the nginx annotations of one Ingress.
pub(super) fn parse(annotations: Option<&BTreeMap<String, String>>) -> Annotations {
    let mut out = Annotations::default();
    let Some(annotations) = annotations else {
        return out;
    };
    let (mut affinity_cookie, mut cookie) = (false, None);
    let mut policy = super::annotations_policy::PolicyNotes::default();
    for (key, value) in annotations {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let value = value.trim();
        let ok = match name {
            "ssl-redirect" => bool_value(value).map(|b| out.ssl_redirect = Some(b)),
            "force-ssl-redirect" => bool_value(value).map(|b| out.force_ssl_redirect = b),
            "backend-protocol" => protocol(value).map(|p| out.backend.upstream_protocol = Some(p)),
            "proxy-body-size" => size(value).map(|s| out.max_body_bytes = Some(s)),
            "proxy-connect-timeout" => {
                seconds(value).map(|d| out.backend.connect_timeout = Some(d))
            }
            "proxy-read-timeout" => seconds(value).map(|d| out.backend.response_timeout = Some(d)),
            "proxy-send-timeout" => seconds(value).map(|d| out.backend.idle_timeout = Some(d)),
            "load-balance" => scheduler(value).map(|s| out.backend.scheduler = Some(s)),
            "whitelist-source-range" | "allowlist-source-range" => {
                networks(value).map(|n| out.extras.allow_sources = n)
            }
            "affinity" => (value == "cookie").then(|| affinity_cookie = true),
            "session-cookie-name" => cookie_name(value).map(|c| cookie = Some(c)),
            "upstream-hash-by"
            | "default-backend"
            | "canary"
            | "canary-weight"
            | "canary-weight-total"
            | "canary-by-header"
            | "canary-by-header-value"
            | "canary-by-header-pattern"
            | "canary-by-cookie" => out.backends.set(name, value),
            "ssl-passthrough" => bool_value(value).map(|b| out.ssl_passthrough = b),
            "use-regex" => bool_value(value).map(|b| out.use_regex = b),
            "mirror-target"
            | "proxy-next-upstream"
            | "proxy-next-upstream-tries"
            | "proxy-next-upstream-timeout" => super::annotations_upstream::parse(
                name,
                value,
                &mut out.upstream,
                &mut out.unsupported,
            ),
            name if super::annotations_policy::handles(name) => policy.read(name, value),
            _ => out.filters.read(name, value),
        };
        if ok.is_none() {
            out.unsupported.push(format!("{name}={value}"));
        }
    }
    // As ingress-nginx: hashing on a key means consistent hashing, unless a balancer is named.
    if out.backends.hash_on.is_some() {
        out.backend.scheduler.get_or_insert(Scheduler::Mh);
    }
    out.extras.limits = policy.limits();
    out.extras.cors = policy.cors();
    // ingress-nginx's default cookie name; the name alone does not turn affinity on.
    if affinity_cookie {
        out.extras.sticky_cookie = Some(cookie.unwrap_or_else(|| Arc::from("INGRESSCOOKIE")));
    }
    out
}

pub(super) fn bool_value(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn protocol(v: &str) -> Option<UpstreamProtocol> {
    match v.to_ascii_uppercase().as_str() {
        "HTTP" => Some(UpstreamProtocol::Http1),
        "GRPC" | "H2C" => Some(UpstreamProtocol::H2c),
        "HTTPS" => Some(UpstreamProtocol::Https),
        "GRPCS" => Some(UpstreamProtocol::H2),
        _ => None, // AUTO_HTTP, FCGI
    }
}

/// nginx sizes: a number with an optional `k`, `m` or `g` (case-insensitive); `0` = unlimited.
fn size(v: &str) -> Option<Option<u64>> {
    let lower = v.to_ascii_lowercase();
    let (digits, unit) = match lower.strip_suffix(['k', 'm', 'g']) {
        Some(d) => (d, lower.chars().last()),
        None => (lower.as_str(), None),
    };
    let n: u64 = digits.parse().ok()?;
    let scale: u64 = match unit {
        Some('k') => 1 << 10,
        Some('m') => 1 << 20,
        Some('g') => 1 << 30,
        _ => 1,
    };
    let bytes = n.checked_mul(scale)?;
    Some((bytes != 0).then_some(bytes))
}

/// nginx timeouts in these annotations are whole seconds; `s` is accepted too.
fn seconds(v: &str) -> Option<Duration> {
    let n: u64 = v.strip_suffix('s').unwrap_or(v).parse().ok()?;
    (1..=86_400).contains(&n).then(|| Duration::from_secs(n))
}

fn scheduler(v: &str) -> Option<Scheduler> {
    match v {
        "round_robin" => Some(Scheduler::Rr),
        "least_conn" => Some(Scheduler::Lc),
        "ewma" => Some(Scheduler::Twos),
        _ => None,
    }
}

pub(super) fn networks(v: &str) -> Option<Vec<ipnet::IpNet>> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .ok()
                .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        })
        .collect()
}

fn cookie_name(v: &str) -> Option<Arc<str>> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| Arc::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> Annotations {
        let map = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        parse(Some(&map))
    }

    #[test]
    fn body_size_understands_nginx_units_and_zero_is_unlimited() {
        assert_eq!(size("8m"), Some(Some(8 << 20)));
        assert_eq!(size("512K"), Some(Some(512 << 10)));
        assert_eq!(size("100"), Some(Some(100)));
        assert_eq!(size("0"), Some(None));
        assert_eq!(size("lots"), None);
    }

    #[test]
    fn supported_annotations_map_onto_settings() {
        let a = parse_pairs(&[
            ("ssl-redirect", "false"),
            ("backend-protocol", "GRPC"),
            ("proxy-connect-timeout", "5"),
            ("proxy-read-timeout", "120"),
            ("load-balance", "ewma"),
        ]);
        assert_eq!(a.ssl_redirect, Some(false));
        assert_eq!(a.backend.upstream_protocol, Some(UpstreamProtocol::H2c));
        assert_eq!(a.backend.connect_timeout, Some(Duration::from_secs(5)));
        assert_eq!(a.backend.response_timeout, Some(Duration::from_secs(120)));
        assert_eq!(a.backend.scheduler, Some(Scheduler::Twos));
        assert!(a.unsupported.is_empty(), "{:?}", a.unsupported);
    }

    #[test]
    fn snippets_and_bad_values_are_reported_not_applied() {
        let a = parse_pairs(&[
            ("configuration-snippet", "more_set_headers \"x: y\";"),
            ("backend-protocol", "FCGI"),
            ("proxy-connect-timeout", "soon"),
        ]);
        assert_eq!(a.backend, BackendSettings::default());
        assert_eq!(a.unsupported.len(), 3, "{:?}", a.unsupported);
    }

    #[test]
    fn https_backends_are_encrypted_but_not_verified() {
        for (value, protocol) in [
            ("HTTPS", UpstreamProtocol::Https),
            ("GRPCS", UpstreamProtocol::H2),
        ] {
            let a = parse_pairs(&[("backend-protocol", value)]);
            assert_eq!(a.backend.upstream_protocol, Some(protocol));
            let mut config = crate::config::ServiceConfig::with_defaults("ns/s:443".into());
            a.backend.apply(&mut config);
            assert_eq!(config.upstream_protocol, protocol);
            assert!(!config.upstream_verify);
        }
    }

    #[test]
    fn allowlist_and_cookie_affinity_become_route_settings() {
        let a = parse_pairs(&[
            ("whitelist-source-range", "10.0.0.0/8, 192.168.1.1"),
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
        ]);
        assert_eq!(a.extras.allow_sources.len(), 2);
        assert_eq!(a.extras.sticky_cookie.as_deref(), Some("route"));
        assert!(a.unsupported.is_empty(), "{:?}", a.unsupported);
        let default_name = parse_pairs(&[("affinity", "cookie")]);
        assert_eq!(
            default_name.extras.sticky_cookie.as_deref(),
            Some("INGRESSCOOKIE")
        );
        let name_only = parse_pairs(&[("session-cookie-name", "route")]);
        assert_eq!(
            name_only.extras.sticky_cookie, None,
            "no affinity without affinity: cookie"
        );
    }
}

//! The route policy keys of `[[routes]]`: `[routes.rate_limit]`,
//! `max_connections_per_client` and `[routes.cors]`, raw (serde) and validated into the
//! types of [`crate::policy`]. Kept apart from `file.rs` and `validate_http.rs` so that the
//! policy's keys, defaults and checks read in one place.

use super::validate::Issues;
use crate::policy::cors::{CorsConfig, OriginPattern};
use crate::policy::limit::LimitConfig;
use crate::policy::table::Bucket;
use serde::Deserialize;

/// ingress-nginx's `cors-allow-methods` default.
pub const DEFAULT_CORS_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";
/// ingress-nginx's `cors-allow-headers` default.
pub const DEFAULT_CORS_HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,\
    If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";
/// ingress-nginx's `cors-max-age` default (20 days), seconds.
pub const DEFAULT_CORS_MAX_AGE: u64 = 1_728_000;

/// `[routes.rate_limit]`: a token bucket per client address.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests per second (one of `rps`, `rpm`).
    #[serde(default)]
    pub rps: Option<u64>,
    /// Requests per minute.
    #[serde(default)]
    pub rpm: Option<u64>,
    /// Requests that may pass at once; default the rate per second, rounded up.
    #[serde(default)]
    pub burst: Option<u64>,
    /// Client networks (CIDR or address) that skip the rate limit and
    /// `max_connections_per_client`.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// `[routes.cors]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Allowed origins: `*`, `scheme://host[:port]`, `scheme://*.domain[:port]`; default `*`.
    #[serde(default)]
    pub allow_origins: Option<Vec<String>>,
    /// Methods a preflight is told; default ingress-nginx's list.
    #[serde(default)]
    pub allow_methods: Option<Vec<String>>,
    /// Request fields a preflight is told; default ingress-nginx's list.
    #[serde(default)]
    pub allow_headers: Option<Vec<String>>,
    /// Response fields scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Allow credentials (cookies, `Authorization`).
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a preflight answer may be cached, seconds; default 1728000.
    #[serde(default)]
    pub max_age: Option<u64>,
}

/// Validates a route's limits (`path` is the route's, `routes[i]`).
pub(super) fn limits(
    rate: Option<&RawRateLimit>,
    max_connections: Option<u64>,
    path: &str,
    issues: &mut Issues,
) -> LimitConfig {
    let mut config = LimitConfig::default();
    if let Some(max) = max_connections {
        match u32::try_from(max) {
            Ok(n) if n > 0 => config.max_connections = Some(n),
            _ => issues.push(
                format!("{path}.max_connections_per_client"),
                "must be > 0 and < 2^32",
            ),
        }
    }
    let Some(raw) = rate else {
        return config;
    };
    let path = format!("{path}.rate_limit");
    config.allow = raw
        .allow
        .iter()
        .enumerate()
        .filter_map(|(i, t)| super::validate_http::cidr(t, &format!("{path}.allow[{i}]"), issues))
        .collect();
    config.rate = bucket(raw, &path, issues);
    config
}

fn bucket(raw: &RawRateLimit, path: &str, issues: &mut Issues) -> Option<Bucket> {
    const SECOND: u64 = 1_000_000_000;
    let (per, count, key) = match (raw.rps, raw.rpm) {
        (Some(_), Some(_)) => {
            issues.push(format!("{path}.rpm"), "give rps or rpm, not both");
            return None;
        }
        (Some(n), None) => (SECOND, n, "rps"),
        (None, Some(n)) => (60 * SECOND, n, "rpm"),
        (None, None) => {
            if raw.allow.is_empty() || raw.burst.is_some() {
                issues.push(format!("{path}.rps"), "give rps or rpm");
            }
            return None;
        }
    };
    if count == 0 {
        issues.push(format!("{path}.{key}"), "must be > 0");
        return None;
    }
    if count > per {
        issues.push(
            format!("{path}.{key}"),
            "must be at most one per nanosecond",
        );
        return None;
    }
    let per_second = (count * SECOND).div_ceil(per).max(1);
    let burst = match raw.burst.map(u32::try_from) {
        None => u32::try_from(per_second).unwrap_or(u32::MAX),
        Some(Ok(b)) if b > 0 => b,
        Some(_) => {
            issues.push(format!("{path}.burst"), "must be > 0 and < 2^32");
            return None;
        }
    };
    let interval_ns = per / count;
    if interval_ns.checked_mul(u64::from(burst)).is_none() {
        issues.push(format!("{path}.burst"), "too large for this rate");
        return None;
    }
    Some(Bucket { interval_ns, burst })
}

/// Validates `[routes.cors]` (`path` is the route's).
pub(super) fn cors(raw: Option<&RawCors>, path: &str, issues: &mut Issues) -> Option<CorsConfig> {
    let raw = raw?;
    let path = format!("{path}.cors");
    let allow_origins = match &raw.allow_origins {
        None => vec![OriginPattern::Any],
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, o)| {
                OriginPattern::parse(o)
                    .map_err(|e| issues.push(format!("{path}.allow_origins[{i}]"), e))
                    .ok()
            })
            .collect(),
    };
    let split = |text: &str| text.split(',').map(|s| s.trim().to_owned()).collect();
    let allow_methods = raw
        .allow_methods
        .clone()
        .unwrap_or_else(|| split(DEFAULT_CORS_METHODS));
    let allow_headers = raw
        .allow_headers
        .clone()
        .unwrap_or_else(|| split(DEFAULT_CORS_HEADERS));
    for (key, list) in [
        ("allow_methods", &allow_methods),
        ("allow_headers", &allow_headers),
        ("expose_headers", &raw.expose_headers),
    ] {
        for (i, token) in list.iter().enumerate() {
            if !is_token(token) {
                let at = format!("{path}.{key}[{i}]");
                issues.push(at, format!("invalid name {token:?}: use an HTTP token"));
            }
        }
    }
    Some(CorsConfig {
        allow_origins,
        allow_methods,
        allow_headers,
        expose_headers: raw.expose_headers.clone(),
        allow_credentials: raw.allow_credentials,
        max_age: Some(raw.max_age.unwrap_or(DEFAULT_CORS_MAX_AGE)),
    })
}

/// An RFC 9110 token: method and field names.
pub fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

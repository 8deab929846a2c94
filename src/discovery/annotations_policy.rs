//! The ingress-nginx limit and CORS annotations, read into the route policy types of
//! [`crate::policy`] (the same ones `[routes.rate_limit]`, `max_connections_per_client` and
//! `[routes.cors]` give). Gathered while [`super::annotations::parse`] walks an Ingress's
//! annotations, then combined, since several of them shape one setting (`limit-rps` and
//! `limit-burst-multiplier` make one bucket; `cors-*` count only with `enable-cors`).
//!
//! Differences from ingress-nginx, each for a reason:
//! - Over a limit the answer is 429 (ingress-nginx: 503 unless `limit-req-status-code` /
//!   `limit-conn-status-code` say otherwise), with `Retry-After` for the rate.
//! - The burst is `rate × multiplier` requests at once; nginx's `limit_req` lets one more
//!   through (its burst counts the requests beyond the first).
//! - With both `limit-rps` and `limit-rpm`, nginx enforces two zones; here one bucket, the
//!   one with the lower rate.
//! - `limit-connections` counts requests in flight per client address (as nginx's
//!   `limit_conn` in an HTTP location does), including HTTP/2 streams.
//! - A rate or count of `0` turns the limit off, as in ingress-nginx; a value that is not a
//!   number is reported as an unsupported annotation and ignored.

use crate::config::policy::{DEFAULT_CORS_HEADERS, DEFAULT_CORS_MAX_AGE, DEFAULT_CORS_METHODS};
use crate::policy::cors::{CorsConfig, OriginPattern};
use crate::policy::limit::LimitConfig;
use crate::policy::table::Bucket;

/// The limit and CORS annotations of one Ingress, as read.
#[derive(Debug, Default)]
pub(super) struct PolicyNotes {
    rps: Option<u64>,
    rpm: Option<u64>,
    multiplier: Option<u64>,
    connections: Option<u64>,
    whitelist: Vec<ipnet::IpNet>,
    enable_cors: bool,
    origins: Option<Vec<OriginPattern>>,
    methods: Option<Vec<String>>,
    headers: Option<Vec<String>>,
    expose: Option<Vec<String>>,
    credentials: Option<bool>,
    max_age: Option<u64>,
}

/// Whether `name` (without the prefix) is one of these annotations.
pub(super) fn handles(name: &str) -> bool {
    matches!(
        name,
        "limit-rps"
            | "limit-rpm"
            | "limit-burst-multiplier"
            | "limit-connections"
            | "limit-whitelist"
            | "enable-cors"
            | "cors-allow-origin"
            | "cors-allow-methods"
            | "cors-allow-headers"
            | "cors-expose-headers"
            | "cors-allow-credentials"
            | "cors-max-age"
    )
}

impl PolicyNotes {
    /// Reads one annotation ([`handles`] said yes); `None` when its value does not parse.
    pub(super) fn read(&mut self, name: &str, value: &str) -> Option<()> {
        let number = || value.parse::<u64>().ok();
        match name {
            "limit-rps" => self.rps = Some(number()?),
            "limit-rpm" => self.rpm = Some(number()?),
            "limit-burst-multiplier" => self.multiplier = Some(number().filter(|&m| m > 0)?),
            "limit-connections" => self.connections = Some(number()?),
            "limit-whitelist" => self.whitelist = super::annotations::networks(value)?,
            "enable-cors" => self.enable_cors = boolean(value)?,
            "cors-allow-origin" => self.origins = Some(origins(value)?),
            "cors-allow-methods" => self.methods = Some(tokens(value)?),
            "cors-allow-headers" => self.headers = Some(tokens(value)?),
            "cors-expose-headers" => self.expose = Some(tokens(value)?),
            "cors-allow-credentials" => self.credentials = Some(boolean(value)?),
            "cors-max-age" => self.max_age = Some(number()?),
            _ => return None,
        }
        Some(())
    }

    /// The route limits these annotations ask for.
    pub(super) fn limits(&self) -> LimitConfig {
        const SECOND: u64 = 1_000_000_000;
        let multiplier = self.multiplier.unwrap_or(5);
        let per_second = self.rps.filter(|&n| n > 0).map(|n| (SECOND, n));
        let per_minute = self.rpm.filter(|&n| n > 0).map(|n| (60 * SECOND, n));
        // The lower rate: the longer interval per request.
        let chosen = [per_second, per_minute]
            .into_iter()
            .flatten()
            .filter(|&(per, n)| n <= per)
            .max_by_key(|&(per, n)| per / n);
        let rate = chosen.map(|(per, n)| {
            let interval_ns = per / n;
            // A burst whose refill time overflows the clock would be no limit at all.
            let burst = n.saturating_mul(multiplier).min(u64::MAX / interval_ns);
            Bucket {
                interval_ns,
                burst: u32::try_from(burst).unwrap_or(u32::MAX),
            }
        });
        let max_connections = self
            .connections
            .filter(|&n| n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
        LimitConfig {
            rate,
            max_connections,
            allow: self.whitelist.clone(),
        }
    }

    /// The CORS policy, when `enable-cors` is true (ingress-nginx's defaults otherwise).
    pub(super) fn cors(&self) -> Option<CorsConfig> {
        if !self.enable_cors {
            return None;
        }
        let split = |text: &str| tokens(text).unwrap_or_default();
        Some(CorsConfig {
            allow_origins: self.origins.clone().unwrap_or(vec![OriginPattern::Any]),
            allow_methods: self
                .methods
                .clone()
                .unwrap_or_else(|| split(DEFAULT_CORS_METHODS)),
            allow_headers: self
                .headers
                .clone()
                .unwrap_or_else(|| split(DEFAULT_CORS_HEADERS)),
            expose_headers: self.expose.clone().unwrap_or_default(),
            allow_credentials: self.credentials.unwrap_or(true),
            max_age: Some(self.max_age.unwrap_or(DEFAULT_CORS_MAX_AGE)),
        })
    }
}

fn boolean(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// A comma-separated list of origins (`*`, `https://a.test`, `https://*.a.test`).
fn origins(v: &str) -> Option<Vec<OriginPattern>> {
    let list: Vec<_> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| OriginPattern::parse(s).ok())
        .collect::<Option<_>>()?;
    (!list.is_empty()).then_some(list)
}

/// A comma-separated list of methods or field names.
fn tokens(v: &str) -> Option<Vec<String>> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| crate::config::policy::is_token(s).then(|| s.to_owned()))
        .collect()
}

#[cfg(test)]
#[path = "annotations_policy_tests.rs"]
mod tests;

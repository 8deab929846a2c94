//! The raw TOML of a route's retry, timeout and mirror settings (`[routes.retry]`,
//! `[routes.timeouts]`, `[routes.mirror]`), checked into
//! [`crate::config::upstream_policy`] types by validation. Kept apart from `file.rs` so the
//! route table's other settings and these grow without touching each other.

use serde::Deserialize;
use std::time::Duration;

/// `[routes.retry]`: which failures send the request to another endpoint, and how often.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included (1-10).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Conditions retried: `connect-failure`, `reset`, `timeout`, `502`, `503`, `504`.
    #[serde(default = "default_on")]
    pub on: Vec<String>,
    /// Retries allowed per 100 requests of the route (0-100).
    #[serde(default = "default_budget")]
    pub budget: u32,
    /// Retries always allowed on top of the budget (a reserve refilled by requests).
    #[serde(default = "default_min_retries")]
    pub min_retries: u32,
}

fn default_attempts() -> u32 {
    3
}
fn default_on() -> Vec<String> {
    ["connect-failure", "reset", "timeout", "502", "503", "504"]
        .map(str::to_owned)
        .to_vec()
}
fn default_budget() -> u32 {
    20
}
fn default_min_retries() -> u32 {
    3
}

/// `[routes.timeouts]`: Gateway API `HTTPRouteTimeouts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    /// From routing to the end of the response head, retries included (then 504).
    #[serde(default, with = "humantime_serde")]
    pub request: Option<Duration>,
    /// One attempt on one endpoint (replaces the service's `response_timeout`).
    #[serde(default, with = "humantime_serde")]
    pub backend_request: Option<Duration>,
}

/// `[routes.mirror]`: a copy of the route's requests sent to another service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMirror {
    /// The service that gets the copies (a name, or the `ip:port` it listens on).
    pub service: String,
    /// Share of requests mirrored, in percent (0-100, fractions allowed).
    #[serde(default = "default_percent")]
    pub percent: f64,
    /// Most copies in flight; more are dropped (and counted).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: u32,
    /// Largest request body copied; requests with larger ones are not mirrored.
    #[serde(default = "default_mirror_body")]
    pub max_body_bytes: u64,
}

fn default_mirror_body() -> u64 {
    64 * 1024
}

fn default_percent() -> f64 {
    100.0
}
fn default_max_in_flight() -> u32 {
    64
}

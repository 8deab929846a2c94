//! `[[routes]]` in the raw layer: a route's match (host, path, conditions), its target
//! (a service, a weighted split, or a redirect) and its policies, each a table of its own.
//! Split from `file.rs`, where the route had grown to a third of the file.

use super::super::{filters, matches, policy};
use super::{RawMirror, RawRetry, RawTimeouts};
use serde::Deserialize;

/// `[[routes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Exact name or `*.wildcard`; absent means any host.
    #[serde(default)]
    pub host: Option<String>,
    /// Path to match.
    #[serde(default = "default_path")]
    pub path: String,
    /// `Exact`, `Prefix`, `ImplementationSpecific` or `RegularExpression`.
    #[serde(default = "default_path_type")]
    pub path_type: crate::ingress::PathType,
    /// Only requests with this method match.
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests with all these headers (exact `value` or `regex`) match.
    #[serde(default)]
    pub headers: Vec<matches::RawMatch>,
    /// Only requests with all these query parameters (exact `value` or `regex`) match.
    #[serde(default)]
    pub query: Vec<matches::RawMatch>,
    /// Target: a service name, or the `ip:port` a service listens on (or `backends`).
    #[serde(default)]
    pub service: Option<String>,
    /// A weighted split across services, instead of `service`.
    #[serde(default)]
    pub backends: Option<Vec<RawBackend>>,
    /// What `sh`/`mh` services hash: `client_ip`, `path`, `header:NAME`, `cookie:NAME`.
    #[serde(default)]
    pub hash_on: Option<String>,
    /// Service used when the chosen one has no endpoint with weight > 0.
    #[serde(default)]
    pub fallback_service: Option<String>,
    /// Largest request body in bytes; larger gets 413. Absent means no limit.
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
    /// Client networks allowed (CIDR or bare address); others get 403. Empty: everyone.
    #[serde(default)]
    pub allow_sources: Vec<String>,
    /// Cookie that pins a client to the endpoint it first reached.
    #[serde(default)]
    pub sticky_cookie: Option<String>,
    /// Name for the `route` metric label; default `host/path`.
    #[serde(default)]
    pub name: Option<String>,
    /// Edits of the request the endpoint gets.
    #[serde(default)]
    pub request_headers: Option<filters::RawHeaderEdits>,
    /// Edits of the response the client gets.
    #[serde(default)]
    pub response_headers: Option<filters::RawHeaderEdits>,
    /// Answer with a redirect instead of forwarding.
    #[serde(default)]
    pub redirect: Option<filters::RawRedirect>,
    /// Rewrite the target and `Host` the endpoint gets.
    #[serde(default)]
    pub rewrite: Option<filters::RawRewrite>,
    /// `[routes.rate_limit]`: a token bucket per client address.
    #[serde(default)]
    pub rate_limit: Option<policy::RawRateLimit>,
    /// Requests of one client address in flight at once; more get 429.
    #[serde(default)]
    pub max_connections_per_client: Option<u64>,
    /// `[routes.cors]`: CORS answered at the proxy.
    #[serde(default)]
    pub cors: Option<policy::RawCors>,
    /// `[routes.retry]`: retries on named conditions, within a budget.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// `[routes.timeouts]`: whole-request and per-attempt deadlines.
    #[serde(default)]
    pub timeouts: Option<RawTimeouts>,
    /// `[routes.mirror]`: copies of the requests sent to another service.
    #[serde(default)]
    pub mirror: Option<RawMirror>,
    /// Names of the `[[listeners]]` this route is served on (absent: every listener).
    #[serde(default)]
    pub listeners: Option<Vec<String>>,
}

/// One entry of a route's `backends`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBackend {
    /// A service name, or the `ip:port` a service listens on.
    pub service: String,
    /// Its share of the requests (weight / sum); 0 never chosen.
    #[serde(default = "default_backend_weight")]
    pub weight: u32,
}

fn default_backend_weight() -> u32 {
    1
}

fn default_path() -> String {
    "/".to_owned()
}
fn default_path_type() -> crate::ingress::PathType {
    crate::ingress::PathType::Prefix
}

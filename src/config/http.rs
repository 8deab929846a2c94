//! The validated HTTP part of the config: listeners, passthrough names, hosts and routes (a
//! route's match, target and policies). Split from `config.rs` so each file keeps to one
//! layer of the config; the raw TOML side is `file.rs` and `file/route.rs`.

use super::upstream_policy;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

/// The L7 part of the config.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpConfig {
    /// Service for requests no route matches.
    pub default_service: Option<Arc<str>>,
    /// Peers whose `X-Forwarded-*` headers are trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Also send RFC 7239 `Forwarded`.
    pub forwarded: bool,
    /// Access log format.
    pub access_log: AccessLog,
    /// HTTP and HTTPS listeners.
    pub listeners: Vec<ListenerConfig>,
    /// Certificates for the TLS listeners.
    pub certificates: Vec<crate::tls::CertSpec>,
    /// Index into `certificates` of the one served for missing or unknown SNI.
    pub default_certificate: Option<usize>,
    /// Per-host settings.
    pub hosts: Vec<HostConfig>,
    /// Host + path → service, in file order (the first of two equal rules wins).
    pub routes: Vec<RouteConfig>,
    /// SNI names passed through undecrypted to a service, on TLS listeners.
    pub passthrough: Vec<PassthroughConfig>,
}

/// TLS connections whose SNI is one of `hosts` go, undecrypted, to `service` (TCP).
#[derive(Debug, Clone, PartialEq)]
pub struct PassthroughConfig {
    /// SNI names: exact or wildcards.
    pub hosts: Vec<crate::ingress::HostPattern>,
    /// The service whose endpoints receive the connections.
    pub service: Arc<str>,
    /// TLS listeners this applies to; empty: every TLS listener.
    pub listeners: Vec<Arc<str>>,
    /// `*.x` covers names any depth of labels under `x` (Gateway API TLSRoutes); otherwise
    /// exactly one label (the certificates' rule: the file and Ingresses).
    pub deep_wildcards: bool,
}

/// One HTTP(S) listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerConfig {
    /// Unique name, the `listener` metric label.
    pub name: Arc<str>,
    /// Address to accept on.
    pub listen: SocketAddr,
    /// Terminate TLS (ALPN h2 and http/1.1).
    pub tls: bool,
    /// Require a PROXY protocol header (v1 or v2) before anything else.
    pub accept_proxy_protocol: bool,
    /// TLS handshake deadline.
    pub handshake_timeout: Duration,
    /// Deadline for a request's headers.
    pub header_read_timeout: Duration,
    /// Largest request head; larger gets 431.
    pub max_header_bytes: usize,
    /// Keep `%2F`/`%5C` in paths instead of refusing them.
    pub keep_encoded_slashes: bool,
    /// Forward request fields whose names contain `_`.
    pub underscores_in_headers: bool,
    /// Most open connections; `None` is unlimited.
    pub max_connections: Option<NonZeroUsize>,
    /// HTTP/2 concurrent streams per connection.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: how long a connection may have no request in flight before it is shut down.
    pub h2_idle_timeout: Duration,
    /// HTTP/2: how long without hearing from the client before a PING; `None`: no PINGs.
    pub h2_keepalive_interval: Option<Duration>,
    /// HTTP/2: how long a PING may go unanswered before the connection is closed.
    pub h2_keepalive_timeout: Duration,
    /// Named listeners sharing this socket, told apart by the request's host (Gateway
    /// listeners), each serving only the routes fenced to it ([`crate::ingress::listener_routes`]).
    pub sections: Vec<crate::ingress::listener_routes::Section>,
    /// Serve only `sections`: hosts none of them claims get 404, never the file's routes.
    pub isolated: bool,
    /// Also serve HTTP/3 over UDP on `listen` ([`crate::router::http3`]); TLS listeners only.
    pub http3: bool,
    /// The `ma` of the `Alt-Svc` advertising HTTP/3 on the TCP side.
    pub http3_alt_svc_max_age: Duration,
}

/// Settings for one host (exact or wildcard).
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// Which hosts.
    pub host: crate::ingress::HostPattern,
    /// 308 plain-HTTP requests to https (ACME challenges excepted).
    pub redirect_https: bool,
    /// Service for this host's requests that match no route.
    pub default_service: Option<Arc<str>>,
}

/// One route.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteConfig {
    /// Which hosts; `None` is any host.
    pub host: Option<crate::ingress::HostPattern>,
    /// Path to match.
    pub path: String,
    /// How to match it.
    pub path_type: crate::ingress::PathType,
    /// Method, header and query conditions; all must hold (none by default).
    pub conditions: crate::ingress::Conditions,
    /// Target service name (empty for a route that only redirects).
    pub service: Arc<str>,
    /// Largest request body; larger gets 413.
    pub max_body_bytes: Option<u64>,
    /// Client networks allowed; others get 403. Empty: everyone.
    pub allow_sources: Vec<ipnet::IpNet>,
    /// Cookie that pins a client to the endpoint it first reached.
    pub sticky_cookie: Option<Arc<str>>,
    /// The `route` label of this route's metrics.
    pub name: Arc<str>,
    /// Weighted split, hash key and fallback service (with a split, `service` is its first
    /// backend of weight > 0, for display).
    pub backends: crate::ingress::BackendPolicy,
    /// Header edits, redirect, rewrite (`None`: none).
    pub filters: Option<Arc<crate::ingress::filters::RouteFilters>>,
    /// Limits per client address (`[routes.rate_limit]`, `max_connections_per_client`).
    pub limits: crate::policy::limit::LimitConfig,
    /// `[routes.cors]`.
    pub cors: Option<crate::policy::cors::CorsConfig>,
    /// Retries, timeouts and mirroring.
    pub upstream: upstream_policy::UpstreamPolicyConfig,
    /// The listeners (or listener sections) this route is served on; `None`: every listener
    /// that is not isolated ([`crate::ingress::listener_routes`]).
    pub listeners: Option<Arc<[Arc<str>]>>,
    /// Where it came from (the admin page shows it).
    pub source: super::RouteSource,
}

/// Access log format.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLog {
    /// One human-readable line per request (the `access` log target).
    #[default]
    Text,
    /// One JSON object per request.
    Json,
    /// No access log.
    Off,
}

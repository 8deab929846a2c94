//! The raw TOML layer: serde structs that mirror the file exactly.
//!
//! Every struct denies unknown keys, so a typo (`listne = ...`) is an error naming the key
//! rather than a silently ignored setting. Addresses stay strings here so that validation
//! can report *every* bad address with its path instead of stopping at the first one;
//! durations are parsed by `humantime-serde` ("250ms", "30s", "10m").

use super::{Protocol, ProxyProtocol};
use crate::balance::Scheduler;
use serde::Deserialize;
use std::time::Duration;

mod route;
mod upstream_policy;
pub use route::{RawBackend, RawRoute};
pub use upstream_policy::{RawMirror, RawRetry, RawTimeouts};

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[admin]`: the admin HTTP listener.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[runtime]`: process-wide settings.
    #[serde(default)]
    pub runtime: RawRuntime,
    /// `[[services]]`: one entry per virtual service (VIP:port).
    #[serde(default)]
    pub services: Vec<RawService>,
    /// `[http]`: settings shared by the HTTP listeners.
    #[serde(default)]
    pub http: RawHttp,
    /// `[[listeners]]`: HTTP and HTTPS listeners (the L7 router).
    #[serde(default)]
    pub listeners: Vec<RawListener>,
    /// `[[certificates]]`: TLS certificates, chosen by SNI.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// `[[hosts]]`: per-host settings.
    #[serde(default)]
    pub hosts: Vec<RawHost>,
    /// `[[routes]]`: host + path → service.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// `[ipvs]`: the kernel IPVS data plane.
    #[serde(default)]
    pub ipvs: super::ipvs::RawIpvs,
    /// `[[passthrough]]`: SNI names passed through undecrypted to a service.
    #[serde(default)]
    pub passthrough: Vec<RawPassthrough>,
}

/// `[http]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Service for requests no route matches (the global default backend).
    #[serde(default)]
    pub default_service: Option<String>,
    /// Peers (CIDRs) whose `X-Forwarded-*` headers are kept and appended to.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Also send an RFC 7239 `Forwarded` header.
    #[serde(default)]
    pub forwarded: bool,
    /// Access log: `off`, `text` or `json`.
    #[serde(default)]
    pub access_log: super::AccessLog,
}

/// `[[listeners]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Unique name; the `listener` metric label.
    pub name: String,
    /// Address to accept on.
    pub listen: String,
    /// Terminate TLS here (needs `[[certificates]]`).
    #[serde(default)]
    pub tls: bool,
    /// Require a PROXY protocol (v1 or v2) header first: the listener is behind an L4 balancer.
    #[serde(default)]
    pub accept_proxy_protocol: bool,
    /// Deadline for the TLS handshake.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Deadline for reading a request's headers (slowloris protection).
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Largest request head in bytes; larger gets 431.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Keep `%2F` and `%5C` in request paths as they are (not separators) instead of
    /// refusing such requests with 400.
    #[serde(default)]
    pub keep_encoded_slashes: bool,
    /// Forward request header fields whose names contain `_` (dropped by default, as nginx
    /// does: `X_Forwarded_For` could otherwise pass for `X-Forwarded-For` behind us).
    #[serde(default)]
    pub underscores_in_headers: bool,
    /// Most open connections; 0 means no limit.
    #[serde(default)]
    pub max_connections: usize,
    /// HTTP/2 streams per connection.
    #[serde(default = "default_h2_streams")]
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2: close (GOAWAY) a connection with no request in flight for this long.
    #[serde(default = "default_h2_idle_timeout", with = "humantime_serde")]
    pub h2_idle_timeout: Duration,
    /// HTTP/2: PING a client heard nothing from for this long; "0s" sends no PINGs.
    #[serde(default = "default_h2_keepalive_interval", with = "humantime_serde")]
    pub h2_keepalive_interval: Duration,
    /// HTTP/2: close a connection whose client has not answered a PING within this.
    #[serde(default = "default_h2_keepalive_timeout", with = "humantime_serde")]
    pub h2_keepalive_timeout: Duration,
    /// Also serve HTTP/3 (QUIC) on the same address and port over UDP (TLS listeners only).
    #[serde(default)]
    pub http3: bool,
    /// The `ma` (max-age) of the `Alt-Svc` the TCP side advertises HTTP/3 with.
    #[serde(default = "default_http3_alt_svc_max_age", with = "humantime_serde")]
    pub http3_alt_svc_max_age: Duration,
}

fn default_http3_alt_svc_max_age() -> Duration {
    Duration::from_secs(86_400)
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_header_bytes() -> usize {
    64 * 1024
}
fn default_h2_streams() -> u32 {
    128
}
fn default_h2_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_h2_keepalive_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_h2_keepalive_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[[certificates]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCertificate {
    /// PEM certificate chain file.
    pub cert: String,
    /// PEM private key file.
    pub key: String,
    /// Names it serves; empty means the certificate's DNS names.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Serve it when SNI is missing or unknown.
    #[serde(default)]
    pub default: bool,
}

/// `[[hosts]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Exact name or `*.wildcard`.
    pub host: String,
    /// Answer plain-HTTP requests with a 308 to https (except ACME challenges).
    #[serde(default)]
    pub redirect_https: bool,
    /// Service for this host's requests that no route path matches.
    #[serde(default)]
    pub default_service: Option<String>,
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Address of the admin listener (`/metrics`, `/livez`, `/readyz`, `/debug/table`).
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: default_admin_listen(),
        }
    }
}

fn default_admin_listen() -> String {
    "127.0.0.1:9901".to_owned()
}

/// `[runtime]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// Worker threads; 0 means one per CPU.
    #[serde(default)]
    pub workers: usize,
    /// How long open connections may drain on shutdown.
    #[serde(default = "default_drain_timeout", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// How often the config file is checked for changes; "0s" turns watching off.
    #[serde(default = "default_watch_interval", with = "humantime_serde")]
    pub watch_interval: Duration,
}

impl Default for RawRuntime {
    fn default() -> Self {
        Self {
            workers: 0,
            drain_timeout: default_drain_timeout(),
            watch_interval: default_watch_interval(),
        }
    }
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_watch_interval() -> Duration {
    Duration::from_secs(2)
}

/// `[[services]]`: a virtual service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Unique name; used in logs and as the `service` metric label.
    pub name: String,
    /// Address to accept on (the VIP:port, or any local address). Absent: the service only
    /// serves HTTP routes, no L4 listener.
    #[serde(default)]
    pub listen: Option<String>,
    /// `tcp` or `udp`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Scheduler name, as in IPVS.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// Maglev lookup table size (must be prime); only for `mh`.
    #[serde(default)]
    pub mh_table_size: Option<u64>,
    /// Upstream connect deadline (TCP).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// HTTP: `http1` or `h2c` (HTTP/2 without TLS, for gRPC) to the endpoints.
    #[serde(default)]
    pub upstream_protocol: super::UpstreamProtocol,
    /// HTTP `https`: PEM file of the CA(s) that sign the endpoints' certificates.
    #[serde(default)]
    pub upstream_ca: Option<String>,
    /// HTTP `https`: server name sent as SNI and verified (default: the endpoint's IP).
    #[serde(default)]
    pub upstream_sni: Option<String>,
    /// HTTP `https`/`h2`: names (DNS, IP or URI SANs) the endpoint's certificate must carry,
    /// checked instead of the SNI.
    #[serde(default)]
    pub upstream_verify_names: Vec<String>,
    /// `https`: verify the endpoints' certificates (false: encryption only).
    #[serde(default = "yes")]
    pub upstream_verify: bool,
    /// HTTP: deadline for the response headers after the request was sent.
    #[serde(default = "default_response_timeout", with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Endpoints tried per connection before giving up (TCP).
    #[serde(default = "default_connect_attempts")]
    pub connect_attempts: u32,
    /// Close a connection (or forget a UDP flow) after this long without traffic.
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    /// Most concurrent connections (TCP); 0 means no limit.
    #[serde(default)]
    pub max_connections: usize,
    /// Most concurrent flows (UDP).
    #[serde(default = "default_max_flows")]
    pub max_flows: usize,
    /// UDP: receive buffer (`SO_RCVBUF`) of the service's socket and of each flow's socket,
    /// in bytes. Absent: the kernel's default (`net.core.rmem_default`).
    #[serde(default)]
    pub udp_recv_buffer: Option<u64>,
    /// UDP: send buffer (`SO_SNDBUF`) of the same sockets, in bytes. Absent: the kernel's
    /// default (`net.core.wmem_default`).
    #[serde(default)]
    pub udp_send_buffer: Option<u64>,
    /// `none` or `v2`: send a PROXY protocol header to the endpoint (TCP).
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    /// HTTP: the `Upgrade` protocols passed on to the endpoints (others go as ordinary
    /// requests); `h2c` is never allowed.
    #[serde(default = "default_upgrades")]
    pub upgrades: Vec<String>,
    /// Consecutive connect failures before an endpoint is skipped; 0 turns this off.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// How long a failed endpoint is skipped before it is tried again.
    #[serde(default = "default_failure_backoff", with = "humantime_serde")]
    pub failure_backoff: Duration,
    /// The real servers behind the service.
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
    /// `userspace`, `ipvs` or `auto`; absent: `[ipvs].dataplane`.
    #[serde(default)]
    pub dataplane: Option<super::Dataplane>,
    /// IPVS persistence (client affinity) timeout; absent or "0s": off.
    #[serde(default, with = "humantime_serde")]
    pub persistence_timeout: Option<Duration>,
    /// IPVS `sh`/`mh` scheduler flags: `fallback`, `port`.
    #[serde(default)]
    pub scheduler_flags: Vec<String>,
}

pub(super) fn default_upgrades() -> Vec<String> {
    vec!["websocket".to_owned()]
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}
pub(super) fn default_response_timeout() -> Duration {
    Duration::from_secs(60)
}
pub(super) fn default_connect_attempts() -> u32 {
    3
}
pub(super) fn default_max_flows() -> usize {
    65_536
}
pub(super) fn default_max_failures() -> u32 {
    3
}
pub(super) fn default_failure_backoff() -> Duration {
    Duration::from_secs(10)
}

/// `[[services.endpoints]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEndpoint {
    /// `ip:port` of the real server.
    pub address: String,
    /// Relative weight; 0 drains the endpoint (no new connections).
    #[serde(default = "default_weight")]
    pub weight: u64,
}

fn default_weight() -> u64 {
    1
}

fn yes() -> bool {
    true
}

/// `[[passthrough]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPassthrough {
    /// SNI names (exact or `*.` one-label wildcards) passed through.
    pub hosts: Vec<String>,
    /// The TCP service (name or `ip:port`) that receives the connections.
    pub service: String,
    /// TLS listeners this applies to; empty: every TLS listener.
    #[serde(default)]
    pub listeners: Vec<String>,
}

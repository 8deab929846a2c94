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
    /// Address to accept on (the VIP:port, or any local address).
    pub listen: String,
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
    /// `none` or `v2`: send a PROXY protocol header to the endpoint (TCP).
    #[serde(default)]
    pub proxy_protocol: ProxyProtocol,
    /// Consecutive connect failures before an endpoint is skipped; 0 turns this off.
    #[serde(default = "default_max_failures")]
    pub max_failures: u32,
    /// How long a failed endpoint is skipped before it is tried again.
    #[serde(default = "default_failure_backoff", with = "humantime_serde")]
    pub failure_backoff: Duration,
    /// The real servers behind the service.
    #[serde(default)]
    pub endpoints: Vec<RawEndpoint>,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(3)
}
fn default_connect_attempts() -> u32 {
    3
}
fn default_max_flows() -> usize {
    65_536
}
fn default_max_failures() -> u32 {
    3
}
fn default_failure_backoff() -> Duration {
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

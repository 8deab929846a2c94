//! Kernel IPVS settings: the `[ipvs]` section and the per-service IPVS keys.
//!
//! They live in their own file (raw serde structs, validated types and their checks) so the
//! IPVS data plane touches the rest of the config in only a few lines. Every service resolves
//! its `dataplane` here, with `[ipvs].dataplane` as the default, so the snapshot alone says
//! which services the kernel should serve.

use super::validate::Issues;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which data plane serves a service's VIP:port.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataplane {
    /// Switchyard accepts and proxies the connections itself.
    #[default]
    Userspace,
    /// The kernel's IPVS forwards packets; Switchyard only programs it. Without IPVS the
    /// service falls back to user space with an error in the log.
    Ipvs,
    /// IPVS when the `IPVS` genetlink family resolves and the process has CAP_NET_ADMIN,
    /// otherwise user space.
    Auto,
}

impl Dataplane {
    /// The name used in the config and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Dataplane::Userspace => "userspace",
            Dataplane::Ipvs => "ipvs",
            Dataplane::Auto => "auto",
        }
    }
}

/// IPVS forwarding method (`ipvsadm -m`, `-g`, `-i`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// NAT: the director rewrites the destination (`-m`, masquerading).
    #[default]
    Masq,
    /// Direct routing: the real server holds the VIP and answers the client itself (`-g`).
    Route,
    /// IP-in-IP tunnel to the real server (`-i`).
    Tunnel,
}

/// The validated `[ipvs]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct IpvsConfig {
    /// Default data plane of services that do not set their own.
    pub dataplane: Dataplane,
    /// Dummy interface that holds the VIPs (like kube-proxy's `kube-ipvs0`).
    pub interface: String,
    /// Full resync (dump the kernel, diff, apply) at least this often.
    pub resync_interval: Duration,
    /// A removed TCP endpoint keeps weight 0 until its connections end or this passes.
    pub drain_timeout: Duration,
    /// Forwarding method of the destinations.
    pub forwarding: Forwarding,
    /// Kernel services with a VIP in these ranges are Switchyard's even when not configured
    /// (so they are removed when they leave the config, also across restarts).
    pub owned_ranges: Vec<ipnet::IpNet>,
}

/// Per-service IPVS settings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServiceIpvs {
    /// This service's data plane (the global default already applied).
    pub dataplane: Dataplane,
    /// Persistence (client affinity) timeout; `None` is off (`ipvsadm -p`).
    pub persistence: Option<Duration>,
    /// `sh`/`mh` flag `fallback`: skip an unavailable (weight 0, overloaded) server.
    pub sched_fallback: bool,
    /// `sh`/`mh` flag `port`: hash the source port too.
    pub sched_port: bool,
    /// The VIP is served by the kernel or not at all: never bound in user space (Kubernetes
    /// ClusterIPs, which are not local addresses). Not a file setting.
    pub kernel_only: bool,
}

/// `[ipvs]` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIpvs {
    /// `userspace`, `ipvs` or `auto`.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// Name of the dummy interface for the VIPs.
    #[serde(default = "default_interface")]
    pub interface: String,
    /// How often the kernel state is fully resynced.
    #[serde(default = "default_resync", with = "humantime_serde")]
    pub resync_interval: Duration,
    /// Deadline for weight-0 destinations before they are deleted.
    #[serde(default = "default_drain", with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// `masq`, `route` or `tunnel`.
    #[serde(default)]
    pub forwarding: Forwarding,
    /// CIDRs of VIPs Switchyard owns in the kernel.
    #[serde(default)]
    pub owned_ranges: Vec<String>,
}

impl Default for RawIpvs {
    fn default() -> Self {
        Self {
            dataplane: Dataplane::default(),
            interface: default_interface(),
            resync_interval: default_resync(),
            drain_timeout: default_drain(),
            forwarding: Forwarding::default(),
            owned_ranges: Vec::new(),
        }
    }
}

fn default_interface() -> String {
    "switchyard0".to_owned()
}
fn default_resync() -> Duration {
    Duration::from_secs(30)
}
fn default_drain() -> Duration {
    Duration::from_secs(300)
}

/// Validates `[ipvs]`.
pub(super) fn ipvs(raw: &RawIpvs, issues: &mut Issues) -> IpvsConfig {
    let name_ok = (1..=15).contains(&raw.interface.len())
        && raw
            .interface
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !name_ok {
        issues.push(
            "ipvs.interface",
            format!(
                "invalid interface name {:?} (1-15 letters, digits, '-', '_', '.')",
                raw.interface
            ),
        );
    }
    super::validate::nonzero_duration(raw.resync_interval, "ipvs.resync_interval", issues);
    let mut owned_ranges = Vec::new();
    for (i, text) in raw.owned_ranges.iter().enumerate() {
        match text.parse::<ipnet::IpNet>() {
            Ok(net) => owned_ranges.push(net.trunc()),
            Err(_) => issues.push(
                format!("ipvs.owned_ranges[{i}]"),
                format!("invalid CIDR {text:?}"),
            ),
        }
    }
    IpvsConfig {
        dataplane: raw.dataplane,
        interface: raw.interface.clone(),
        resync_interval: raw.resync_interval,
        drain_timeout: raw.drain_timeout,
        forwarding: raw.forwarding,
        owned_ranges,
    }
}

/// Validates a service's IPVS keys (`dataplane`, `persistence_timeout`, `scheduler_flags`).
pub(super) fn service(
    raw: &super::file::RawService,
    default: Dataplane,
    path: &str,
    issues: &mut Issues,
) -> ServiceIpvs {
    let mut out = ServiceIpvs {
        dataplane: raw.dataplane.unwrap_or(default),
        persistence: raw.persistence_timeout.filter(|d| !d.is_zero()),
        ..ServiceIpvs::default()
    };
    if out
        .persistence
        .is_some_and(|d| d.as_secs() > u64::from(u32::MAX))
    {
        issues.push(format!("{path}.persistence_timeout"), "is too long");
    }
    let hashing = matches!(
        raw.scheduler,
        crate::balance::Scheduler::Sh | crate::balance::Scheduler::Mh
    );
    for (i, flag) in raw.scheduler_flags.iter().enumerate() {
        let at = format!("{path}.scheduler_flags[{i}]");
        match flag.as_str() {
            _ if !hashing => issues.push(at, "scheduler flags are only for \"sh\" and \"mh\""),
            "fallback" => out.sched_fallback = true,
            "port" => out.sched_port = true,
            other => issues.push(
                at,
                format!("unknown flag {other:?} (want fallback or port)"),
            ),
        }
    }
    out
}

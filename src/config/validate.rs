//! Raw TOML structs → validated [`Config`], collecting every problem with its path.

use super::file::{RawConfig, RawEndpoint, RawService};
use super::{
    AdminConfig, Config, DEFAULT_MH_TABLE_SIZE, EndpointConfig, Issue, MAX_WEIGHT, Protocol,
    ServiceConfig,
};
use crate::balance::Scheduler;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

/// Largest Maglev table accepted: 2^24 entries of u16 is already 32 MiB per service.
const MAX_MH_TABLE_SIZE: u64 = 16_777_213;
/// Upper bound on `connect_attempts`, so a typo cannot make a connection spin for hours.
const MAX_CONNECT_ATTEMPTS: u32 = 100;

/// Collects issues while walking the raw config.
#[derive(Default)]
pub(super) struct Issues(Vec<Issue>);

impl Issues {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Validates a whole raw config.
/// With `external_certificates`, TLS listeners may have no `[[certificates]]` (they come
/// from Kubernetes Secrets).
pub(super) fn validate(raw: RawConfig, external_certificates: bool) -> Result<Config, Vec<Issue>> {
    let mut issues = Issues::default();
    let admin_listen = socket_addr(&raw.admin.listen, "admin.listen", &mut issues);
    let services: Vec<ServiceConfig> = raw
        .services
        .iter()
        .enumerate()
        .filter_map(|(i, s)| service(s, &format!("services[{i}]"), &raw, &mut issues))
        .collect();
    check_unique(&raw, admin_listen, &mut issues);
    let http = super::validate_http::http(&raw, &services, external_certificates, &mut issues);
    let ipvs = super::ipvs::ipvs(&raw.ipvs, &mut issues);
    if !issues.0.is_empty() {
        return Err(issues.0);
    }
    let admin_listen = admin_listen.ok_or_else(Vec::new)?;
    Ok(Config {
        admin: AdminConfig {
            listen: admin_listen,
        },
        runtime: super::RuntimeConfig {
            workers: NonZeroUsize::new(raw.runtime.workers),
            drain_timeout: raw.runtime.drain_timeout,
            watch_interval: Some(raw.runtime.watch_interval).filter(|d| !d.is_zero()),
        },
        services,
        http,
        ipvs,
    })
}

pub(super) fn socket_addr(text: &str, path: &str, issues: &mut Issues) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            issues.push(
                path,
                format!("invalid socket address {text:?} (want ip:port)"),
            );
            None
        }
    }
}

fn service(
    raw: &RawService,
    path: &str,
    file: &RawConfig,
    issues: &mut Issues,
) -> Option<ServiceConfig> {
    let before = issues.0.len();
    let ipvs = super::ipvs::service(raw, file.ipvs.dataplane, path, issues);
    valid_name_or_issue(&raw.name, &format!("{path}.name"), issues);
    let listen = raw
        .listen
        .as_ref()
        .map(|text| socket_addr(text, &format!("{path}.listen"), issues));
    let endpoints = endpoints(&raw.endpoints, path, issues);
    let mh_table_size = mh_table_size(raw, endpoints.len(), path, issues);
    let connect_attempts = NonZeroU32::new(raw.connect_attempts)
        .filter(|n| n.get() <= MAX_CONNECT_ATTEMPTS)
        .or_else(|| {
            issues.push(
                format!("{path}.connect_attempts"),
                format!("must be between 1 and {MAX_CONNECT_ATTEMPTS}"),
            );
            None
        });
    nonzero_duration(
        raw.connect_timeout,
        &format!("{path}.connect_timeout"),
        issues,
    );
    let idle_timeout = raw.idle_timeout.unwrap_or(match raw.protocol {
        Protocol::Tcp => Duration::from_secs(600),
        Protocol::Udp => Duration::from_secs(30),
    });
    nonzero_duration(idle_timeout, &format!("{path}.idle_timeout"), issues);
    let max_flows = NonZeroUsize::new(raw.max_flows).or_else(|| {
        issues.push(format!("{path}.max_flows"), "must be at least 1");
        None
    });
    let udp_buffers = super::validate_udp::buffers(raw, path, issues);
    if raw.protocol == Protocol::Udp && raw.proxy_protocol != super::ProxyProtocol::None {
        issues.push(
            format!("{path}.proxy_protocol"),
            "PROXY protocol is only supported for tcp services",
        );
    }
    for (i, upgrade) in raw.upgrades.iter().enumerate() {
        let token = !upgrade.is_empty()
            && upgrade
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || upgrade.eq_ignore_ascii_case("h2c") {
            issues.push(
                format!("{path}.upgrades[{i}]"),
                "must be a protocol name (a token), and not h2c",
            );
        }
    }
    let upstream_verify_names = super::validate_upstream_tls::verify_names(raw, path, issues);
    if matches!(
        raw.upstream_protocol,
        super::UpstreamProtocol::Https | super::UpstreamProtocol::H2
    ) && raw.upstream_verify
        && raw.upstream_ca.is_none()
    {
        issues.push(
            format!("{path}.upstream_ca"),
            format!(
                "upstream_protocol \"{}\" needs a CA file (or \"system\") to verify the \
                 endpoints with (or upstream_verify = false)",
                if raw.upstream_protocol == super::UpstreamProtocol::H2 {
                    "h2"
                } else {
                    "https"
                }
            ),
        );
    }
    if issues.0.len() != before {
        return None;
    }
    Some(ServiceConfig {
        name: Arc::from(raw.name.as_str()),
        listen: listen.map_or(Some(None), |l| l.map(Some))?,
        protocol: raw.protocol,
        scheduler: raw.scheduler,
        mh_table_size: mh_table_size?,
        connect_timeout: raw.connect_timeout,
        response_timeout: raw.response_timeout,
        upstream_protocol: raw.upstream_protocol,
        upstream_ca: raw.upstream_ca.as_deref().map(super::Trust::parse),
        upstream_sni: raw.upstream_sni.clone(),
        upstream_verify_names: upstream_verify_names?,
        upstream_verify: raw.upstream_verify,
        connect_attempts: connect_attempts?,
        idle_timeout,
        max_connections: NonZeroUsize::new(raw.max_connections),
        max_flows: max_flows?,
        udp_buffers: udp_buffers?,
        proxy_protocol: raw.proxy_protocol,
        upgrades: raw
            .upgrades
            .iter()
            .map(|u| Arc::from(u.to_ascii_lowercase()))
            .collect(),
        max_failures: NonZeroU32::new(raw.max_failures),
        failure_backoff: raw.failure_backoff,
        endpoints,
        ipvs,
    })
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn valid_name_or_issue(name: &str, path: &str, issues: &mut Issues) {
    if !valid_name(name) {
        issues.push(
            path,
            format!("invalid name {name:?}: use 1-63 letters, digits, '-', '_' or '.'"),
        );
    }
}

pub(super) fn nonzero_duration(d: Duration, path: &str, issues: &mut Issues) {
    if d.is_zero() {
        issues.push(path, "must be longer than 0s");
    }
}

fn endpoints(raw: &[RawEndpoint], path: &str, issues: &mut Issues) -> Vec<EndpointConfig> {
    if raw.is_empty() {
        issues.push(
            format!("{path}.endpoints"),
            "a service needs at least one endpoint",
        );
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, ep) in raw.iter().enumerate() {
        let at = format!("{path}.endpoints[{i}]");
        let address = socket_addr(&ep.address, &format!("{at}.address"), issues);
        if let Some(addr) = address
            && !seen.insert(addr)
        {
            issues.push(
                format!("{at}.address"),
                format!("duplicate endpoint {addr}"),
            );
        }
        let weight = u32::try_from(ep.weight).ok().filter(|w| *w <= MAX_WEIGHT);
        if weight.is_none() {
            issues.push(
                format!("{at}.weight"),
                format!("weight {} is out of range 0..={MAX_WEIGHT}", ep.weight),
            );
        }
        if let (Some(address), Some(weight)) = (address, weight) {
            out.push(EndpointConfig { address, weight });
        }
    }
    out
}

fn mh_table_size(
    raw: &RawService,
    endpoints: usize,
    path: &str,
    issues: &mut Issues,
) -> Option<u32> {
    let size = raw
        .mh_table_size
        .unwrap_or(u64::from(DEFAULT_MH_TABLE_SIZE));
    let at = format!("{path}.mh_table_size");
    if raw.mh_table_size.is_some() && raw.scheduler != Scheduler::Mh {
        issues.push(at, "only used by scheduler \"mh\"");
        return None;
    }
    if !(2..=MAX_MH_TABLE_SIZE).contains(&size) || !is_prime(size) {
        issues.push(
            at,
            format!("{size} must be a prime between 2 and {MAX_MH_TABLE_SIZE}"),
        );
        return None;
    }
    let want = 100 * endpoints as u64;
    if raw.scheduler == Scheduler::Mh && size < want {
        issues.push(
            at,
            format!(
                "{size} is too small for {endpoints} endpoints: use a prime of at least {want}"
            ),
        );
        return None;
    }
    u32::try_from(size).ok()
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// Service and listener names must be unique, and no two listeners of one protocol may share
/// an address (port 0 asks the kernel for a fresh port, so it may repeat); the admin listener
/// and the HTTP listeners are TCP. This runs over the raw config, so paths keep their file
/// positions and an entry with other problems is still checked.
fn check_unique(raw: &RawConfig, admin: Option<SocketAddr>, issues: &mut Issues) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut addrs: HashMap<(Protocol, SocketAddr), String> = HashMap::new();
    if let Some(admin) = admin.filter(|a| a.port() != 0) {
        addrs.insert((Protocol::Tcp, admin), "admin.listen".to_owned());
    }
    let mut claim = |protocol: Protocol, text: Option<&str>, owner: String, issues: &mut Issues| {
        // An unparsable address was reported already.
        let Some(listen) = text
            .and_then(|t| t.parse::<SocketAddr>().ok())
            .filter(|a| a.port() != 0)
        else {
            return;
        };
        match addrs.entry((protocol, listen)) {
            std::collections::hash_map::Entry::Occupied(first) => issues.push(
                format!("{owner}.listen"),
                format!("{protocol} {listen} is already used by {}", first.get()),
            ),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(owner);
            }
        }
    };
    for (i, s) in raw.services.iter().enumerate() {
        if let Some(first) = names.insert(&s.name, i) {
            issues.push(
                format!("services[{i}].name"),
                format!(
                    "duplicate name {:?} (first used by services[{first}])",
                    s.name
                ),
            );
        }
        claim(
            s.protocol,
            s.listen.as_deref(),
            format!("services[{i}]"),
            issues,
        );
    }
    let mut listener_names: HashMap<&str, usize> = HashMap::new();
    for (i, l) in raw.listeners.iter().enumerate() {
        if let Some(first) = listener_names.insert(&l.name, i) {
            issues.push(
                format!("listeners[{i}].name"),
                format!(
                    "duplicate name {:?} (first used by listeners[{first}])",
                    l.name
                ),
            );
        }
        claim(
            Protocol::Tcp,
            Some(&l.listen),
            format!("listeners[{i}]"),
            issues,
        );
    }
}

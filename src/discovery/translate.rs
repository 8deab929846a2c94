//! Services and their EndpointSlices → Switchyard service configs.
//!
//! One Kubernetes Service port becomes one Switchyard service named `namespace/name:port`
//! (the port's name, or its number when unnamed). Its endpoints are the union of every
//! EndpointSlice of the Service: for each slice, the slice port with the same name as the
//! Service port gives the endpoint port (that is the Service's `targetPort`, resolved per pod
//! by the EndpointSlice controller), and each endpoint address gives the IP. Following the
//! EndpointSlice API: endpoints that are `ready` (unset counts as ready) are used; when there
//! are none, endpoints that are `serving` and `terminating` are used instead, so a Service
//! whose pods are all shutting down keeps answering while they drain. IPv4 and IPv6 slices
//! are both read; FQDN slices are ignored.
//!
//! `sessionAffinity: ClientIP` selects the `sh` (source hash) scheduler; its timeout is kept in
//! [`KubeService::affinity_timeout`] but a stateless hash has no timeout to enforce. Headless
//! Services (`clusterIP: None`) are route targets without a VIP; ExternalName Services have no
//! endpoints and produce nothing (an Ingress naming one is skipped). ClusterIPs are kept in
//! [`KubeService::cluster_ip`] for the IPVS backend; nothing binds them here.

use crate::balance::Scheduler;
use crate::config::{EndpointConfig, Protocol, ServiceConfig};
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// One Switchyard service made from one Service port.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeService {
    /// The config (no listener: a route target).
    pub config: ServiceConfig,
    /// The ClusterIP:port (VIP) of this port; `None` for headless Services.
    pub cluster_ip: Option<SocketAddr>,
    /// `sessionAffinityConfig.clientIP.timeoutSeconds` for `ClientIP` affinity.
    pub affinity_timeout: Option<Duration>,
}

/// Longest service name accepted (namespace 63 + name 63 + port name 15 and separators).
const MAX_NAME: usize = 160;

/// The Switchyard name of a Service port.
pub(super) fn service_name(namespace: &str, name: &str, port: &ServicePort) -> Option<Arc<str>> {
    let key = match port.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => port.port.to_string(),
    };
    let full = format!("{namespace}/{name}:{key}");
    let ok = full.len() <= MAX_NAME
        && full
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'/' | b':' | b'_'));
    ok.then(|| Arc::from(full))
}

/// The entries of one Service; empty for ExternalName Services.
pub(super) fn service_entries(svc: &Service, slices: &[&EndpointSlice]) -> Vec<KubeService> {
    let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
    let Some(name) = svc.metadata.name.as_deref() else {
        return Vec::new();
    };
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let cluster_ip = spec
        .cluster_ip
        .as_deref()
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let client_ip = spec.session_affinity.as_deref() == Some("ClientIP");
    let affinity_timeout = client_ip.then(|| {
        let secs = spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(10_800);
        Duration::from_secs(u64::try_from(secs).unwrap_or(10_800))
    });
    let mut out = Vec::new();
    for port in spec.ports.iter().flatten() {
        let protocol = match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => continue, // SCTP: not proxied
        };
        let Some(full) = service_name(namespace, name, port) else {
            continue;
        };
        let mut config = ServiceConfig::with_defaults(full);
        config.protocol = protocol;
        if protocol == Protocol::Udp {
            config.idle_timeout = Duration::from_secs(30);
        }
        if client_ip {
            config.scheduler = Scheduler::Sh;
        }
        config.endpoints = endpoints(port.name.as_deref(), slices);
        let vip_port = u16::try_from(port.port).ok();
        out.push(KubeService {
            config,
            cluster_ip: cluster_ip.zip(vip_port).map(SocketAddr::from),
            affinity_timeout,
        });
    }
    out
}

/// Endpoints for the Service port named `port_name`, over all slices: the ready ones, or if
/// there are none, the serving and terminating ones. Sorted, so slice order never matters.
fn endpoints(port_name: Option<&str>, slices: &[&EndpointSlice]) -> Vec<EndpointConfig> {
    let wanted = port_name.unwrap_or("");
    let mut ready = BTreeSet::new();
    let mut fallback = BTreeSet::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == wanted)
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for ep in &slice.endpoints {
            let cond = ep.conditions.as_ref();
            let is_ready = cond.and_then(|c| c.ready).unwrap_or(true);
            let serving = cond.and_then(|c| c.serving).unwrap_or(is_ready);
            let terminating = cond.and_then(|c| c.terminating).unwrap_or(false);
            for addr in &ep.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    continue;
                };
                let sa = SocketAddr::new(ip, port);
                if is_ready {
                    ready.insert(sa);
                } else if serving && terminating {
                    fallback.insert(sa);
                }
            }
        }
    }
    let chosen = if ready.is_empty() { fallback } else { ready };
    chosen
        .into_iter()
        .map(|address| EndpointConfig { address, weight: 1 })
        .collect()
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;

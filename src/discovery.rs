//! The Kubernetes source: Services, EndpointSlices, Ingresses, IngressClasses and TLS Secrets
//! → services, routes, hosts and certificates, merged with the config file.
//!
//! ```text
//! watcher(Service) ───────┐  one task per kind (kube::runtime::watcher, back-off; an HTTP 410
//! watcher(EndpointSlice) ─┤  on watch start restarts it with a fresh list)
//! watcher(Ingress) ───────┼─ mpsc ─> model task: Stores (Init…InitDone buffered, swapped whole)
//! watcher(IngressClass) ──┤            │ dirty Services re-translated; Ingress pass if needed
//! watcher(Secret, tls) ───┘            ▼
//!                              watch<KubeParts> ─> app reload loop: Merger::merge(file, parts)
//!                                                   ─> App::apply ─> /readyz, status writer
//! ```
//!
//! Why this shape:
//! - **Watcher events, not the reflector store**: the model task owns plain maps, so nothing
//!   is locked and a listing can be buffered and swapped in whole ([`state`]); a relist of
//!   identical objects changes nothing and publishes nothing.
//! - **Coalescing**: the model task drains every queued event before building, and the
//!   channel to the app holds only the latest parts, so a burst becomes one apply while an
//!   apply is running. There is no timer: an isolated event is published at once.
//! - **Parts, not a table**: the source produces config parts (service configs, routes, hosts,
//!   certificates) that are merged with the file's [`Config`] and applied by `App::apply`, the
//!   same path a file reload takes: unchanged services keep their `Arc<Service>` (and live
//!   counters); changed ones are rebuilt alone. Routes, hosts and the certificate store are
//!   rebuilt whole on every apply (O(routes), O(certificates)); certificates are parsed once
//!   per Secret version here.
//! - **Nothing from the cluster can fail an apply**: each object is translated defensively and
//!   checked alone (names, ports, hosts, certificates), bad parts are skipped with a log line and
//!   `switchyard_kube_skipped_total{kind,reason}`, and route conflicts (the oldest Ingress wins)
//!   are resolved in [`Merger::merge`] before the config reaches `App::apply`.
//!
//! With `--gateway-api`, five more watchers (GatewayClass, Gateway, HTTPRoute, ReferenceGrant,
//! Namespace) feed the same model task; see [`gateway`] for what is served from them.
//!
//! Names: a Service port becomes the service `namespace/name:port` (port name, or number). TOML
//! names cannot contain `/`, so the two sources never collide.

mod annotations;
mod annotations_policy;
mod annotations_upstream;
mod backend_annotations;
mod canary;
mod canary_by;
mod edge;
mod filter_notes;
pub mod gateway;
mod ingress;
mod kube;
mod model;
mod regex_path;
mod report;
mod state;
mod status;
mod translate;

pub use self::kube::{DiscoveryError, KubeOptions, KubeSource, Update};
pub use translate::KubeService;

use crate::config::{Config, HostConfig, RouteConfig};
use crate::tls::CertSpec;
use std::collections::HashSet;
use std::sync::Arc;

/// A watcher event of one kind, for the model task. Each is moved once, through a channel:
/// boxing the larger variants would only add an allocation per event.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Msg {
    Service(::kube::runtime::watcher::Event<k8s_openapi::api::core::v1::Service>),
    Slice(::kube::runtime::watcher::Event<k8s_openapi::api::discovery::v1::EndpointSlice>),
    Ingress(::kube::runtime::watcher::Event<k8s_openapi::api::networking::v1::Ingress>),
    Class(::kube::runtime::watcher::Event<k8s_openapi::api::networking::v1::IngressClass>),
    Secret(::kube::runtime::watcher::Event<k8s_openapi::api::core::v1::Secret>),
    /// A Gateway API kind (`--gateway-api`).
    Gateway(gateway::GatewayMsg),
}

/// What the cluster adds to the config file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeParts {
    /// One service per Service port (no listener; route targets, VIPs kept for IPVS).
    pub services: Vec<KubeService>,
    /// Ingress routes, oldest Ingress first, then HTTPRoute routes, oldest first.
    pub routes: Vec<RouteConfig>,
    /// `namespace/name` of the Ingress each route came from (`httproute:namespace/name` for
    /// an HTTPRoute's).
    pub route_origins: Vec<Arc<str>>,
    /// Per-host settings (https redirects, per-host default backends).
    pub hosts: Vec<HostConfig>,
    /// Certificates from TLS Secrets, in memory.
    pub certificates: Vec<CertSpec>,
    /// The default backend of the oldest Ingress without host rules.
    pub default_service: Option<Arc<str>>,
    /// Hosts of `ssl-passthrough` Ingresses (with `--enable-ssl-passthrough`).
    pub passthrough: Vec<crate::config::PassthroughConfig>,
    /// The `--default-ssl-certificate` Secret's certificate, when it is usable.
    pub default_certificate: Option<CertSpec>,
    /// Served Ingresses whose `status.loadBalancer` is not yet our address.
    pub status_pending: Vec<(String, String)>,
    /// Listeners of the Gateways we serve (`--gateway-api`), one per port.
    pub gateway_listeners: Vec<gateway::listeners::GatewayListener>,
}

/// Merges the file's config with the cluster's parts; remembers what it reported.
#[derive(Debug, Default)]
pub struct Merger {
    report: report::Reporter,
    /// Ports of the Gateway listeners added by the previous merge.
    gateway_ports: std::collections::BTreeSet<u16>,
    /// Gateway listener ports the previous merge could not open, with the reason.
    gateway_refused: std::collections::BTreeMap<u16, &'static str>,
}

/// A cluster service's config. With a kernel data plane (`[ipvs] dataplane` `ipvs` or
/// `auto`), its ClusterIP:port becomes a VIP the kernel serves (kube-proxy's IPVS mode, with
/// `sessionAffinity: ClientIP` as IPVS persistence); it is never bound in user space, since
/// ClusterIPs are not local addresses. Otherwise it stays a route target only.
fn kernel_vip(
    service: &KubeService,
    dataplane: crate::config::Dataplane,
) -> crate::config::ServiceConfig {
    let mut config = service.config.clone();
    if dataplane != crate::config::Dataplane::Userspace
        && let Some(vip) = service.cluster_ip
    {
        config.listen = Some(vip);
        config.ipvs.dataplane = dataplane;
        config.ipvs.kernel_only = true;
        config.ipvs.persistence = service.affinity_timeout;
    }
    config
}

impl Merger {
    /// Gateway listener ports the last merge could not open (for Gateway status).
    pub fn gateway_refused(&self) -> &std::collections::BTreeMap<u16, &'static str> {
        &self.gateway_refused
    }

    /// The file's config plus the cluster's parts. The file comes first everywhere: its hosts
    /// and default service win, its routes are listed first; a cluster route that conflicts
    /// with an earlier route (the file's, or an older Ingress's) is left out and reported.
    pub fn merge(&mut self, file: &Config, parts: &KubeParts) -> Config {
        let mut config = file.clone();
        let names: HashSet<&str> = file.services.iter().map(|s| &*s.name).collect();
        config.services.extend(
            parts
                .services
                .iter()
                .filter(|s| !names.contains(&*s.config.name))
                .map(|s| kernel_vip(s, file.ipvs.dataplane)),
        );
        let file_hosts: HashSet<_> = file.http.hosts.iter().map(|h| h.host.clone()).collect();
        config.http.hosts.extend(
            parts
                .hosts
                .iter()
                .filter(|h| !file_hosts.contains(&h.host))
                .cloned(),
        );
        if config.http.default_service.is_none() {
            config
                .http
                .default_service
                .clone_from(&parts.default_service);
        }
        config
            .http
            .certificates
            .extend(parts.certificates.iter().cloned());
        edge::merge(&mut config, parts);
        gateway::listeners::merge(
            &mut config,
            &parts.gateway_listeners,
            &mut self.gateway_ports,
            &mut self.gateway_refused,
            &mut self.report,
        );
        let first = config.http.routes.len();
        let (routes, origins) = per_listener(&parts.routes, &parts.route_origins);
        config.http.routes.extend(routes);
        for (route, origin) in config.http.routes[first..].iter_mut().zip(&origins) {
            route.source = crate::config::RouteSource::from_origin(origin);
        }
        let (_, conflicts) = crate::ingress::HttpRoutes::build_checked(&config.http);
        let mut drop = HashSet::new();
        for conflict in conflicts {
            let rule = match &conflict {
                crate::ingress::Conflict::Invalid { rule, .. }
                | crate::ingress::Conflict::Duplicate { rule, .. } => *rule,
                crate::ingress::Conflict::DuplicateHostDefault { .. } => continue,
            };
            if let Some(origin) = rule.checked_sub(first).and_then(|i| origins.get(i)) {
                let reason = match conflict {
                    crate::ingress::Conflict::Invalid { .. } => "invalid_path",
                    _ => "route_conflict",
                };
                let (kind, what) = match origin.strip_prefix("httproute:") {
                    Some(_) => ("HTTPRoute", ""),
                    None if origin.starts_with("grpcroute:") => ("GRPCRoute", ""),
                    None => ("Ingress", "ingress "),
                };
                self.report
                    .once(kind, reason, &format!("{what}{origin}: {conflict}"));
                drop.insert(rule);
            }
        }
        if !drop.is_empty() {
            let mut i = 0;
            config.http.routes.retain(|_| {
                i += 1;
                !drop.contains(&(i - 1))
            });
        }
        config
    }
}

/// `routes` (and their origins) with each route fenced to several listeners (a Gateway route
/// attached to several listeners) made one route per listener, so that a conflict on one
/// listener leaves the route out there only: the tables are per listener, and so are the
/// Gateway API's conflicts.
fn per_listener(routes: &[RouteConfig], origins: &[Arc<str>]) -> (Vec<RouteConfig>, Vec<Arc<str>>) {
    let (mut out, mut from) = (Vec::with_capacity(routes.len()), Vec::new());
    for (i, route) in routes.iter().enumerate() {
        let origin = origins.get(i).cloned().unwrap_or_else(|| Arc::from(""));
        match route.listeners.as_deref() {
            Some(names) if names.len() > 1 => {
                for name in names {
                    let mut one = route.clone();
                    one.listeners = Some(Arc::from([Arc::clone(name)]));
                    out.push(one);
                    from.push(Arc::clone(&origin));
                }
            }
            _ => {
                out.push(route.clone());
                from.push(origin);
            }
        }
    }
    (out, from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Dataplane;

    fn kube_service() -> KubeService {
        KubeService {
            config: crate::config::ServiceConfig::with_defaults("ns/web:http".into()),
            cluster_ip: Some(([10, 96, 0, 10], 80).into()),
            affinity_timeout: Some(std::time::Duration::from_secs(10_800)),
        }
    }

    #[test]
    fn cluster_ips_become_kernel_only_vips_with_a_kernel_data_plane() {
        let s = kernel_vip(&kube_service(), Dataplane::Auto);
        assert_eq!(s.listen, Some(([10, 96, 0, 10], 80).into()));
        assert_eq!(s.ipvs.dataplane, Dataplane::Auto);
        assert!(s.ipvs.kernel_only, "never bound in user space");
        assert_eq!(
            s.ipvs.persistence,
            Some(std::time::Duration::from_secs(10_800))
        );
    }

    #[test]
    fn cluster_ips_stay_route_targets_in_user_space() {
        let s = kernel_vip(&kube_service(), Dataplane::Userspace);
        assert_eq!(s.listen, None);
        assert!(!s.ipvs.kernel_only);
        let headless = KubeService {
            cluster_ip: None,
            ..kube_service()
        };
        assert_eq!(kernel_vip(&headless, Dataplane::Ipvs).listen, None);
    }
}

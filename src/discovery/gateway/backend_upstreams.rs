//! How Switchyard speaks to the Service ports Gateway API routes send to: BackendTLSPolicies
//! ([`super::tls_policies`]) and the Service port's `appProtocol`, kept here (stores, what
//! was resolved, status, watchers) so [`super::GatewayState`] holds them as one field.
//!
//! The rule, for a Service port that is a backend (or mirror) of an HTTPRoute or GRPCRoute:
//!
//! | port | HTTPRoute backend | GRPCRoute backend |
//! |---|---|---|
//! | targeted by an accepted BackendTLSPolicy | `https` (HTTP/1.1 over TLS) | `h2` (HTTP/2 over TLS) |
//! | `appProtocol: kubernetes.io/h2c` | `h2c` | `h2c` |
//! | otherwise | `http1` | `h2c` |
//!
//! `appProtocol: kubernetes.io/h2c` with a policy is `h2` (HTTP/2, and TLS as the policy
//! says). Other `appProtocol` values (`kubernetes.io/ws`, `kubernetes.io/wss`, `https`) change
//! nothing: WebSocket upgrades pass on HTTP/1.1 anyway, and TLS needs a policy to say what to
//! trust. Ports that no route sends to are left as they are (an Ingress backend keeps its
//! annotations). Neither kind gates readiness: BackendTLSPolicy's CRD may not be installed
//! (the watch retries with back-off), and ConfigMaps are only read for policies.

use super::StatusPatch;
use super::tls_policies::{self, Resolved};
use super::tls_policy_types::BackendTlsPolicy;
use crate::config::{ServiceConfig, Trust, UpstreamProtocol};
use crate::discovery::state::{Key, Store};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// The `appProtocol` that makes a backend h2c.
const H2C: &str = "kubernetes.io/h2c";

/// BackendTLSPolicies, the ConfigMaps they may name, and what was made of them.
#[derive(Debug, Default)]
pub(super) struct BackendUpstreams {
    /// BackendTLSPolicies.
    pub(super) policies: Store<BackendTlsPolicy>,
    /// ConfigMaps (only their `ca.crt`, see [`trim`]).
    pub(super) config_maps: Store<ConfigMap>,
    /// The last resolution.
    resolved: Resolved,
    /// The route backends of the last translation, with the Gateways that reach each.
    backends: HashMap<Arc<str>, BTreeSet<Key>>,
    /// Route backends whose port says `appProtocol: kubernetes.io/h2c`.
    h2c: HashSet<Arc<str>>,
}

impl BackendUpstreams {
    /// Resolves the policies for the routes just translated: `routes` are every route with
    /// its origin, `reached` the Gateways each origin attached to.
    pub(super) fn resolve(
        &mut self,
        services: &Store<Service>,
        routes: &[(&crate::config::RouteConfig, &Arc<str>)],
        reached: &HashMap<String, BTreeSet<Key>>,
    ) {
        self.backends.clear();
        for (r, origin) in routes {
            let gateways = reached.get(&***origin);
            let targets = std::iter::once(&r.service)
                .chain(r.backends.split.iter().map(|w| &w.service))
                .chain(r.upstream.mirror.iter().map(|m| &m.service));
            for s in targets {
                let entry = self.backends.entry(Arc::clone(s)).or_default();
                entry.extend(gateways.into_iter().flatten().cloned());
            }
        }
        self.h2c = h2c_ports(services, &self.backends);
        self.resolved = tls_policies::resolve(&self.policies, &self.config_maps, services);
    }

    /// Sets the upstream protocol and TLS of a route backend (see the module docs).
    pub(super) fn apply(&self, c: &mut ServiceConfig) {
        if !self.backends.contains_key(&c.name) {
            return;
        }
        let h2 = self.h2c.contains(&c.name) || c.upstream_protocol == UpstreamProtocol::H2c;
        if h2 {
            c.upstream_protocol = UpstreamProtocol::H2c;
        }
        let Some(tls) = self.resolved.upstream.get(&c.name) else {
            return;
        };
        c.upstream_protocol = if h2 {
            UpstreamProtocol::H2
        } else {
            UpstreamProtocol::Https
        };
        c.upstream_verify = true;
        // No usable CA: an empty trust, so the client cannot be built and requests answer 502.
        c.upstream_ca = Some(tls.trust.clone().unwrap_or(Trust::Pem(Arc::from(""))));
        c.upstream_sni = Some(tls.sni.clone());
        c.upstream_verify_names = tls.names.clone();
    }

    /// The status patches of the policies whose entries differ (once listed).
    pub(super) fn status_patches(&self, controller: &str) -> Vec<StatusPatch> {
        if !self.policies.listed() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, v) in &self.resolved.verdicts {
            let Some(p) = self.policies.get(key) else {
                continue;
            };
            let ancestors: BTreeSet<&Key> = v
                .services
                .iter()
                .filter_map(|s| self.backends.get(s))
                .flatten()
                .collect();
            if let Some(body) = super::tls_policy_status::patch(p, v, &ancestors, controller) {
                out.push(StatusPatch::BackendTlsPolicy {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    body,
                });
            }
        }
        out
    }
}

/// The route backends whose Service port has `appProtocol: kubernetes.io/h2c`.
fn h2c_ports(
    services: &Store<Service>,
    backends: &HashMap<Arc<str>, BTreeSet<Key>>,
) -> HashSet<Arc<str>> {
    let mut out = HashSet::new();
    for (key, svc) in services.iter() {
        let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
        for p in ports.into_iter().flatten() {
            if p.app_protocol.as_deref() == Some(H2C)
                && let Some(name) = crate::discovery::translate::service_name(&key.0, &key.1, p)
                && backends.contains_key(&name)
            {
                out.insert(name);
            }
        }
    }
    out
}

/// A ConfigMap as kept: metadata (without managed fields) and `data["ca.crt"]` only, so the
/// ConfigMaps of a namespace cost little memory.
pub(super) fn trim(cm: &mut ConfigMap) {
    cm.metadata.managed_fields = None;
    cm.metadata.annotations = None;
    cm.binary_data = None;
    if let Some(data) = &mut cm.data {
        data.retain(|k, _| k == tls_policies::CA_KEY);
    }
}

impl super::GatewayState {
    /// Resolves the BackendTLSPolicies and `appProtocol`s for the routes just translated
    /// (`out`: the HTTPRoutes' and GRPCRoutes'; their verdicts say which Gateways reach them).
    pub(super) fn resolve_upstreams(
        &mut self,
        services: &Store<Service>,
        out: &super::routes::Translated,
    ) {
        let mut reached: HashMap<String, BTreeSet<Key>> = HashMap::new();
        let verdicts = out
            .verdicts
            .iter()
            .map(|v| ("httproute", v))
            .chain(self.more.grpc_verdicts.iter().map(|v| ("grpcroute", v)));
        for (kind, (key, v)) in verdicts {
            let gateways = v
                .parents
                .iter()
                .filter(|p| p.refused.is_none())
                .flat_map(|p| p.attached.iter().map(|(g, _)| g.clone()));
            reached
                .entry(format!("{kind}:{}/{}", key.0, key.1))
                .or_default()
                .extend(gateways);
        }
        let routes: Vec<_> = out.routes.iter().zip(&out.origins).collect();
        self.upstreams.resolve(services, &routes, &reached);
    }

    /// Sets the protocol and TLS of a Service port that Gateway API routes send to.
    pub(in crate::discovery) fn backend_upstream(&self, c: &mut ServiceConfig) {
        self.upstreams.apply(c);
    }
}

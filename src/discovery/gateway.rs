//! The Gateway API source (`run --kubernetes --gateway-api`): GatewayClasses, Gateways,
//! HTTPRoutes, ReferenceGrants (and Namespaces, for their labels), watched like the other
//! kinds.
//!
//! ```text
//! watcher(GatewayClass) ──┐
//! watcher(Gateway) ───────┤  the same watcher tasks, Msg channel and model task as the
//! watcher(HTTPRoute) ─────┼─ other kinds ([`super::kube`]): events land in [`GatewayState`]'s
//! watcher(TLS/GRPCRoute) ─┤
//! watcher(ReferenceGrant) ┤  stores, coalesced with everything else queued
//! watcher(Namespace) ─────┘
//!                              │ after each batch: status merge patches that differ
//!                              ▼
//!                     status writer task (one merge patch per object, `/status`)
//! ```
//!
//! What is served: GatewayClasses whose `controllerName` is ours are `Accepted` ([`class`]);
//! the HTTP and HTTPS listeners of their Gateways are opened and closed at run time
//! ([`listeners`], certificates from [`certs`]), each a section of its port's listener that
//! serves only its own routes ([`crate::ingress::listener_routes`]); HTTPRoutes become routes
//! fenced to the listeners they attached to ([`routes`]: [`hostname`] intersection, [`matches`], [`filters`], backendRefs checked with
//! [`grants`]); Gateway and HTTPRoute status are written back ([`gateway_status`],
//! [`route_status`], [`status`]); TLSRoutes and GRPCRoutes too ([`more_routes`]). See README.md, "Gateway API", for what is not done. The
//! types are our own ([`types`], [`route_types`]): why is said there.

mod backend_ref;
mod backend_upstreams;
pub mod certs;
mod changes;
pub(crate) mod class;
pub(crate) mod filters;
pub mod gateway_status;
pub mod grants;
pub mod grpc_route_types;
pub mod grpc_routes;
pub mod hostname;
pub mod listeners;
pub mod matches;
mod more_routes;
mod overlap;
mod parents;
pub mod route_status;
pub mod route_types;
pub mod routes;
pub mod selector;
mod shared_status;
mod status;
pub mod tls_policies;
pub mod tls_policy_status;
pub mod tls_policy_types;
pub mod tls_route_types;
pub mod tls_routes;
pub mod types;
mod watchers;

pub(super) use status::{StatusPatch, Writer};
pub(super) use watchers::spawn_watchers;

use super::state::Store;
use kube::runtime::watcher::Event;
use route_types::HttpRoute;
use std::collections::BTreeSet;
use types::{Gateway, GatewayClass, ReferenceGrant};

/// The default `--gateway-class-controller`.
pub const DEFAULT_CONTROLLER: &str = "switchyard.dev/gateway-controller";

/// A Gateway API watcher event.
#[derive(Debug)]
pub(super) enum GatewayMsg {
    /// A GatewayClass event.
    Class(Event<GatewayClass>),
    /// A Gateway event.
    Gateway(Event<Gateway>),
    /// An HTTPRoute event.
    Route(Event<HttpRoute>),
    /// A GRPCRoute event.
    GrpcRoute(Event<grpc_route_types::GrpcRoute>),
    /// A TLSRoute event.
    TlsRoute(Event<tls_route_types::TlsRoute>),
    /// A ReferenceGrant event.
    Grant(Event<ReferenceGrant>),
    /// A BackendTLSPolicy event.
    TlsPolicy(Event<tls_policy_types::BackendTlsPolicy>),
    /// A ConfigMap event (trimmed to `ca.crt`, for BackendTLSPolicies).
    ConfigMap(Event<k8s_openapi::api::core::v1::ConfigMap>),
    /// A Namespace event (labels, for `allowedRoutes` selectors).
    Namespace(Event<k8s_openapi::api::core::v1::Namespace>),
    /// The Gateway listener ports the last merge could not open, with the reason.
    Refused(std::collections::BTreeMap<u16, &'static str>),
    /// A status write failed: (kind, namespace, name).
    WriteFailed((&'static str, String, String)),
}

/// The watched Gateway API objects and what must still be written to their status.
#[derive(Debug)]
pub(super) struct GatewayState {
    /// Our `controllerName`.
    controller: String,
    classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    routes: Store<HttpRoute>,
    grants: Store<ReferenceGrant>,
    /// TLSRoutes and GRPCRoutes (not needed for readiness, see [`more_routes`]).
    more: more_routes::MoreRoutes,
    namespaces: Store<k8s_openapi::api::core::v1::Namespace>,
    /// BackendTLSPolicies and route backends' protocols ([`backend_upstreams`]).
    upstreams: backend_upstreams::BackendUpstreams,
    /// GatewayClasses changed since the last status pass.
    dirty_classes: BTreeSet<String>,
    /// What the last translation found about each HTTPRoute, for their status.
    verdicts: Vec<(super::state::Key, route_status::Verdict)>,
    /// A translation ran since the last status pass (Gateway, TLSRoute, GRPCRoute and
    /// backend status may have changed).
    verdicts_dirty: bool,
    /// The HTTPRoutes whose object or verdict changed since the last status pass: the
    /// only ones whose status is computed again ([`changes`]).
    routes_dirty: BTreeSet<super::state::Key>,
    /// `--publish-status-address`, for Gateway `status.addresses`.
    addresses: Vec<String>,
    /// Ports the last merge could not open.
    refused: std::collections::BTreeMap<u16, &'static str>,
    /// A Gateway, GatewayClass or refused port changed since the last status pass.
    gateways_dirty: bool,
    /// The fingerprint of the last status sent per object, so that a status computed again
    /// before our own write's event arrives is not written twice.
    sent: std::collections::HashMap<(&'static str, String, String), serde_json::Value>,
    /// HTTPS listeners' certificate refs, from the last build.
    cert_state: certs::RefState,
}

impl GatewayState {
    /// The state for controller name `controller`, publishing `addresses` in Gateway status.
    pub(super) fn new(controller: String, addresses: Vec<String>) -> GatewayState {
        GatewayState {
            controller,
            addresses,
            refused: std::collections::BTreeMap::new(),
            gateways_dirty: false,
            sent: std::collections::HashMap::new(),
            cert_state: certs::RefState::new(),
            classes: Store::default(),
            gateways: Store::default(),
            routes: Store::default(),
            grants: Store::default(),
            more: more_routes::MoreRoutes::default(),
            namespaces: Store::default(),
            upstreams: backend_upstreams::BackendUpstreams::default(),
            dirty_classes: BTreeSet::new(),
            verdicts: Vec::new(),
            verdicts_dirty: false,
            routes_dirty: BTreeSet::new(),
        }
    }

    /// Applies one event; true when the parts built from these kinds may have changed.
    pub(super) fn handle(&mut self, msg: GatewayMsg) -> bool {
        match msg {
            GatewayMsg::Class(e) => {
                let changes = self.classes.apply(e);
                for (key, _, _) in &changes {
                    self.dirty_classes.insert(key.1.clone());
                }
                self.gateways_dirty |= !changes.is_empty();
                !changes.is_empty()
            }
            GatewayMsg::Gateway(e) => {
                let changes = self.gateways.apply(e);
                self.gateways_dirty |= !changes.is_empty();
                changes::beyond_status(&changes, |g: &Gateway| &g.spec)
            }
            GatewayMsg::WriteFailed(id) => {
                if id.0 == "HTTPRoute" {
                    self.routes_dirty.insert((id.1.clone(), id.2.clone()));
                }
                self.sent.remove(&id);
                self.gateways_dirty = true;
                self.verdicts_dirty = true;
                false
            }
            GatewayMsg::Refused(ports) => {
                if ports != self.refused {
                    self.refused = ports;
                    self.gateways_dirty = true;
                }
                false
            }
            GatewayMsg::Route(e) => {
                let changes = self.routes.apply(e);
                for (key, _, _) in &changes {
                    self.routes_dirty.insert(key.clone());
                }
                changes::beyond_status(&changes, |r: &HttpRoute| &r.spec)
            }
            GatewayMsg::GrpcRoute(e) => !self.more.grpc.apply(e).is_empty(),
            GatewayMsg::TlsRoute(e) => !self.more.tls.apply(e).is_empty(),
            GatewayMsg::Grant(e) => !self.grants.apply(e).is_empty(),
            GatewayMsg::TlsPolicy(e) => !self.upstreams.policies.apply(e).is_empty(),
            GatewayMsg::ConfigMap(e) => !self.upstreams.config_maps.apply(e).is_empty(),
            GatewayMsg::Namespace(e) => {
                let changes = self.namespaces.apply(e);
                // Only labels matter (allowedRoutes selectors).
                changes.iter().any(|(_, before, after)| {
                    let labels =
                        |n: &Option<std::sync::Arc<k8s_openapi::api::core::v1::Namespace>>| {
                            n.as_ref().map(|n| n.metadata.labels.clone())
                        };
                    labels(before) != labels(after)
                })
            }
        }
    }

    /// The routes of the HTTPRoutes (see [`routes`]) and the `httproute:ns/name` of each.
    pub(super) fn routes(
        &mut self,
        services: &Store<k8s_openapi::api::core::v1::Service>,
        report: &mut super::report::Reporter,
    ) -> (Vec<crate::config::RouteConfig>, Vec<std::sync::Arc<str>>) {
        let input = routes::Input {
            classes: &self.classes,
            gateways: &self.gateways,
            routes: &self.routes,
            grants: &self.grants,
            namespaces: &self.namespaces,
            services,
            controller: &self.controller,
        };
        let mut out = routes::translate(&input, report);
        self.more.grpc_routes(&input, &mut out);
        self.resolve_upstreams(services, &out);
        changes::changed_verdicts(&self.verdicts, &out.verdicts, &mut self.routes_dirty);
        self.verdicts = out.verdicts;
        self.verdicts_dirty = true;
        (out.routes, out.origins)
    }

    /// The Gateway listeners to open (see [`listeners`]) and their certificates
    /// ([`certs`]).
    pub(super) fn listeners(
        &mut self,
        secrets: &Store<k8s_openapi::api::core::v1::Secret>,
        cache: &mut super::ingress::CertCache,
        report: &mut super::report::Reporter,
    ) -> (Vec<listeners::GatewayListener>, Vec<crate::tls::CertSpec>) {
        let wanted = listeners::wanted(&self.classes, &self.gateways, &self.controller, report);
        let (classes, controller) = (&self.classes, &self.controller);
        let served = self
            .gateways
            .iter()
            .map(|(k, g)| (k, &**g))
            .filter(|(_, g)| {
                classes
                    .get(&(String::new(), g.spec.gateway_class_name.clone()))
                    .is_some_and(|c| c.spec.controller_name == *controller)
            });
        let input = certs::CertInput {
            grants: &self.grants,
            secrets,
        };
        let (specs, state) = certs::certificates(served, &input, cache, report);
        if state != self.cert_state {
            self.cert_state = state;
            self.gateways_dirty = true;
        }
        let gateways = &self.gateways;
        report.retain("Gateway", |k| gateways.get(k).is_some());
        (wanted, specs)
    }

    /// Whether every Gateway API kind has completed its first listing ([`more_routes`] aside).
    pub(super) fn listed(&self) -> bool {
        self.classes.listed()
            && self.gateways.listed()
            && self.routes.listed()
            && self.grants.listed()
            && self.namespaces.listed()
    }

    /// Status patches for what changed since the last call (once every kind is listed).
    pub(super) fn status_patches(&mut self) -> Vec<StatusPatch> {
        if !self.listed() {
            return Vec::new();
        }
        crate::telemetry::metrics::kube_objects("GatewayClass", self.classes.len());
        crate::telemetry::metrics::kube_objects("Gateway", self.gateways.len());
        crate::telemetry::metrics::kube_objects("HTTPRoute", self.routes.len());
        crate::telemetry::metrics::kube_objects("ReferenceGrant", self.grants.len());
        let mut out = Vec::new();
        for name in std::mem::take(&mut self.dirty_classes) {
            let key = (String::new(), name.clone());
            if let Some(c) = self.classes.get(&key)
                && let Some(body) = class::status_patch(c, &self.controller)
            {
                out.push(StatusPatch::GatewayClass { name, body });
            }
        }
        let verdicts_dirty = std::mem::take(&mut self.verdicts_dirty);
        if std::mem::take(&mut self.gateways_dirty) || verdicts_dirty {
            out.extend(self.gateway_patches());
        }
        if verdicts_dirty {
            out.extend(self.more.status_patches(&self.controller));
            out.extend(self.upstreams.status_patches(&self.controller));
        }
        let routes_dirty = std::mem::take(&mut self.routes_dirty);
        for (key, v) in &self.verdicts {
            if routes_dirty.contains(key)
                && let Some(r) = self.routes.get(key)
                && let Some(body) = route_status::patch(r, v, &self.controller)
            {
                let (namespace, name) = key.clone();
                out.push(StatusPatch::HttpRoute {
                    namespace,
                    name,
                    body,
                });
            }
        }
        let (gateways, routes, more) = (&self.gateways, &self.routes, &self.more);
        self.sent.retain(|(kind, ns, name), _| {
            let key = (ns.clone(), name.clone());
            match *kind {
                "Gateway" => gateways.get(&key).is_some(),
                "HTTPRoute" => routes.get(&key).is_some(),
                other => more.live(other, &key).unwrap_or(true),
            }
        });
        out.retain(|p| match p.fingerprint() {
            None => true,
            Some(f) => self.sent.insert(p.id(), f.clone()).as_ref() != Some(&f),
        });
        out
    }
}

impl super::KubeSource {
    /// Call after a merge was applied: tells the model which Gateway listener ports could
    /// not be opened (for Gateway status), when that changed.
    pub fn gateway_ports(&self, merger: &super::Merger) {
        let Some((tx, sent)) = &self.gateway else {
            return;
        };
        let refused = merger.gateway_refused();
        let mut sent = sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *sent != *refused
            && tx
                .try_send(super::Msg::Gateway(GatewayMsg::Refused(refused.clone())))
                .is_ok()
        {
            sent.clone_from(refused);
        }
    }
}

impl GatewayState {
    /// Status patches for the Gateways of our classes that need one.
    fn gateway_patches(&self) -> Vec<StatusPatch> {
        let mut attached: std::collections::HashMap<(super::state::Key, String), i64> =
            std::collections::HashMap::new();
        for (_, v) in self.verdicts.iter().chain(self.more.verdicts()) {
            for p in v.parents.iter().filter(|p| p.refused.is_none()) {
                for a in &p.attached {
                    *attached.entry(a.clone()).or_default() += 1;
                }
            }
        }
        let facts = gateway_status::GatewayFacts {
            certs: &self.cert_state,
            refused: &self.refused,
            attached: &attached,
            addresses: &self.addresses,
        };
        let ours = |class: &str| {
            self.classes
                .get(&(String::new(), class.to_owned()))
                .is_some_and(|c| c.spec.controller_name == self.controller)
        };
        self.gateways
            .iter()
            .filter(|(_, g)| ours(&g.spec.gateway_class_name))
            .filter_map(|(key, g)| {
                let body = gateway_status::patch(key, g, &facts)?;
                Some(StatusPatch::Gateway {
                    namespace: key.0.clone(),
                    name: key.1.clone(),
                    body,
                })
            })
            .collect()
    }
}

//! The Gateway API source (`run --kubernetes --gateway-api`): GatewayClasses, Gateways,
//! HTTPRoutes and ReferenceGrants, watched like the other kinds.
//!
//! ```text
//! watcher(GatewayClass) ──┐
//! watcher(Gateway) ───────┤  the same watcher tasks, Msg channel and model task as the
//! watcher(HTTPRoute) ─────┼─ other kinds ([`super::kube`]): events land in [`GatewayState`]'s
//! watcher(ReferenceGrant) ┘  stores, coalesced with everything else queued
//!                              │ after each batch: status merge patches that differ
//!                              ▼
//!                     status writer task (one merge patch per object, `/status`)
//! ```
//!
//! What is served today: GatewayClasses whose `controllerName` is ours are `Accepted`
//! ([`class`]); the HTTP listeners of their Gateways are opened and closed at run time
//! ([`listeners`]). HTTPRoutes and ReferenceGrants are watched and held (so the first listing
//! gates readiness like every kind) but not yet programmed; the pure parts of their
//! translation ([`hostname`], [`matches`], [`grants`]) are written and table-tested. See
//! README.md, "Gateway API", for what is not done. The types are our own ([`types`], [`route_types`]): why is said
//! there.

pub(crate) mod class;
pub mod grants;
pub mod hostname;
pub mod listeners;
pub mod matches;
pub mod route_status;
pub mod route_types;
pub mod routes;
mod status;
pub mod types;

pub(super) use status::{StatusPatch, Writer};

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
    /// A ReferenceGrant event.
    Grant(Event<ReferenceGrant>),
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
    /// GatewayClasses changed since the last status pass.
    dirty_classes: BTreeSet<String>,
    /// What the last translation found about each HTTPRoute, for their status.
    verdicts: Vec<(super::state::Key, route_status::Verdict)>,
    /// The verdicts changed since the last status pass.
    verdicts_dirty: bool,
}

impl GatewayState {
    /// The state for controller name `controller`.
    pub(super) fn new(controller: String) -> GatewayState {
        GatewayState {
            controller,
            classes: Store::default(),
            gateways: Store::default(),
            routes: Store::default(),
            grants: Store::default(),
            dirty_classes: BTreeSet::new(),
            verdicts: Vec::new(),
            verdicts_dirty: false,
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
                !changes.is_empty()
            }
            GatewayMsg::Gateway(e) => !self.gateways.apply(e).is_empty(),
            GatewayMsg::Route(e) => !self.routes.apply(e).is_empty(),
            GatewayMsg::Grant(e) => !self.grants.apply(e).is_empty(),
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
            services,
            controller: &self.controller,
        };
        let out = routes::translate(&input, report);
        self.verdicts = out.verdicts;
        self.verdicts_dirty = true;
        (out.routes, out.origins)
    }

    /// The Gateway listeners to open (see [`listeners`]).
    pub(super) fn listeners(
        &self,
        report: &mut super::report::Reporter,
    ) -> Vec<listeners::GatewayListener> {
        let wanted = listeners::wanted(&self.classes, &self.gateways, &self.controller, report);
        let gateways = &self.gateways;
        report.retain("Gateway", |k| gateways.get(k).is_some());
        wanted
    }

    /// Whether every Gateway API kind has completed its first listing.
    pub(super) fn listed(&self) -> bool {
        self.classes.listed()
            && self.gateways.listed()
            && self.routes.listed()
            && self.grants.listed()
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
        if std::mem::take(&mut self.verdicts_dirty) {
            for (key, v) in &self.verdicts {
                if let Some(r) = self.routes.get(key)
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
        }
        out
    }
}

/// Starts the Gateway API watchers (GatewayClass cluster-wide, the others in the watched
/// namespaces).
pub(super) fn spawn_watchers(
    w: &super::kube::Watch,
    client: &kube::Client,
    ns: Option<&str>,
    base: &kube::runtime::watcher::Config,
) {
    use GatewayMsg as G;
    tokio::spawn(w.clone().run(
        kube::Api::all(client.clone()),
        base.clone(),
        "GatewayClass",
        |e| super::Msg::Gateway(G::Class(e)),
    ));
    tokio::spawn(
        w.clone()
            .run(super::kube::api(client, ns), base.clone(), "Gateway", |e| {
                super::Msg::Gateway(G::Gateway(e))
            }),
    );
    tokio::spawn(w.clone().run(
        super::kube::api(client, ns),
        base.clone(),
        "HTTPRoute",
        |e| super::Msg::Gateway(G::Route(e)),
    ));
    tokio::spawn(w.clone().run(
        super::kube::api(client, ns),
        base.clone(),
        "ReferenceGrant",
        |e| super::Msg::Gateway(G::Grant(e)),
    ));
}

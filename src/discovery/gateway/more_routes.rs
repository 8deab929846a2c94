//! The route kinds beside HTTPRoute: TLSRoutes ([`super::tls_routes`]: SNI passthrough on
//! TLS Passthrough listeners) and GRPCRoutes ([`super::grpc_routes`]: routes of the shared
//! table, to h2c backends) — their stores, what their translation found, their status
//! patches and watchers, kept here so [`super::GatewayState`] holds them as one field.
//!
//! Neither listing gates readiness: TLSRoute's CRD is the experimental channel's and
//! GRPCRoute's came with Gateway API v1.1, so either may not be installed. Without the CRD
//! (404) the watch retries with back-off, and the routes are served once they list; their
//! status is written only once listed.

use super::StatusPatch;
use super::grpc_route_types::GrpcRoute;
use super::route_status::{self, Verdict};
use super::tls_route_types::TlsRoute;
use crate::discovery::report::Reporter;
use crate::discovery::state::{Key, Store};
use std::collections::HashSet;
use std::sync::Arc;

/// TLSRoutes and GRPCRoutes and what was made of them.
#[derive(Debug, Default)]
pub(super) struct MoreRoutes {
    /// TLSRoutes.
    pub(super) tls: Store<TlsRoute>,
    /// What the last translation found about each TLSRoute.
    pub(super) tls_verdicts: Vec<(Key, Verdict)>,
    /// GRPCRoutes.
    pub(super) grpc: Store<GrpcRoute>,
    /// What the last translation found about each GRPCRoute.
    pub(super) grpc_verdicts: Vec<(Key, Verdict)>,
    /// The services GRPCRoutes send to (spoken to over h2c).
    pub(super) h2c: HashSet<Arc<str>>,
    /// The GRPCRoute pass's own reports (see [`super::grpc_routes`]).
    pub(super) grpc_report: Reporter,
}

impl MoreRoutes {
    /// Adds the GRPCRoutes' routes to `out` (the HTTPRoutes'), translated with `input`.
    pub(super) fn grpc_routes(
        &mut self,
        input: &super::routes::Input<'_>,
        out: &mut super::routes::Translated,
    ) {
        let grpc = super::grpc_routes::translate(input, &self.grpc, &mut self.grpc_report);
        out.routes.extend(grpc.routes);
        out.origins.extend(grpc.origins);
        (self.grpc_verdicts, self.h2c) = (grpc.verdicts, grpc.h2c);
    }

    /// Every verdict (for `attachedRoutes`).
    pub(super) fn verdicts(&self) -> impl Iterator<Item = &(Key, Verdict)> {
        self.tls_verdicts.iter().chain(&self.grpc_verdicts)
    }

    /// Whether the object a status write of `kind` named still exists; `None`: not our kind.
    pub(super) fn live(&self, kind: &str, key: &Key) -> Option<bool> {
        match kind {
            "TLSRoute" => Some(self.tls.get(key).is_some()),
            "GRPCRoute" => Some(self.grpc.get(key).is_some()),
            _ => None,
        }
    }

    /// The status patches of the listed kinds whose entries differ.
    pub(super) fn status_patches(&self, controller: &str) -> Vec<StatusPatch> {
        let mut out = Vec::new();
        if self.tls.listed() {
            for (key, v) in &self.tls_verdicts {
                let Some(r) = self.tls.get(key) else { continue };
                let current = r.status.as_ref().map(|s| s.parents.as_slice());
                let body =
                    route_status::patch_of(&r.metadata, current.unwrap_or_default(), v, controller);
                let (namespace, name) = key.clone();
                out.extend(body.map(|body| StatusPatch::TlsRoute {
                    namespace,
                    name,
                    body,
                }));
            }
        }
        if self.grpc.listed() {
            for (key, v) in &self.grpc_verdicts {
                let Some(r) = self.grpc.get(key) else {
                    continue;
                };
                let current = r.status.as_ref().map(|s| s.parents.as_slice());
                let body =
                    route_status::patch_of(&r.metadata, current.unwrap_or_default(), v, controller);
                let (namespace, name) = key.clone();
                out.extend(body.map(|body| StatusPatch::GrpcRoute {
                    namespace,
                    name,
                    body,
                }));
            }
        }
        out
    }
}

impl super::GatewayState {
    /// The services GRPCRoutes send to, from the last translation: spoken to over h2c.
    pub(in crate::discovery) fn h2c_services(
        &self,
    ) -> &std::collections::HashSet<std::sync::Arc<str>> {
        &self.more.h2c
    }

    /// The SNI passthrough entries of the TLSRoutes (see [`tls_routes`]) on `listeners`.
    pub(in crate::discovery) fn passthrough(
        &mut self,
        services: &Store<k8s_openapi::api::core::v1::Service>,
        listeners: &[super::listeners::GatewayListener],
        report: &mut crate::discovery::report::Reporter,
    ) -> Vec<crate::config::PassthroughConfig> {
        let input = super::tls_routes::Input {
            classes: &self.classes,
            gateways: &self.gateways,
            routes: &self.more.tls,
            grants: &self.grants,
            namespaces: &self.namespaces,
            services,
            listeners,
            controller: &self.controller,
        };
        let (out, verdicts) = super::tls_routes::translate(&input, report);
        self.more.tls_verdicts = verdicts;
        self.verdicts_dirty = true;
        out
    }
}

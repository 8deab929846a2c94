//! GRPCRoutes → routes of the shared table, by way of HTTPRoute: gRPC is HTTP/2 `POST
//! /pkg.Service/Method`, so each GRPCRoute is rewritten as the HTTPRoute that means the same
//! and translated by [`super::routes`] (parents, hostnames, headers, filters, weighted
//! backendRefs, ReferenceGrants and status reasons all as HTTPRoute's). The rewrite:
//! - `method` `Exact`: service and method → path `Exact /S/M`; service only → `PathPrefix
//!   /S`; method only → `RegularExpression /[^/]+/M`; `RegularExpression`: path
//!   `RegularExpression /(?:S)/(?:M)`, a missing side `[^/]+` (whole-path regexes, as the
//!   core's);
//!   no method: every path;
//! - `headers` are HTTPRoute header matches; filters keep their shape, and any but
//!   `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestMirror` (and `ExtensionRef`,
//!   answered 500 as in HTTPRoute) make the rule answer 500, `UnsupportedValue`;
//! - `allowedRoutes.kinds` and ReferenceGrants are read for GRPCRoute: the Gateways are
//!   translated with each listener's kinds narrowed to GRPCRoute, the grants with their
//!   `from` narrowed to GRPCRoutes (both named HTTPRoute for the shared rules).
//!
//! Backends (and mirror targets) of GRPCRoutes are spoken to over h2c: the Service ports they
//! name get `upstream_protocol = "h2c"` ([`Translated::h2c`]). A Service port is one upstream,
//! so when one is both an HTTPRoute and a GRPCRoute backend, h2c wins for both (HTTP/1
//! requests then reach it over HTTP/2, which a gRPC server speaks).
//!
//! Problems are reported in a reporter of the GRPCRoute pass's own, under `kind="HTTPRoute"`
//! (the shared translation names it), keyed by the GRPCRoute.

use super::grpc_route_types::{GrpcMethodMatch, GrpcRoute, GrpcRouteRule};
use super::route_status::Verdict;
use super::route_types::{HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, ValueMatch};
use super::types::{Gateway, GroupKind, ReferenceGrant};
use crate::config::RouteConfig;
use crate::discovery::report::Reporter;
use crate::discovery::state::{Key, Store};
use kube::runtime::watcher::Event;
use std::collections::HashSet;
use std::sync::Arc;

/// What the translation of every GRPCRoute gives.
#[derive(Debug, Default)]
pub(in crate::discovery) struct Translated {
    /// The routes, oldest GRPCRoute first.
    pub(in crate::discovery) routes: Vec<RouteConfig>,
    /// `grpcroute:ns/name` of each route.
    pub(in crate::discovery) origins: Vec<Arc<str>>,
    /// Per GRPCRoute.
    pub(in crate::discovery) verdicts: Vec<(Key, Verdict)>,
    /// The services to speak h2c to.
    pub(in crate::discovery) h2c: HashSet<Arc<str>>,
}

/// The filters a GRPCRoute may have.
const FILTERS: [&str; 4] = [
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestMirror",
    "ExtensionRef",
];

/// Translates every GRPCRoute with `input` (whose `routes` and `gateways` are replaced).
pub(in crate::discovery) fn translate(
    input: &super::routes::Input<'_>,
    grpc: &Store<GrpcRoute>,
    report: &mut Reporter,
) -> Translated {
    let routes: Store<HttpRoute> = store(grpc.iter().map(|(_, r)| as_http(r)));
    let gateways: Store<Gateway> = store(input.gateways.iter().map(|(_, g)| for_grpc(g)));
    let grants: Store<ReferenceGrant> = store(input.grants.iter().map(|(_, g)| grant(g)));
    let shared = super::routes::Input {
        routes: &routes,
        gateways: &gateways,
        grants: &grants,
        ..*input
    };
    let out = super::routes::translate(&shared, report);
    let mut h2c = HashSet::new();
    let mut origins = Vec::with_capacity(out.origins.len());
    let mut translated = out.routes;
    for (r, o) in translated.iter_mut().zip(&out.origins) {
        let name: Arc<str> = Arc::from(o.replacen("httproute:", "grpcroute:", 1));
        r.name = Arc::clone(&name);
        origins.push(name);
        h2c.insert(Arc::clone(&r.service));
        h2c.extend(r.backends.split.iter().map(|w| Arc::clone(&w.service)));
        h2c.extend(r.upstream.mirror.iter().map(|m| Arc::clone(&m.service)));
    }
    h2c.remove(super::routes::UNRESOLVED);
    Translated {
        routes: translated,
        origins,
        verdicts: out.verdicts,
        h2c,
    }
}

/// A listed store of `items`.
fn store<K: kube::Resource + Clone>(items: impl Iterator<Item = K>) -> Store<K> {
    let mut s = Store::default();
    s.apply(Event::Init);
    for i in items {
        s.apply(Event::InitApply(i));
    }
    s.apply(Event::InitDone);
    s
}

/// `g` with each listener's `allowedRoutes.kinds` read for GRPCRoute: GRPCRoute kept (named
/// HTTPRoute, which the shared rules look for), the others dropped; a list left empty
/// admits nothing.
fn for_grpc(g: &Arc<Gateway>) -> Gateway {
    let mut g = (**g).clone();
    for l in &mut g.spec.listeners {
        let Some(a) = l.allowed_routes.as_mut().filter(|a| !a.kinds.is_empty()) else {
            continue;
        };
        let grpc = a.kinds.iter().any(|k| {
            k.kind == "GRPCRoute"
                && k.group.as_deref().unwrap_or(super::types::GROUP) == super::types::GROUP
        });
        let kind = if grpc { "HTTPRoute" } else { "None" };
        a.kinds = vec![GroupKind {
            group: None,
            kind: kind.to_owned(),
        }];
    }
    g
}

/// `g` read for GRPCRoutes: its `from` entries for GRPCRoute kept (named HTTPRoute, which
/// the shared rules look for), those for HTTPRoute no longer match.
fn grant(g: &Arc<ReferenceGrant>) -> ReferenceGrant {
    let mut g = (**g).clone();
    for f in &mut g.spec.from {
        f.kind = match f.kind.as_str() {
            "GRPCRoute" => "HTTPRoute".to_owned(),
            "HTTPRoute" => "HTTPRoute (not for GRPCRoutes)".to_owned(),
            other => other.to_owned(),
        };
    }
    g
}

/// The HTTPRoute that means what `r` means.
pub(super) fn as_http(r: &Arc<GrpcRoute>) -> HttpRoute {
    HttpRoute {
        metadata: r.metadata.clone(),
        spec: HttpRouteSpec {
            parent_refs: r.spec.parent_refs.clone(),
            hostnames: r.spec.hostnames.clone(),
            rules: r.spec.rules.iter().map(rule).collect(),
        },
        status: None,
    }
}

fn rule(r: &GrpcRouteRule) -> HttpRouteRule {
    let mut filters = r.filters.clone();
    for f in &mut filters {
        if !FILTERS.contains(&f.kind.as_str()) {
            f.kind = format!("{} (not a GRPCRoute filter)", f.kind);
        }
    }
    HttpRouteRule {
        name: r.name.clone(),
        matches: r
            .matches
            .iter()
            .map(|m| HttpRouteMatch {
                path: m.method.as_ref().map(path),
                headers: m.headers.clone(),
                query_params: Vec::new(),
                method: None,
            })
            .collect(),
        filters,
        backend_refs: r.backend_refs.clone(),
        timeouts: None,
    }
}

/// The path match of a method match (see the module doc).
pub(super) fn path(m: &GrpcMethodMatch) -> ValueMatch {
    let (service, method) = (m.service.as_deref(), m.method.as_deref());
    let (kind, value) = if m.kind.as_deref() == Some("RegularExpression") {
        let any = "[^/]+";
        let re = format!(
            "/(?:{})/(?:{})",
            service.unwrap_or(any),
            method.unwrap_or(any)
        );
        ("RegularExpression", re)
    } else {
        match (service, method) {
            (Some(s), Some(m)) => ("Exact", format!("/{s}/{m}")),
            (Some(s), None) => ("PathPrefix", format!("/{s}")),
            (None, Some(m)) => ("RegularExpression", format!("/[^/]+/{}", regex::escape(m))),
            (None, None) => ("PathPrefix", "/".to_owned()),
        }
    };
    ValueMatch {
        kind: Some(kind.to_owned()),
        name: None,
        value: Some(value),
    }
}

#[cfg(test)]
#[path = "grpc_routes_tests.rs"]
mod tests;

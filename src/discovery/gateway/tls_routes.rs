//! TLSRoutes → SNI passthrough entries (`[[passthrough]]`, [`crate::tls::passthrough`]).
//!
//! A Gateway listener with `protocol: TLS` and `tls.mode: Passthrough` is a TLS listener at
//! its port ([`super::listeners`]); each TLSRoute attached to it passes the connections whose
//! SNI is one of its hostnames (intersected with the listener's `hostname`, [`super::hostname`])
//! undecrypted to its backend Service port, on that listener only. Rules, per route:
//! - parentRefs as for HTTPRoute: a Gateway of our class, narrowed by `sectionName` and
//!   `port` (none left: `NoMatchingParent`), admitted by TLS Passthrough listeners whose
//!   `allowedRoutes` admit the route's namespace and whose `kinds` are empty or name TLSRoute
//!   (else `NotAllowedByListeners`); no hostname intersection: `NoMatchingListenerHostname`;
//! - passthrough is by name, so a route and listener both without hostnames has nothing to
//!   match: `Accepted: False, UnsupportedValue`;
//! - the backend is the first backendRef with weight > 0 that resolves (a core Service and
//!   port, in another namespace only with a ReferenceGrant from TLSRoutes); the L4 path sends
//!   a connection to one service, so **weights are not served**: several live backendRefs →
//!   the first is used and `Accepted: False, UnsupportedValue` says so. None that resolves:
//!   no entry (the name is then terminated with our certificates, which a passthrough client
//!   refuses) and `ResolvedRefs: False` (`BackendNotFound`, `InvalidKind`, `RefNotPermitted`).
//! - a wildcard hostname `*.x` covers names any depth of labels under `x`, as the Gateway
//!   API says (`deep_wildcards`; the file's and Ingresses' cover exactly one label), the
//!   longest suffix first.

use super::hostname::{Intersection, intersect};
use super::listeners::GatewayListener;
use super::route_status::{ParentVerdict, Verdict};
use super::tls_route_types::TlsRoute;
use super::types::{Gateway, GatewayClass, Listener, ObjectRef, ReferenceGrant};
use crate::config::PassthroughConfig;
use crate::discovery::report::{ObjectReport, Reporter};
use crate::discovery::state::{Key, Store};
use crate::ingress::HostPattern;
use k8s_openapi::api::core::v1::{Namespace, Service};
use std::sync::Arc;

/// What the translation reads.
pub(in crate::discovery) struct Input<'a> {
    /// GatewayClasses.
    pub(in crate::discovery) classes: &'a Store<GatewayClass>,
    /// Gateways.
    pub(in crate::discovery) gateways: &'a Store<Gateway>,
    /// TLSRoutes.
    pub(in crate::discovery) routes: &'a Store<TlsRoute>,
    /// ReferenceGrants.
    pub(in crate::discovery) grants: &'a Store<ReferenceGrant>,
    /// Namespaces (labels, for `allowedRoutes` selectors).
    pub(in crate::discovery) namespaces: &'a Store<Namespace>,
    /// Services.
    pub(in crate::discovery) services: &'a Store<Service>,
    /// The Gateway listeners to open (their Switchyard names, by port).
    pub(in crate::discovery) listeners: &'a [GatewayListener],
    /// Our controller name.
    pub(in crate::discovery) controller: &'a str,
}

/// Whether `l` is a TLS listener passing connections through.
pub fn passthrough_listener(l: &Listener) -> bool {
    l.protocol == "TLS" && l.tls.as_ref().and_then(|t| t.mode.as_deref()) == Some("Passthrough")
}

/// The passthrough entries of every TLSRoute (oldest first), and each route's verdict.
pub(in crate::discovery) fn translate(
    input: &Input<'_>,
    report: &mut Reporter,
) -> (Vec<PassthroughConfig>, Vec<(Key, Verdict)>) {
    let mut served: Vec<(&Key, &Arc<TlsRoute>)> = input.routes.iter().collect();
    served.sort_by(|a, b| {
        let age = |r: &TlsRoute| r.metadata.creation_timestamp.clone();
        age(a.1).cmp(&age(b.1)).then_with(|| a.0.cmp(b.0))
    });
    let (mut out, mut verdicts) = (Vec::new(), Vec::new());
    for (key, route) in served {
        let generation = route.metadata.generation.unwrap_or_default().to_string();
        let mut rep = report.for_object("TLSRoute", key, &generation);
        let mut v = Verdict::default();
        out.extend(one_route(input, key, route, &mut rep, &mut v));
        verdicts.push((key.clone(), v));
    }
    let live = input.routes;
    report.retain("TLSRoute", |k| live.get(k).is_some());
    (out, verdicts)
}

fn one_route(
    input: &Input<'_>,
    key: &Key,
    route: &TlsRoute,
    rep: &mut ObjectReport<'_>,
    v: &mut Verdict,
) -> Vec<PassthroughConfig> {
    let service = route_backend(input, &key.0, route, rep, v);
    let mut out = Vec::new();
    for parent in &route.spec.parent_refs {
        let parents = super::parents::Parents {
            classes: input.classes,
            gateways: input.gateways,
            namespaces: input.namespaces,
            controller: input.controller,
        };
        let listeners = match super::parents::attach(&parents, &TLS_ROUTE, &key.0, parent, rep) {
            Ok(l) => l,
            Err(None) => continue,
            Err(Some(reason)) => {
                v.parents
                    .push(ParentVerdict::new(parent, &key.0, Some(reason)));
                continue;
            }
        };
        let mut attached = Vec::new();
        for (gw, l) in listeners {
            let hosts = match intersect(l.hostname.as_deref(), &route.spec.hostnames) {
                Intersection::Hosts(list) => list,
                Intersection::Empty => continue,
                Intersection::Any => {
                    let detail = format!("listener {}: passthrough needs a hostname", l.name);
                    rep.skip("unsupported_value", &detail);
                    v.unsupported.get_or_insert(detail);
                    continue;
                }
            };
            attached.push((gw, l.name.clone()));
            let patterns: Vec<HostPattern> = hosts
                .iter()
                .filter_map(|h| HostPattern::parse(h).ok())
                .collect();
            let name = u16::try_from(l.port)
                .ok()
                .and_then(|p| input.listeners.iter().find(|w| w.port == p));
            if let (Some(service), Some(w), false) = (&service, name, patterns.is_empty()) {
                out.push(PassthroughConfig {
                    hosts: patterns,
                    service: Arc::clone(service),
                    listeners: vec![Arc::clone(&w.name)],
                    deep_wildcards: true,
                });
            }
        }
        let reason = attached.is_empty().then(|| {
            let detail = format!("parent {}: no listener hostname intersects", parent.name);
            rep.skip("no_matching_listener_hostname", &detail);
            "NoMatchingListenerHostname"
        });
        let mut pv = ParentVerdict::new(parent, &key.0, reason);
        pv.attached = attached;
        v.parents.push(pv);
    }
    out
}

/// The TLSRoute kind for the parent rules: TLS listeners in Passthrough mode.
const TLS_ROUTE: super::parents::RouteKind = super::parents::RouteKind {
    kind: "TLSRoute",
    serves: passthrough_listener,
};

/// The service of the first live backendRef that resolves (see the module doc).
fn route_backend(
    input: &Input<'_>,
    route_ns: &str,
    route: &TlsRoute,
    rep: &mut ObjectReport<'_>,
    v: &mut Verdict,
) -> Option<Arc<str>> {
    let live: Vec<&ObjectRef> = route
        .spec
        .rules
        .iter()
        .flat_map(|r| &r.backend_refs)
        .filter(|b| b.weight.unwrap_or(1) > 0)
        .collect();
    if live.len() > 1 {
        let detail = "several backendRefs: passthrough uses the first that resolves".to_owned();
        rep.skip("unsupported_value", &detail);
        v.unsupported.get_or_insert(detail);
    }
    let mut found = None;
    for b in live {
        match super::backend_ref::resolve(input.grants, input.services, "TLSRoute", route_ns, b) {
            Ok(s) => {
                found.get_or_insert(s);
            }
            Err((reason, metric)) => {
                rep.skip(metric, &format!("backendRef {}", b.name));
                v.unresolved.get_or_insert(reason);
            }
        }
    }
    found
}

#[cfg(test)]
#[path = "tls_routes_tests.rs"]
mod tests;

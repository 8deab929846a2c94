//! HTTPRoutes → routes of the shared table: which parents (Gateway listeners) accept a route,
//! the hosts it serves there, and one [`RouteConfig`] per host and match, fenced to the
//! Gateway listeners that host came from ([`crate::ingress::listener_routes`]): a route is
//! served on the listeners it attached to, for the hosts it intersected there, nowhere else.
//!
//! Rules (the Gateway API's, where served):
//! - a parentRef names a Gateway (`group` gateway.networking.k8s.io, `kind` Gateway, the
//!   route's namespace unless given) of one of our GatewayClasses; others are not ours and are
//!   ignored. Its listeners are narrowed by `sectionName` and `port` (none left: reported
//!   `no_matching_parent`), then to served (HTTP, HTTPS) listeners whose `allowedRoutes` admit
//!   the route (`namespaces.from` Same, the default, All, or Selector on the labels of the
//!   route's Namespace; `kinds` empty or naming HTTPRoute) — none: `not_allowed_by_listeners`;
//! - hosts: the route's `hostnames` intersected with each admitting listener's hostname
//!   ([`super::hostname`]); no intersection: `no_matching_listener_hostname`;
//! - each rule × match × host is one route ([`super::matches`]); a match that cannot be
//!   served is reported `unsupported_value` and left out;
//! - `backendRefs`: Services (core group) by name and port, weighted (default 1); a ref to
//!   another kind, to another namespace without a ReferenceGrant ([`super::grants`]), or to a
//!   missing Service or port keeps its share and that share answers 500 (as the core does
//!   for a split service not in the table); no backendRefs: 500;
//! - filters and timeouts per [`super::filters`]; one that cannot be served makes the rule
//!   answer 500 (`unsupported_filter`, `Accepted: False, UnsupportedValue`).
//!
//! Routes are listed oldest HTTPRoute first (creation time, then namespace/name), so of two
//! equal routes on one Gateway listener the older wins ([`crate::discovery::Merger`]); being
//! fenced, they never meet the file's or the Ingresses' routes. Problems are reported per route version
//! (`switchyard_kube_skipped_total{kind="HTTPRoute",reason}`); route status is not yet written.

use super::hostname::{Intersection, intersect};
use super::route_status::{ParentVerdict, Verdict};
use super::route_types::{HttpRoute, HttpRouteRule};
use super::types::{GROUP, Gateway, GatewayClass, ObjectRef, ReferenceGrant};
use crate::config::RouteConfig;
use crate::discovery::report::{ObjectReport, Reporter};
use crate::discovery::state::{Key, Store};
use crate::discovery::translate::service_name;
use crate::ingress::backends::{Role, WeightedService};
use crate::ingress::{BackendPolicy, HostPattern};
use k8s_openapi::api::core::v1::Service;
use std::sync::Arc;

/// The service name of a backend that cannot be used: never in the table, so its share of
/// requests answers 500 (it has a `/` and no `:`, so neither a file nor a cluster service).
pub const UNRESOLVED: &str = "gateway/unresolved";

/// What the translation reads.
pub(in crate::discovery) struct Input<'a> {
    /// GatewayClasses.
    pub(in crate::discovery) classes: &'a Store<GatewayClass>,
    /// Gateways.
    pub(in crate::discovery) gateways: &'a Store<Gateway>,
    /// HTTPRoutes.
    pub(in crate::discovery) routes: &'a Store<HttpRoute>,
    /// ReferenceGrants.
    pub(in crate::discovery) grants: &'a Store<ReferenceGrant>,
    /// Namespaces (labels, for `allowedRoutes` selectors).
    pub(in crate::discovery) namespaces: &'a Store<k8s_openapi::api::core::v1::Namespace>,
    /// Services.
    pub(in crate::discovery) services: &'a Store<Service>,
    /// Our controller name.
    pub(in crate::discovery) controller: &'a str,
}

/// What the translation of every HTTPRoute gives: routes, oldest HTTPRoute first, the
/// `httproute:ns/name` of each, and what each HTTPRoute's status should say.
#[derive(Debug, Default)]
pub(in crate::discovery) struct Translated {
    /// The routes.
    pub(in crate::discovery) routes: Vec<RouteConfig>,
    /// The origin of each route.
    pub(in crate::discovery) origins: Vec<Arc<str>>,
    /// Per HTTPRoute.
    pub(in crate::discovery) verdicts: Vec<(Key, Verdict)>,
}

/// The routes of every HTTPRoute (see [`Translated`]).
pub(in crate::discovery) fn translate(input: &Input<'_>, report: &mut Reporter) -> Translated {
    let mut served: Vec<(&Key, &Arc<HttpRoute>)> = input.routes.iter().collect();
    served.sort_by(|a, b| {
        let age = |r: &HttpRoute| r.metadata.creation_timestamp.clone();
        age(a.1).cmp(&age(b.1)).then_with(|| a.0.cmp(b.0))
    });
    let mut out = Translated::default();
    for (key, route) in served {
        // By generation, not resourceVersion: our own status writes must not report again.
        let generation = route.metadata.generation.unwrap_or_default().to_string();
        let mut rep = report.for_object("HTTPRoute", key, &generation);
        let origin: Arc<str> = Arc::from(format!("httproute:{}/{}", key.0, key.1));
        let mut v = Verdict::default();
        for r in one_route(input, key, route, &origin, &mut (&mut rep, &mut v)) {
            out.routes.push(r);
            out.origins.push(Arc::clone(&origin));
        }
        out.verdicts.push((key.clone(), v));
    }
    let live = input.routes;
    report.retain("HTTPRoute", |k| live.get(k).is_some());
    out
}

/// Reports for one route, and what its status should say.
type Notes<'r, 'o> = (&'r mut ObjectReport<'o>, &'r mut Verdict);

fn one_route(
    input: &Input<'_>,
    key: &Key,
    route: &HttpRoute,
    origin: &Arc<str>,
    notes: &mut Notes<'_, '_>,
) -> Vec<RouteConfig> {
    let mut hosts: Vec<(Option<HostPattern>, Vec<Arc<str>>)> = Vec::new();
    for parent in &route.spec.parent_refs {
        let listeners =
            match super::parents::attach(&parents(input), &HTTP_ROUTE, &key.0, parent, notes.0) {
                Ok(l) => l,
                Err(None) => continue,
                Err(Some(reason)) => {
                    notes
                        .1
                        .parents
                        .push(ParentVerdict::new(parent, &key.0, Some(reason)));
                    continue;
                }
            };
        let mut any_host = false;
        let mut attached = Vec::new();
        for (gw, l) in listeners {
            let fence = super::listeners::section_name(&gw, &l.name);
            match intersect(l.hostname.as_deref(), &route.spec.hostnames) {
                Intersection::Any => push_host(&mut hosts, None, &fence),
                Intersection::Hosts(list) => {
                    for h in list {
                        match HostPattern::parse(&h) {
                            Ok(p) => push_host(&mut hosts, Some(p), &fence),
                            Err(e) => {
                                let detail = format!("hostname {h:?}: {e}");
                                notes.0.skip("invalid_host", &detail);
                            }
                        }
                    }
                }
                Intersection::Empty => continue,
            }
            any_host = true;
            attached.push((gw.clone(), l.name.clone()));
        }
        let reason = if any_host {
            None
        } else {
            let detail = format!("parent {}: no listener hostname intersects", parent.name);
            notes.0.skip("no_matching_listener_hostname", &detail);
            Some("NoMatchingListenerHostname")
        };
        let mut pv = ParentVerdict::new(parent, &key.0, reason);
        pv.attached = attached;
        notes.1.parents.push(pv);
    }
    let mut out = Vec::new();
    for (i, rule) in route.spec.rules.iter().enumerate() {
        let (service, backends) = rule_backends(input, &key.0, rule, notes);
        let matches: Vec<Option<&_>> = if rule.matches.is_empty() {
            vec![None]
        } else {
            rule.matches.iter().map(Some).collect()
        };
        for m in matches {
            let parsed = match super::matches::route_match(m) {
                Ok(p) => p,
                Err(e) => {
                    let detail = format!("rules[{i}]: {e}");
                    notes.0.skip("unsupported_value", &detail);
                    notes.1.unsupported.get_or_insert(detail);
                    continue;
                }
            };
            let mut mirror_to = |b: &ObjectRef| backend(input, &key.0, b, notes);
            let extras = super::filters::extras(rule, &parsed, &mut mirror_to);
            let (service, backends, extras) = match extras {
                Ok(x) => (Arc::clone(&service), backends.clone(), x),
                Err(e) => {
                    let detail = format!("rules[{i}]: {e}");
                    notes.0.skip("unsupported_filter", &detail);
                    notes.1.unsupported.get_or_insert(detail);
                    let none = super::filters::RuleExtras::default();
                    (Arc::from(UNRESOLVED), BackendPolicy::default(), none)
                }
            };
            let upstream = crate::config::upstream_policy::UpstreamPolicyConfig {
                retry: None,
                timeouts: extras.timeouts,
                mirror: extras.mirror,
            };
            for (host, fence) in &hosts {
                out.push(RouteConfig {
                    host: host.clone(),
                    path: parsed.path.clone(),
                    path_type: parsed.path_type,
                    conditions: parsed.conditions.clone(),
                    service: Arc::clone(&service),
                    max_body_bytes: None,
                    allow_sources: Vec::new(),
                    sticky_cookie: None,
                    name: Arc::clone(origin),
                    backends: backends.clone(),
                    filters: extras.filters.clone(),
                    limits: Default::default(),
                    cors: None,
                    upstream: upstream.clone(),
                    listeners: Some(fence.as_slice().into()),
                    source: crate::config::RouteSource::from_origin(origin),
                });
            }
        }
    }
    out
}

/// Adds `host` as served through the listener `fence` (each host once, with every listener
/// that serves it: the route is fenced to exactly those).
fn push_host(
    hosts: &mut Vec<(Option<HostPattern>, Vec<Arc<str>>)>,
    host: Option<HostPattern>,
    fence: &Arc<str>,
) {
    match hosts.iter_mut().find(|(h, _)| *h == host) {
        Some((_, fences)) if fences.contains(fence) => {}
        Some((_, fences)) => fences.push(Arc::clone(fence)),
        None => hosts.push((host, vec![Arc::clone(fence)])),
    }
}

/// The rule's target service and split (see the module doc for the 500 cases).
fn rule_backends(
    input: &Input<'_>,
    route_ns: &str,
    rule: &HttpRouteRule,
    notes: &mut Notes<'_, '_>,
) -> (Arc<str>, BackendPolicy) {
    let unresolved = || (Arc::from(UNRESOLVED), BackendPolicy::default());
    let split: Vec<WeightedService> = rule
        .backend_refs
        .iter()
        .map(|b| WeightedService {
            service: backend(input, route_ns, b, notes),
            weight: u32::try_from(b.weight.unwrap_or(1)).unwrap_or(0),
            role: Role::Primary,
        })
        .collect();
    let live: Vec<&WeightedService> = split.iter().filter(|w| w.weight > 0).collect();
    match live.as_slice() {
        [] => unresolved(),
        [one] => (Arc::clone(&one.service), BackendPolicy::default()),
        [first, ..] => {
            let service = Arc::clone(&first.service);
            let policy = BackendPolicy {
                split,
                ..BackendPolicy::default()
            };
            (service, policy)
        }
    }
}

/// The service name of one backendRef, or [`UNRESOLVED`] (reported).
fn backend(
    input: &Input<'_>,
    route_ns: &str,
    b: &ObjectRef,
    (rep, verdict): &mut Notes<'_, '_>,
) -> Arc<str> {
    let group = b.group.as_deref().unwrap_or_default();
    let kind = b.kind.as_deref().unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        rep.skip(
            "invalid_kind",
            &format!("backendRef {group}/{kind} {}", b.name),
        );
        verdict.unresolved.get_or_insert("InvalidKind");
        return Arc::from(UNRESOLVED);
    }
    let ns = b.namespace.as_deref().unwrap_or(route_ns);
    let from = super::grants::End {
        group: GROUP,
        kind: "HTTPRoute",
        namespace: route_ns,
        name: "",
    };
    let to = super::grants::End {
        group: "",
        kind: "Service",
        namespace: ns,
        name: &b.name,
    };
    let grants = input.grants.iter().map(|(_, g)| &**g);
    if !super::grants::permits(grants, from, to) {
        rep.skip("ref_not_permitted", &format!("backendRef {ns}/{}", b.name));
        verdict.unresolved.get_or_insert("RefNotPermitted");
        return Arc::from(UNRESOLVED);
    }
    let found = input
        .services
        .get(&(ns.to_owned(), b.name.clone()))
        .and_then(|svc| {
            let ports = svc.spec.as_ref()?.ports.as_ref()?;
            let port = ports.iter().find(|p| Some(p.port) == b.port)?;
            service_name(ns, &b.name, port)
        });
    found.unwrap_or_else(|| {
        let detail = format!("backendRef {ns}/{} port {:?}", b.name, b.port);
        rep.skip("backend_not_found", &detail);
        verdict.unresolved.get_or_insert("BackendNotFound");
        Arc::from(UNRESOLVED)
    })
}

/// The HTTPRoute kind for the parent rules: listeners of a protocol we serve HTTP on.
const HTTP_ROUTE: super::parents::RouteKind = super::parents::RouteKind {
    kind: "HTTPRoute",
    serves: super::listeners::served_protocol,
};

/// What the parent rules read of `input`.
fn parents<'a>(input: &Input<'a>) -> super::parents::Parents<'a> {
    super::parents::Parents {
        classes: input.classes,
        gateways: input.gateways,
        namespaces: input.namespaces,
        controller: input.controller,
    }
}

//! Which listeners of a route's `parentRef` take the route: the rules every route kind shares
//! (HTTPRoute, and GRPCRoute through it; TLSRoute), kept in one place so a fix to them holds for
//! every kind. The parent must be a Gateway of a class with our controller name; `sectionName`
//! and `port` narrow its listeners (a `Conflicted` listener takes nothing); each listener left
//! must serve the kind (`serves`) and admit it by `allowedRoutes`: namespaces `Same` (default),
//! `All` or `Selector` (labels of the route's Namespace), and `kinds` (empty: any it serves).

use super::types::{GROUP, Gateway, GatewayClass, Listener, ObjectRef};
use crate::discovery::report::ObjectReport;
use crate::discovery::state::{Key, Store};
use k8s_openapi::api::core::v1::Namespace;

/// What the parent rules read.
pub(super) struct Parents<'a> {
    /// GatewayClasses, by name.
    pub(super) classes: &'a Store<GatewayClass>,
    /// Gateways, by namespace and name.
    pub(super) gateways: &'a Store<Gateway>,
    /// Namespaces, for `allowedRoutes` selectors.
    pub(super) namespaces: &'a Store<Namespace>,
    /// Our controller name.
    pub(super) controller: &'a str,
}

/// The route kind asking, as `allowedRoutes.kinds` names it, and the listeners that serve it.
pub(super) struct RouteKind {
    /// `HTTPRoute`, `TLSRoute`, ...
    pub(super) kind: &'static str,
    /// Whether a listener serves this kind at all (its protocol and TLS mode).
    pub(super) serves: fn(&Listener) -> bool,
}

/// The listeners (with their Gateway's key) of `parent` that admit a route of `kind` from
/// `route_ns`; `Err(None)` when the parent is not ours, `Err(Some(reason))` when it admits
/// nothing (reported).
pub(super) fn attach<'a>(
    p: &Parents<'a>,
    kind: &RouteKind,
    route_ns: &str,
    parent: &ObjectRef,
    rep: &mut ObjectReport<'_>,
) -> Result<Vec<(Key, &'a Listener)>, Option<&'static str>> {
    let group = parent.group.as_deref().unwrap_or(GROUP);
    if group != GROUP || parent.kind.as_deref().unwrap_or("Gateway") != "Gateway" {
        return Err(None);
    }
    let ns = parent.namespace.as_deref().unwrap_or(route_ns);
    let key = (ns.to_owned(), parent.name.clone());
    let gateway = p.gateways.get(&key).ok_or(None)?;
    let class = p
        .classes
        .get(&(String::new(), gateway.spec.gateway_class_name.clone()))
        .ok_or(None)?;
    if class.spec.controller_name != p.controller {
        return Err(None);
    }
    let conflicts = super::gateway_status::conflicted(gateway);
    let named: Vec<&Listener> = gateway
        .spec
        .listeners
        .iter()
        .filter(|l| !conflicts.contains(&l.name.as_str()))
        .filter(|l| parent.section_name.as_ref().is_none_or(|s| *s == l.name))
        .filter(|l| parent.port.is_none_or(|port| port == l.port))
        .collect();
    if named.is_empty() {
        rep.skip(
            "no_matching_parent",
            &format!("parent {ns}/{}", parent.name),
        );
        return Err(Some("NoMatchingParent"));
    }
    let admitted: Vec<(Key, &Listener)> = named
        .into_iter()
        .filter(|l| (kind.serves)(l) && admits(p, kind.kind, l, route_ns, ns))
        .map(|l| (key.clone(), l))
        .collect();
    if admitted.is_empty() {
        let detail = format!("parent {ns}/{}", parent.name);
        rep.skip("not_allowed_by_listeners", &detail);
        return Err(Some("NotAllowedByListeners"));
    }
    Ok(admitted)
}

/// Whether `l` (of a Gateway in `gateway_ns`) admits a route of `kind` from `route_ns`.
fn admits(p: &Parents<'_>, kind: &str, l: &Listener, route_ns: &str, gateway_ns: &str) -> bool {
    let allowed = l.allowed_routes.as_ref();
    let namespaces = allowed.and_then(|a| a.namespaces.as_ref());
    let namespace_ok = match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Same" => route_ns == gateway_ns,
        "Selector" => {
            let ns = p.namespaces.get(&(String::new(), route_ns.to_owned()));
            let labels = ns
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            namespaces
                .and_then(|n| n.selector.as_ref())
                .is_some_and(|s| super::selector::matches(s, &labels))
        }
        _ => false,
    };
    let kinds = allowed.map(|a| a.kinds.as_slice()).unwrap_or_default();
    let kind_ok = kinds.is_empty()
        || kinds
            .iter()
            .any(|k| k.kind == kind && k.group.as_deref().unwrap_or(GROUP) == GROUP);
    namespace_ok && kind_ok
}

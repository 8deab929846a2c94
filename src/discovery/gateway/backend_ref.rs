//! One backendRef → a cluster service name, for the route kinds of their own files (TLSRoute;
//! HTTPRoute has its own in [`super::routes`]): a core Service by name and port, in another
//! namespace only while a ReferenceGrant lets routes of that kind refer to it.

use super::types::{GROUP, ObjectRef, ReferenceGrant};
use crate::discovery::state::Store;
use crate::discovery::translate::service_name;
use k8s_openapi::api::core::v1::Service;
use std::sync::Arc;

/// The service of `b` (a backendRef of a `kind` route in `route_ns`), or why not: the
/// status reason and the metric reason.
pub(super) fn resolve(
    grants: &Store<ReferenceGrant>,
    services: &Store<Service>,
    kind: &'static str,
    route_ns: &str,
    b: &ObjectRef,
) -> Result<Arc<str>, (&'static str, &'static str)> {
    let group = b.group.as_deref().unwrap_or_default();
    if !group.is_empty() || b.kind.as_deref().unwrap_or("Service") != "Service" {
        return Err(("InvalidKind", "invalid_kind"));
    }
    let ns = b.namespace.as_deref().unwrap_or(route_ns);
    let from = super::grants::End {
        group: GROUP,
        kind,
        namespace: route_ns,
        name: "",
    };
    let to = super::grants::End {
        group: "",
        kind: "Service",
        namespace: ns,
        name: &b.name,
    };
    if !super::grants::permits(grants.iter().map(|(_, g)| &**g), from, to) {
        return Err(("RefNotPermitted", "ref_not_permitted"));
    }
    services
        .get(&(ns.to_owned(), b.name.clone()))
        .and_then(|svc| {
            let ports = svc.spec.as_ref()?.ports.as_ref()?;
            let port = ports.iter().find(|p| Some(p.port) == b.port)?;
            service_name(ns, &b.name, port)
        })
        .ok_or(("BackendNotFound", "backend_not_found"))
}

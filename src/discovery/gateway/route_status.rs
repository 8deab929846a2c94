//! HTTPRoute status: per parent of ours, `Accepted` and `ResolvedRefs` with the spec's
//! reasons, from what the translation ([`super::routes`]) found.
//!
//! `status.parents` is a list every controller shares: [`super::shared_status`] merges ours
//! into it (the other controllers' entries kept, the route's `resourceVersion` sent, a patch
//! only when our entries differ, transition times kept).

use super::route_types::HttpRoute;
use super::shared_status;
use super::types::ObjectRef;
use crate::discovery::state::Key;
use serde_json::{Map, Value, json};

/// The shared list routes' status keeps, and the field its entries are told apart by.
const LIST: (&str, &str) = ("parents", "parentRef");

/// What the translation found about one HTTPRoute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Each parentRef of ours, in order.
    pub parents: Vec<ParentVerdict>,
    /// The first rule part that cannot be served (`Accepted: False, UnsupportedValue`).
    pub unsupported: Option<String>,
    /// The first reason a backendRef could not be used (`ResolvedRefs: False`).
    pub unresolved: Option<&'static str>,
}

/// One parentRef of ours.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentVerdict {
    /// The parentRef as written (echoed in the status).
    pub parent_ref: Value,
    /// Why the parent did not accept the route; `None`: accepted.
    pub refused: Option<&'static str>,
    /// The listeners (Gateway key, listener name) the route attached to.
    pub attached: Vec<(Key, String)>,
}

impl ParentVerdict {
    /// The verdict for `parent` (of a route in `route_ns`), refused for `refused`.
    pub(crate) fn new(parent: &ObjectRef, route_ns: &str, refused: Option<&'static str>) -> Self {
        let mut r = Map::new();
        let group = parent.group.as_deref().unwrap_or(super::types::GROUP);
        r.insert("group".into(), json!(group));
        r.insert(
            "kind".into(),
            json!(parent.kind.as_deref().unwrap_or("Gateway")),
        );
        let ns = parent.namespace.as_deref().unwrap_or(route_ns);
        r.insert("namespace".into(), json!(ns));
        r.insert("name".into(), json!(parent.name));
        if let Some(s) = &parent.section_name {
            r.insert("sectionName".into(), json!(s));
        }
        if let Some(p) = parent.port {
            r.insert("port".into(), json!(p));
        }
        ParentVerdict {
            parent_ref: Value::Object(r),
            refused,
            attached: Vec::new(),
        }
    }
}

/// The status merge patch for `route`, or `None` when our entries are already as `v` says.
pub fn patch(route: &HttpRoute, v: &Verdict, controller: &str) -> Option<Value> {
    let current = route
        .status
        .as_ref()
        .map(|s| s.parents.as_slice())
        .unwrap_or_default();
    patch_of(&route.metadata, current, v, controller)
}

/// [`patch`] for any route kind: its metadata and `status.parents` as read (TLSRoute,
/// GRPCRoute share HTTPRoute's route status).
pub fn patch_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    current: &[Value],
    v: &Verdict,
    controller: &str,
) -> Option<Value> {
    let generation = meta.generation.unwrap_or(0);
    shared_status::patch(meta, current, controller, LIST, |ours| {
        v.parents
            .iter()
            .map(|p| entry(p, v, generation, controller, ours))
            .collect()
    })
}

/// Our status entry for one parent.
fn entry(
    p: &ParentVerdict,
    v: &Verdict,
    generation: i64,
    controller: &str,
    ours: &[&Value],
) -> Value {
    let (accepted, a_reason, a_msg) = match (p.refused, &v.unsupported) {
        (Some(reason), _) => (false, reason, format!("not accepted: {reason}")),
        (None, Some(detail)) => (false, "UnsupportedValue", detail.clone()),
        (None, None) => (true, "Accepted", "accepted".to_owned()),
    };
    let (resolved, r_reason) = match v.unresolved {
        Some(reason) => (false, reason),
        None => (true, "ResolvedRefs"),
    };
    let before = ours.iter().find(|o| o["parentRef"] == p.parent_ref);
    let conditions = [
        ("Accepted", accepted, a_reason, a_msg),
        ("ResolvedRefs", resolved, r_reason, r_reason.to_owned()),
    ]
    .map(|(ty, ok, reason, message)| {
        shared_status::condition(before.copied(), ty, ok, reason, message, generation)
    });
    json!({ "parentRef": p.parent_ref, "controllerName": controller, "conditions": conditions })
}

/// What of a patch must differ for another write to be worth it (times left out).
pub fn fingerprint(body: &Value) -> Value {
    shared_status::fingerprint(body, LIST)
}

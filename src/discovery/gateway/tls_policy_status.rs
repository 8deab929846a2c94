//! BackendTLSPolicy status: `status.ancestors`, one entry of ours per Gateway of ours that a
//! targeted Service port is reached through (a route attached to it sends there), with
//! `Accepted` and `ResolvedRefs` as [`super::tls_policies`] found.
//!
//! As for route status ([`super::route_status`]): `ancestors` is shared by every controller
//! and a merge patch replaces the list whole, so the patch carries the other controllers'
//! entries as read and the policy's `resourceVersion` (a concurrent write makes ours fail
//! with 409, and its event makes us compute again); a patch is made only when our entries
//! differ; a condition whose status did not change keeps its `lastTransitionTime`.

use super::tls_policies::PolicyVerdict;
use super::tls_policy_types::BackendTlsPolicy;
use crate::discovery::state::Key;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The status merge patch for `policy`, or `None` when our entries are already right.
pub fn patch(
    policy: &BackendTlsPolicy,
    v: &PolicyVerdict,
    gateways: &BTreeSet<&Key>,
    controller: &str,
) -> Option<Value> {
    let current = policy
        .status
        .as_ref()
        .map(|s| s.ancestors.as_slice())
        .unwrap_or_default();
    let generation = policy.metadata.generation.unwrap_or(0);
    let (ours, others): (Vec<&Value>, Vec<&Value>) = current
        .iter()
        .partition(|a| a["controllerName"] == controller);
    let desired: Vec<Value> = gateways
        .iter()
        .map(|g| entry(g, v, generation, controller, &ours))
        .collect();
    let same =
        desired.len() == ours.len() && desired.iter().zip(&ours).all(|(d, o)| shape(d) == shape(o));
    if same {
        return None;
    }
    let ancestors: Vec<Value> = others.into_iter().cloned().chain(desired).collect();
    Some(json!({
        "metadata": { "resourceVersion": policy.metadata.resource_version },
        "status": { "ancestors": ancestors },
    }))
}

/// Our entry for one Gateway.
fn entry(
    gateway: &Key,
    v: &PolicyVerdict,
    generation: i64,
    controller: &str,
    ours: &[&Value],
) -> Value {
    let ancestor = json!({
        "group": super::types::GROUP,
        "kind": "Gateway",
        "namespace": gateway.0,
        "name": gateway.1,
    });
    let before = ours.iter().find(|o| o["ancestorRef"] == ancestor);
    let accepted = v.refused.unwrap_or("Accepted");
    let resolved = v.unresolved.unwrap_or("ResolvedRefs");
    let conditions = [
        ("Accepted", v.refused.is_none(), accepted),
        ("ResolvedRefs", v.unresolved.is_none(), resolved),
    ]
    .map(|(ty, ok, reason)| {
        let status = if ok { "True" } else { "False" };
        let kept = before
            .and_then(|b| b["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == status))
            .and_then(|c| serde_json::from_value::<Time>(c["lastTransitionTime"].clone()).ok());
        Condition {
            type_: ty.into(),
            status: status.into(),
            reason: reason.into(),
            message: reason.into(),
            observed_generation: Some(generation),
            last_transition_time: kept.unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now())),
        }
    });
    json!({ "ancestorRef": ancestor, "controllerName": controller, "conditions": conditions })
}

/// What of a patch must differ for another write to be worth it (times left out).
pub fn fingerprint(body: &Value) -> Value {
    let ancestors = body["status"]["ancestors"].as_array();
    Value::Array(
        ancestors
            .into_iter()
            .flatten()
            .map(|a| {
                let (r, cs) = shape(a);
                json!([r, cs])
            })
            .collect(),
    )
}

/// What must be equal for an entry to need no write.
fn shape(entry: &Value) -> (Value, Vec<Value>) {
    let conditions = entry["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!([c["type"], c["status"], c["reason"], c["observedGeneration"]]))
                .collect()
        })
        .unwrap_or_default();
    (entry["ancestorRef"].clone(), conditions)
}

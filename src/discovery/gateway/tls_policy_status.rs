//! BackendTLSPolicy status: `status.ancestors`, one entry of ours per Gateway of ours that a
//! targeted Service port is reached through (a route attached to it sends there), with
//! `Accepted` and `ResolvedRefs` as [`super::tls_policies`] found.
//!
//! `ancestors` is shared by every controller, as routes' `parents` are: merged the same way,
//! by [`super::shared_status`].

use super::shared_status;
use super::tls_policies::PolicyVerdict;
use super::tls_policy_types::BackendTlsPolicy;
use crate::discovery::state::Key;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The shared list a policy's status keeps, and the field its entries are told apart by.
const LIST: (&str, &str) = ("ancestors", "ancestorRef");

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
    shared_status::patch(&policy.metadata, current, controller, LIST, |ours| {
        gateways
            .iter()
            .map(|g| entry(g, v, generation, controller, ours))
            .collect()
    })
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
        shared_status::condition(before.copied(), ty, ok, reason, reason.into(), generation)
    });
    json!({ "ancestorRef": ancestor, "controllerName": controller, "conditions": conditions })
}

/// What of a patch must differ for another write to be worth it (times left out).
pub fn fingerprint(body: &Value) -> Value {
    shared_status::fingerprint(body, LIST)
}

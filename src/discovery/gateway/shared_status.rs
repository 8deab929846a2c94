//! The status lists that every controller shares: a route's `status.parents` and a policy's
//! `status.ancestors`. One implementation for both, so a fix to how we merge lands in both.
//!
//! A JSON merge patch replaces a list whole, so ours is the list as read with the other
//! controllers' entries kept and ours replaced, sent with the object's `resourceVersion` (a
//! concurrent write makes it fail with 409, and that write's event makes us compute again).
//! A patch is made only when our entries differ from what is there in their reference
//! (`parentRef`, `ancestorRef`) and each condition's type, status, reason and
//! `observedGeneration`; a condition whose status did not change keeps its
//! `lastTransitionTime`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, Time};
use serde_json::{Value, json};

/// The merge patch setting `status.<list>` to `current` with our entries (those whose
/// `controllerName` is `controller`) replaced by what `desired` makes of them, or `None` when
/// they are already that. `reference` names the field an entry is compared by.
pub(super) fn patch(
    meta: &ObjectMeta,
    current: &[Value],
    controller: &str,
    (list, reference): (&str, &str),
    desired: impl FnOnce(&[&Value]) -> Vec<Value>,
) -> Option<Value> {
    let (ours, others): (Vec<&Value>, Vec<&Value>) = current
        .iter()
        .partition(|e| e["controllerName"] == controller);
    let desired = desired(&ours);
    let same = desired.len() == ours.len()
        && desired
            .iter()
            .zip(&ours)
            .all(|(d, o)| shape(d, reference) == shape(o, reference));
    if same {
        return None;
    }
    let entries: Vec<Value> = others.into_iter().cloned().chain(desired).collect();
    let mut status = serde_json::Map::new();
    status.insert(list.to_owned(), Value::Array(entries));
    Some(json!({
        "metadata": { "resourceVersion": meta.resource_version },
        "status": status,
    }))
}

/// A condition of ours, keeping the `lastTransitionTime` of `before`'s condition of the same
/// type when its status is unchanged.
pub(super) fn condition(
    before: Option<&Value>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: i64,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    let kept = before
        .and_then(|b| b["conditions"].as_array())
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == type_ && c["status"] == status)
        })
        .and_then(|c| serde_json::from_value::<Time>(c["lastTransitionTime"].clone()).ok());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        observed_generation: Some(generation),
        last_transition_time: kept.unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now())),
    }
}

/// What of a patch's `status.<list>` must differ for another write to be worth it (times
/// left out).
pub(super) fn fingerprint(body: &Value, (list, reference): (&str, &str)) -> Value {
    let entries = body["status"][list].as_array();
    Value::Array(
        entries
            .into_iter()
            .flatten()
            .map(|e| shape(e, reference))
            .collect(),
    )
}

/// What must be equal for an entry to need no write: its reference and each condition's
/// type, status, reason and `observedGeneration`.
fn shape(entry: &Value, reference: &str) -> Value {
    let conditions: Vec<Value> = entry["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| json!([c["type"], c["status"], c["reason"], c["observedGeneration"]]))
                .collect()
        })
        .unwrap_or_default();
    json!([entry[reference], conditions])
}

//! Gateway status: `Accepted`, `Programmed`, `addresses`, and per listener `Accepted`,
//! `Programmed`, `ResolvedRefs`, `Conflicted`, `supportedKinds` and `attachedRoutes`.
//!
//! A Gateway of our class is wholly ours, so its status is written as one JSON merge patch of
//! the fields above (lists replaced whole), only when they differ from what is there (each
//! condition's type, status, reason and `observedGeneration`, `attachedRoutes`,
//! `supportedKinds`, addresses); a condition whose status stays keeps its
//! `lastTransitionTime`. Listener verdicts, per the rules in [`super::listeners`]:
//! - `HTTP`, or `HTTPS` terminated here: accepted and programmed, unless its port could not
//!   be bound (`Accepted: False, PortUnavailable`; the Merger reports it back) or a file
//!   listener of the other kind holds it; an HTTPS listener's `certificateRefs` that do not
//!   resolve give `ResolvedRefs: False` (`InvalidCertificateRef`, `RefNotPermitted`), and
//!   without one usable certificate it is not programmed;
//! - `TLS` with `tls.mode: Passthrough`: as HTTP, its route kind TLSRoute (HTTP and HTTPS
//!   ones: HTTPRoute and GRPCRoute);
//! - another protocol: `Accepted: False, UnsupportedProtocol` (not served yet);
//! - two listeners of one Gateway with the same port and hostname: the later is
//!   `Conflicted: True, HostnameConflict`, not programmed;
//! - `allowedRoutes.kinds` naming a kind the listener does not serve: `ResolvedRefs: False,
//!   InvalidRouteKinds` (the supported ones are still listed);
//! - HTTPS listeners on one port whose hostnames overlap: `OverlappingTLSConfig: True,
//!   OverlappingHostnames` ([`super::overlap`]), absent elsewhere.

use super::types::{GROUP, Gateway, Listener};
use crate::discovery::state::Key;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};

/// What the status of one Gateway is computed from.
pub struct GatewayFacts<'a> {
    /// HTTPS listeners' certificate refs.
    pub certs: &'a super::certs::RefState,
    /// Ports the Merger could not open, with the reason (`PortUnavailable`).
    pub refused: &'a BTreeMap<u16, &'static str>,
    /// Routes attached per (Gateway, listener name).
    pub attached: &'a HashMap<(Key, String), i64>,
    /// `--publish-status-address` values.
    pub addresses: &'a [String],
}

/// The listeners of `gw` that conflict with an earlier one (same port and hostname).
pub fn conflicted(gw: &Gateway) -> Vec<&str> {
    let ls = &gw.spec.listeners;
    ls.iter()
        .enumerate()
        .filter(|(i, l)| {
            ls[..*i]
                .iter()
                .any(|e| e.port == l.port && e.hostname == l.hostname)
        })
        .map(|(_, l)| l.name.as_str())
        .collect()
}

/// The status merge patch for `gw` (of our class), or `None` when it is up to date.
pub fn patch(key: &Key, gw: &Gateway, facts: &GatewayFacts<'_>) -> Option<Value> {
    let generation = gw.metadata.generation.unwrap_or(0);
    let current = gw.status.as_ref().unwrap_or(&Value::Null);
    let conflicts = conflicted(gw);
    let overlaps = super::overlap::overlapping(gw);
    let mut listeners = Vec::new();
    let mut programmed_any = false;
    let mut all_ok = true;
    for l in &gw.spec.listeners {
        let attached = facts
            .attached
            .get(&(key.clone(), l.name.clone()))
            .copied()
            .unwrap_or(0);
        let refs = facts.certs.get(&(key.clone(), l.name.clone())).copied();
        let v = listener(l, &conflicts, facts.refused, refs);
        programmed_any |= v.programmed;
        all_ok &= v.accepted.is_none();
        let before = current["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|x| x["name"] == l.name.as_str()));
        let kept = |ty: &str, status: &str| kept_time(before, ty, status);
        let mut conditions = vec![
            cond(
                "Accepted",
                v.accepted.unwrap_or("Accepted"),
                v.accepted.is_none(),
                generation,
                &kept,
            ),
            cond(
                "Programmed",
                if v.programmed {
                    "Programmed"
                } else {
                    "Invalid"
                },
                v.programmed,
                generation,
                &kept,
            ),
            cond(
                "ResolvedRefs",
                v.resolved.unwrap_or("ResolvedRefs"),
                v.resolved.is_none(),
                generation,
                &kept,
            ),
            cond(
                "Conflicted",
                if v.conflicted {
                    "HostnameConflict"
                } else {
                    "NoConflicts"
                },
                v.conflicted,
                generation,
                &kept,
            ),
        ];
        if overlaps.contains(&l.name.as_str()) {
            conditions.push(cond(
                "OverlappingTLSConfig",
                "OverlappingHostnames",
                true,
                generation,
                &kept,
            ));
        }
        listeners.push(json!({
            "name": l.name,
            "supportedKinds": v.kinds,
            // Attachment is by parentRefs and allowedRoutes alone, programmed or not (the spec;
            // conformance GatewayWithAttachedRoutes, an HTTPS listener without its Secret).
            "attachedRoutes": attached,
            "conditions": conditions,
        }));
    }
    let kept = |ty: &str, status: &str| kept_time(Some(current), ty, status);
    let accepted_reason = if all_ok {
        "Accepted"
    } else {
        "ListenersNotValid"
    };
    let conditions = [
        cond(
            "Accepted",
            accepted_reason,
            programmed_any || all_ok,
            generation,
            &kept,
        ),
        cond(
            "Programmed",
            if programmed_any {
                "Programmed"
            } else {
                "Invalid"
            },
            programmed_any,
            generation,
            &kept,
        ),
    ];
    let addresses: Vec<Value> = facts.addresses.iter().map(|a| address(a)).collect();
    let status =
        json!({ "conditions": conditions, "listeners": listeners, "addresses": addresses });
    (shape(&status) != shape(current)).then(|| json!({ "status": status }))
}

/// One listener's verdict.
struct ListenerVerdict {
    accepted: Option<&'static str>,
    programmed: bool,
    resolved: Option<&'static str>,
    conflicted: bool,
    kinds: Vec<Value>,
}

fn listener(
    l: &Listener,
    conflicts: &[&str],
    refused: &BTreeMap<u16, &'static str>,
    refs: Option<(Option<&'static str>, bool)>,
) -> ListenerVerdict {
    let conflicted = conflicts.contains(&l.name.as_str());
    let port = u16::try_from(l.port).unwrap_or(0);
    let passthrough = super::tls_routes::passthrough_listener(l);
    let accepted = if !super::listeners::served_protocol(l) && !passthrough {
        Some("UnsupportedProtocol")
    } else if port == 0 {
        Some("PortUnavailable")
    } else {
        refused.get(&port).copied()
    };
    let asked = l
        .allowed_routes
        .as_ref()
        .map(|a| a.kinds.as_slice())
        .unwrap_or_default();
    // The route kinds the listener serves (TLSRoute for TLS Passthrough).
    let route_kinds: &[&str] = if passthrough {
        &["TLSRoute"]
    } else {
        &["HTTPRoute", "GRPCRoute"]
    };
    let http_route = |k: &super::types::GroupKind| {
        route_kinds.contains(&k.kind.as_str()) && k.group.as_deref().unwrap_or(GROUP) == GROUP
    };
    let cert_problem = refs.and_then(|r| r.0);
    let resolved = cert_problem.or_else(|| {
        asked
            .iter()
            .any(|k| !http_route(k))
            .then_some("InvalidRouteKinds")
    });
    // An HTTPS listener without one usable certificate is not programmed.
    let has_cert = l.protocol != "HTTPS" || refs.is_some_and(|r| r.1);
    let served = super::listeners::served_protocol(l) || passthrough;
    let kinds = route_kinds
        .iter()
        .filter(|k| {
            served && (asked.is_empty() || asked.iter().any(|a| a.kind == **k && http_route(a)))
        })
        .map(|k| json!({ "group": GROUP, "kind": k }))
        .collect();
    ListenerVerdict {
        programmed: accepted.is_none() && !conflicted && has_cert,
        accepted,
        resolved,
        conflicted,
        kinds,
    }
}

/// A condition that is True when `ok`.
fn cond(
    ty: &str,
    reason: &str,
    ok: bool,
    generation: i64,
    kept: &dyn Fn(&str, &str) -> Option<Time>,
) -> Condition {
    let status = if ok { "True" } else { "False" };
    Condition {
        type_: ty.into(),
        status: status.into(),
        reason: reason.into(),
        message: reason.into(),
        observed_generation: Some(generation),
        last_transition_time: kept(ty, status)
            .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now())),
    }
}

/// The transition time of condition `ty` in `holder` if its status is `status`.
fn kept_time(holder: Option<&Value>, ty: &str, status: &str) -> Option<Time> {
    let c = holder?["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty && c["status"] == status)?;
    serde_json::from_value(c["lastTransitionTime"].clone()).ok()
}

/// A status address: an IP literal is `IPAddress`, anything else `Hostname`.
fn address(text: &str) -> Value {
    let ty = if text.parse::<std::net::IpAddr>().is_ok() {
        "IPAddress"
    } else {
        "Hostname"
    };
    json!({ "type": ty, "value": text })
}

/// What of a patch must differ for another write to be worth it (times left out).
pub fn fingerprint(body: &Value) -> Value {
    shape(&body["status"])
}

/// What must be equal for no write.
fn shape(status: &Value) -> Value {
    let conds = |v: &Value| -> Value {
        v["conditions"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| json!([c["type"], c["status"], c["reason"], c["observedGeneration"]]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let listeners: Vec<Value> = status["listeners"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    json!([
                        l["name"],
                        l["supportedKinds"],
                        l["attachedRoutes"],
                        conds(l)
                    ])
                })
                .collect()
        })
        .unwrap_or_default();
    json!([conds(status), listeners, status["addresses"]])
}

//! GatewayClass acceptance: a class whose `controllerName` is ours (`--gateway-class-controller`)
//! gets `Accepted: True` and the `supportedFeatures` we serve, written only when what is there
//! differs (condition status, reason, `observedGeneration`, the list of features, which an
//! upgrade may change without a generation bump), so the patch's own watch event ends the
//! writes. Classes of other controllers are never touched.

use super::types::GatewayClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use serde_json::{Value, json};

/// The Gateway API features Switchyard serves, named as the conformance suite names them
/// (sorted). Only what the end-to-end tests show: the core features `Gateway`, `HTTPRoute`,
/// `ReferenceGrant`, `GRPCRoute` and `TLSRoute` by every core test of the v1.4 suite, and each
/// extended one by the tests transcribing its upstream tests
/// (`tests/gateway_support/CONFORMANCE.md` maps each to ours).
pub(crate) const SUPPORTED_FEATURES: &[&str] = &[
    "BackendTLSPolicy",
    "BackendTLSPolicySANValidation",
    "GRPCRoute",
    "GRPCRouteNamedRouteRule",
    "Gateway",
    "GatewayHTTPListenerIsolation",
    "HTTPRoute",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendTimeout",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ReferenceGrant",
    "TLSRoute",
];

/// The status merge patch for `class`, or `None` when it is not ours or already up to date.
pub(crate) fn status_patch(class: &GatewayClass, controller: &str) -> Option<Value> {
    if class.spec.controller_name != controller {
        return None;
    }
    let generation = class.metadata.generation.unwrap_or(0);
    let current = class
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Accepted"));
    let claimed = class.status.as_ref().map(|s| &s.supported_features[..]);
    let same_features = claimed.is_some_and(|f| {
        f.len() == SUPPORTED_FEATURES.len()
            && f.iter().zip(SUPPORTED_FEATURES).all(|(a, b)| a.name == *b)
    });
    let up_to_date = same_features
        && current.is_some_and(|c| {
            c.status == "True"
                && c.reason == "Accepted"
                && c.observed_generation == Some(generation)
        });
    if up_to_date {
        return None;
    }
    let since = current
        .filter(|c| c.status == "True")
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| Time(k8s_openapi::jiff::Timestamp::now()));
    let accepted = Condition {
        type_: "Accepted".into(),
        status: "True".into(),
        reason: "Accepted".into(),
        message: "served by switchyard".into(),
        observed_generation: Some(generation),
        last_transition_time: since,
    };
    let features: Vec<Value> = SUPPORTED_FEATURES
        .iter()
        .map(|f| json!({ "name": f }))
        .collect();
    Some(json!({ "status": { "conditions": [accepted], "supportedFeatures": features } }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::gateway::types::{GatewayClassSpec, GatewayClassStatus};

    const OURS: &str = "switchyard.dev/gateway-controller";

    fn class(controller: &str, generation: i64) -> GatewayClass {
        let mut c = GatewayClass {
            spec: GatewayClassSpec {
                controller_name: controller.into(),
            },
            ..GatewayClass::default()
        };
        c.metadata.generation = Some(generation);
        c.metadata.resource_version = Some("1".into());
        c
    }

    /// `class` with the status our patch wrote.
    fn patched(mut c: GatewayClass) -> GatewayClass {
        let patch = status_patch(&c, OURS).unwrap_or_else(|| panic!("no patch"));
        let status: GatewayClassStatus = serde_json::from_value(patch["status"].clone())
            .unwrap_or_else(|e| panic!("status: {e}"));
        c.status = Some(status);
        c
    }

    /// A class accepted by an older version that claimed other features gets the list again
    /// (an upgrade changes `supportedFeatures` without a generation bump), the condition's
    /// transition time kept.
    #[test]
    fn other_features_are_written_again() {
        let mut c = patched(class(OURS, 1));
        let mut status = c.status.clone().unwrap_or_default();
        status.supported_features.truncate(2);
        c.status = Some(status);
        let patch = status_patch(&c, OURS).unwrap_or_default();
        let features = patch["status"]["supportedFeatures"].as_array().cloned();
        assert_eq!(features.unwrap_or_default().len(), SUPPORTED_FEATURES.len());
        assert_eq!(status_patch(&patched(c), OURS), None, "then left alone");
    }

    #[test]
    fn features_are_sorted_and_claim_the_core_ones() {
        assert!(SUPPORTED_FEATURES.windows(2).all(|w| w[0] < w[1]));
        for core in [
            "Gateway",
            "HTTPRoute",
            "ReferenceGrant",
            "GRPCRoute",
            "TLSRoute",
        ] {
            assert!(SUPPORTED_FEATURES.contains(&core), "{core}");
        }
    }

    #[test]
    fn other_controllers_classes_are_left_alone() {
        assert_eq!(status_patch(&class("example.net/other", 1), OURS), None);
    }

    #[test]
    fn ours_is_accepted_once_then_left_alone() {
        let c = class(OURS, 1);
        let patch = status_patch(&c, OURS).unwrap_or_default();
        let cond = &patch["status"]["conditions"][0];
        assert_eq!(cond["type"], "Accepted");
        assert_eq!(cond["status"], "True");
        assert_eq!(cond["reason"], "Accepted");
        assert_eq!(cond["observedGeneration"], 1);
        let features = patch["status"]["supportedFeatures"].as_array().cloned();
        assert_eq!(features.unwrap_or_default().len(), SUPPORTED_FEATURES.len());
        assert_eq!(status_patch(&patched(c), OURS), None, "no second write");
    }

    /// Conformance GatewayClassObservedGenerationBump: a spec change (new generation) is
    /// acknowledged with the new observedGeneration, the transition time kept.
    #[test]
    fn a_generation_bump_updates_observed_generation() {
        let mut c = patched(class(OURS, 1));
        let before = c.status.clone().unwrap_or_default().conditions[0]
            .last_transition_time
            .clone();
        c.metadata.generation = Some(2);
        let patch = status_patch(&c, OURS).unwrap_or_default();
        assert_eq!(patch["status"]["conditions"][0]["observedGeneration"], 2);
        assert_eq!(
            patch["status"]["conditions"][0]["lastTransitionTime"],
            serde_json::to_value(before).unwrap_or_default()
        );
    }
}

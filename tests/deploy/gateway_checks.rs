//! The Gateway API part of a deployment, on or off: the DaemonSet's flags, exactly the RBAC
//! rules the controller needs (read the kinds, patch their status), and the GatewayClasses
//! naming the controller the process serves.

use crate::gateway_api::{GatewayClassSpec, Object, strict};
use crate::gateway_rules::validate_class;
use crate::objects::{Objects, one};
use serde_json::Value;
use std::collections::BTreeSet;

const GROUP: &str = "gateway.networking.k8s.io";

/// The controller's default `--gateway-class-controller`, the chart's `gatewayAPI.controllerName`.
pub(crate) const CONTROLLER: &str = "switchyard.dev/gateway-controller";

/// (API group, resource, verb) for the Gateway API, and nothing else of its group.
fn needed() -> BTreeSet<(String, String, String)> {
    let read = [
        (GROUP, "gatewayclasses"),
        (GROUP, "gateways"),
        (GROUP, "httproutes"),
        (GROUP, "grpcroutes"),
        (GROUP, "tlsroutes"),
        (GROUP, "referencegrants"),
        (GROUP, "backendtlspolicies"),
        // allowedRoutes.namespaces.from: Selector reads the Namespaces' labels.
        ("", "namespaces"),
        // BackendTLSPolicy's caCertificateRefs.
        ("", "configmaps"),
    ];
    let status = [
        "gatewayclasses/status",
        "gateways/status",
        "httproutes/status",
        "grpcroutes/status",
        "tlsroutes/status",
        "backendtlspolicies/status",
    ];
    let reads = read.iter().flat_map(|(g, r)| {
        ["get", "list", "watch"].map(|v| (g.to_string(), r.to_string(), v.to_owned()))
    });
    let patches = status.map(|r| (GROUP.to_owned(), r.to_owned(), "patch".to_owned()));
    reads.chain(patches).collect()
}

/// Whether a rule belongs to the Gateway API part (its group, or the Namespaces and ConfigMaps
/// it reads).
pub(crate) fn is_gateway_rule(groups: &[String], resources: &[String]) -> bool {
    groups.iter().any(|g| g == GROUP)
        || resources
            .iter()
            .any(|r| r == "namespaces" || r == "configmaps")
}

/// With `controller` Some, the Gateway API is served for that controller name; None: off.
pub(crate) fn check_gateway(objects: &Objects, controller: Option<&str>) {
    let origin = objects.origin.as_str();
    let ds = one(&objects.daemon_sets, "DaemonSet", origin);
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = pod
        .containers
        .iter()
        .find(|c| c.name == "switchyard")
        .unwrap();
    let args = c.args.as_deref().unwrap_or_default();
    let flag = args.iter().position(|a| a == "--gateway-class-controller");
    let served = flag.and_then(|i| args.get(i + 1)).map(String::as_str);
    assert_eq!(served, controller, "{origin}: --gateway-class-controller");
    assert_eq!(
        args.iter().any(|a| a == "--gateway-api"),
        controller.is_some(),
        "{origin}: --gateway-api"
    );

    let role = one(&objects.cluster_roles, "ClusterRole", origin);
    let mut granted = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        if !is_gateway_rule(groups, resources) {
            continue;
        }
        for g in groups {
            for r in resources {
                for v in &rule.verbs {
                    granted.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    let want = if controller.is_some() {
        needed()
    } else {
        BTreeSet::new()
    };
    assert_eq!(
        granted, want,
        "{origin}: the ClusterRole's Gateway API rules"
    );

    for doc in &objects.gateway_classes {
        check_class(
            doc,
            origin,
            controller.unwrap_or("(none: the Gateway API is off)"),
        );
    }
}

/// A valid GatewayClass naming `controller`.
pub(crate) fn check_class(doc: &Value, origin: &str, controller: &str) {
    let class: Object<GatewayClassSpec> = strict(doc, origin);
    assert_eq!(class.kind, "GatewayClass");
    validate_class(&class, origin);
    assert_eq!(
        class.spec.controller_name, controller,
        "{origin}: GatewayClass {} names another controller",
        class.metadata.name
    );
}

//! The core conformance tests of the Gateway API `HTTPRoute` feature about backends, through
//! the fake API server and the real binary: HTTPRouteServiceTypes, HTTPRouteWeight (its
//! distribution; `tests/gateway_api_routes.rs` has the 0 weight) and HTTPRouteNoBackendRefs.
//! Facts from the upstream suite (`conformance/tests/`), names shortened as in
//! `tests/gateway_api_core_routes.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::{READY, service, slice};
use gateway_support::conformance::{gateway, http, ports, route_to, rule_to, start};
use serde_json::{Value, json};

const RESOLVED: (&str, &str) = ("True", "ResolvedRefs");

/// A parentRef to Gateway `infra/name`.
fn parent(name: &str) -> Value {
    json!([{"name": name, "namespace": "infra"}])
}

/// A rule matching path `ty` `value` to Service `infra/to`.
fn path_rule(ty: &str, value: &str, to: &str) -> Value {
    let mut r = rule_to(None, to);
    r["matches"] = json!([{"path": {"type": ty, "value": value}}]);
    r
}

/// A Service `infra/name` that is headless (`clusterIP: None`) or not, and whether it has a
/// selector (its slices made by the control plane) or none (slices written by hand, or
/// mirrored from hand-written Endpoints: the same EndpointSlice shape reaches us).
fn typed_service(name: &str, headless: bool) -> Value {
    let mut s = serde_json::to_value(service("infra", name)).unwrap();
    if headless {
        s["spec"]["clusterIP"] = json!("None");
    }
    s
}

/// Conformance HTTPRouteServiceTypes: `/headless`, `/manual-endpoints`,
/// `/headless-manual-endpoints`, `/manual-endpointslices` and
/// `/headless-manual-endpointslices` each reach infra-backend-v1 through a Service of that
/// type. (Upstream writes `Endpoints` for two of them and lets the API server mirror them into
/// EndpointSlices; we read EndpointSlices, so those are given as the mirrored slices.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_type_is_a_backend() {
    let [port] = ports();
    let backend = fake_kube::harness::http_backend("infra-backend-v1").await;
    let names = [
        ("headless", true),
        ("manual-endpoints", false),
        ("headless-manual-endpoints", true),
        ("manual-endpointslices", false),
        ("headless-manual-endpointslices", true),
    ];
    let mut objects = vec![gateway(
        "same-namespace",
        json!([http("http", port, "Same")]),
    )];
    let mut rules = Vec::new();
    for (name, headless) in names {
        objects.push(typed_service(name, headless));
        let s = slice("infra", name, &format!("{name}-x"), backend, READY);
        objects.push(serde_json::to_value(s).unwrap());
        rules.push(path_rule("PathPrefix", &format!("/{name}"), name));
    }
    objects.push(route_to(
        "infra",
        "service-types",
        parent("same-namespace"),
        json!(rules),
    ));
    let c = start(&objects).await;
    c.route_is(
        "infra",
        "service-types",
        "same-namespace",
        "ResolvedRefs",
        RESOLVED,
    )
    .await;
    for (name, _) in names {
        c.expect(
            port,
            "any.example",
            &format!("/{name}"),
            200,
            "infra-backend-v1",
        )
        .await;
    }
}

/// Conformance HTTPRouteWeight: backendRefs infra-backend-v1 weight 70, v2 weight 30, v3
/// weight 0; of 500 requests each backend gets its share within 5 points, v3 none (upstream
/// tries the 500 up to 10 times; we allow as many).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_split_the_requests() {
    let [port] = ports();
    let w = |name: &str, weight: u32| json!({"name": name, "port": 80, "weight": weight});
    let rules = json!([{"backendRefs": [w("infra-backend-v1", 70), w("infra-backend-v2", 30),
        w("infra-backend-v3", 0)]}]);
    let c = start(&[
        gateway("same-namespace", json!([http("http", port, "Same")])),
        route_to(
            "infra",
            "weighted-backends",
            parent("same-namespace"),
            rules,
        ),
    ])
    .await;
    c.expect(port, "any.example", "/", 200, "").await;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port.port()));
    let mut last = std::collections::HashMap::new();
    for _ in 0..10 {
        let mut seen: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
        for _ in 0..500 {
            let (status, body) = gateway_support::get(addr, "any.example", "/", "")
                .await
                .unwrap();
            assert_eq!(status, 200);
            *seen.entry(body).or_default() += 1.0;
        }
        let share = |b: &str| seen.get(b).copied().unwrap_or(0.0) / 500.0;
        let within = |b: &str, want: f64| (share(b) - want).abs() <= 0.05;
        if seen.len() == 2 && within("infra-backend-v1", 0.7) && within("infra-backend-v2", 0.3) {
            return;
        }
        last = seen;
    }
    panic!("no run within tolerance; the last: {last:?}");
}

/// Conformance HTTPRouteNoBackendRefs: of one route's rules, `/forward` reaches
/// infra-backend-v1, `/omitted-no-forward` (no backendRefs) and `/empty-no-forward` (an empty
/// list) answer 500; the route is accepted with its refs resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_without_backends_answer_500() {
    let [port] = ports();
    let only = |path: &str| json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}]});
    let mut empty = only("/empty-no-forward");
    empty["backendRefs"] = json!([]);
    let rules = json!([
        path_rule("PathPrefix", "/forward", "infra-backend-v1"),
        only("/omitted-no-forward"),
        empty
    ]);
    let c = start(&[
        gateway("same-namespace", json!([http("http", port, "Same")])),
        route_to(
            "infra",
            "omitted-backendrefs",
            parent("same-namespace"),
            rules,
        ),
    ])
    .await;
    let route = ("infra", "omitted-backendrefs", "same-namespace");
    c.route_is(route.0, route.1, route.2, "Accepted", ("True", "Accepted"))
        .await;
    c.route_is(route.0, route.1, route.2, "ResolvedRefs", RESOLVED)
        .await;
    c.expect(port, "any.example", "/forward", 200, "infra-backend-v1")
        .await;
    c.expect(port, "any.example", "/omitted-no-forward", 500, "")
        .await;
    c.expect(port, "any.example", "/empty-no-forward", 500, "")
        .await;
}

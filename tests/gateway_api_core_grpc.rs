//! The core conformance tests of the Gateway API `GRPCRoute` feature that
//! `tests/gateway_api_grpc.rs` does not transcribe, through the fake API server and the real
//! binary: GRPCRouteListenerHostnameMatching, GRPCRouteWeight,
//! GRPCRouteAllBackendsWeightZero and GRPCRouteMultipleGateways. gRPC-shaped requests over h2c
//! with prior knowledge; a 404 is what a gRPC client reads as `UNIMPLEMENTED`. Facts from the
//! upstream suite (`conformance/tests/`), names shortened as in `tests/gateway_api_core.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use fake_kube::objects::{READY, service, slice};
use gateway_support::GW;
use gateway_support::conformance::{Conf, gateway, ports, route_parent, start};
use gateway_support::grpc::{call, h2c_backend};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const ECHO: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/Echo";

/// Services `infra/grpc-infra-backend-v1..v3` on h2c backends answering their names.
async fn grpc_backends() -> Vec<Value> {
    let mut out = Vec::new();
    for name in [
        "grpc-infra-backend-v1",
        "grpc-infra-backend-v2",
        "grpc-infra-backend-v3",
    ] {
        let port = h2c_backend(name).await;
        out.push(serde_json::to_value(service("infra", name)).unwrap());
        let s = slice("infra", name, &format!("{name}-a"), port, READY);
        out.push(serde_json::to_value(s).unwrap());
    }
    out
}

/// A GRPCRoute `infra/name` to Gateway `infra/gw` listeners `sections` (none: the whole
/// Gateway) with `backendRefs`.
fn grpc_route(name: &str, gw: &str, sections: &[&str], refs: Value) -> Value {
    let parents: Vec<Value> = if sections.is_empty() {
        vec![json!({"name": gw})]
    } else {
        let p = |s: &&str| json!({"name": gw, "sectionName": s});
        sections.iter().map(p).collect()
    };
    json!({"apiVersion": GW, "kind": "GRPCRoute",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"parentRefs": parents, "rules": [{"backendRefs": refs}]}})
}

fn to(name: &str, weight: u32) -> Value {
    json!({"name": name, "port": 80, "weight": weight})
}

/// Waits until GRPCRoute `infra/name` is accepted by Gateway `gw`.
async fn accepted(c: &Conf, name: &str, gw: &str) {
    c.until(
        &format!("{name} accepted"),
        || {
            let p = route_parent(&c.fake, "GRPCRoute", "infra", name, gw);
            let cs = p["conditions"].as_array().cloned().unwrap_or_default();
            cs.iter()
                .any(|c| c["type"] == "Accepted" && c["status"] == "True")
        },
        || route_parent(&c.fake, "GRPCRoute", "infra", name, gw),
    )
    .await;
}

/// Waits until a call with `authority` answers `status` (and `body`, if any).
async fn answers(c: &Conf, addr: SocketAddr, authority: &str, status: u16, body: &str) {
    let ok = poll(Duration::from_secs(10), || async {
        call(addr, authority, ECHO, None)
            .await
            .is_some_and(|r| r.0 == status && (body.is_empty() || r.1 == body))
    })
    .await;
    let got = call(addr, authority, ECHO, None).await;
    assert!(
        ok,
        "{authority}: want {status} {body:?}, got {got:?}; log:\n{}",
        c.proxy.log()
    );
}

/// Conformance GRPCRouteListenerHostnameMatching: listeners `bar.com`, `foo.bar.com`,
/// `*.bar.com` and `*.foo.com` on one port; routes to v1 on the first, v2 on the second, v3 on
/// the last two. `foo.com` and `no.matching.host` are UNIMPLEMENTED (404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_listener_hostnames() {
    let [port] = ports();
    let l = |name: &str, host: &str| json!({"name": name, "protocol": "HTTP", "port": port.port(), "hostname": host});
    let mut objects = grpc_backends().await;
    let gw = "grpcroute-listener-hostname-matching";
    objects.push(gateway(
        gw,
        json!([
            l("listener-1", "bar.com"),
            l("listener-2", "foo.bar.com"),
            l("listener-3", "*.bar.com"),
            l("listener-4", "*.foo.com")
        ]),
    ));
    let v = |n: &str| json!([to(&format!("grpc-infra-backend-{n}"), 1)]);
    objects.push(grpc_route("backend-v1", gw, &["listener-1"], v("v1")));
    objects.push(grpc_route("backend-v2", gw, &["listener-2"], v("v2")));
    objects.push(grpc_route(
        "backend-v3",
        gw,
        &["listener-3", "listener-4"],
        v("v3"),
    ));
    let c = start(&objects).await;
    for r in ["backend-v1", "backend-v2", "backend-v3"] {
        accepted(&c, r, gw).await;
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    for (authority, backend) in [
        ("bar.com", "grpc-infra-backend-v1"),
        ("foo.bar.com", "grpc-infra-backend-v2"),
        ("baz.bar.com", "grpc-infra-backend-v3"),
        ("boo.bar.com", "grpc-infra-backend-v3"),
        ("multiple.prefixes.bar.com", "grpc-infra-backend-v3"),
        ("multiple.prefixes.foo.com", "grpc-infra-backend-v3"),
    ] {
        answers(&c, addr, authority, 200, backend).await;
    }
    answers(&c, addr, "foo.com", 404, "").await;
    answers(&c, addr, "no.matching.host", 404, "").await;
}

/// Conformance GRPCRouteWeight: backendRefs v1 weight 70, v2 30, v3 0; of 500 calls each
/// backend gets its share within 5 points, v3 none (up to 10 runs, as upstream).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_weights() {
    let [port] = ports();
    let mut objects = grpc_backends().await;
    let listener = json!({"name": "http", "protocol": "HTTP", "port": port.port()});
    objects.push(gateway("same-namespace", json!([listener])));
    let refs = json!([
        to("grpc-infra-backend-v1", 70),
        to("grpc-infra-backend-v2", 30),
        to("grpc-infra-backend-v3", 0)
    ]);
    objects.push(grpc_route("weighted-backends", "same-namespace", &[], refs));
    let c = start(&objects).await;
    accepted(&c, "weighted-backends", "same-namespace").await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    answers(&c, addr, "any.example", 200, "").await;
    let mut last = std::collections::HashMap::new();
    for _ in 0..10 {
        let mut seen: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
        for _ in 0..500 {
            let (status, body, _, _) = call(addr, "any.example", ECHO, None).await.unwrap();
            assert_eq!(status, 200);
            *seen.entry(body).or_default() += 1.0;
        }
        let share = |b: &str| seen.get(b).copied().unwrap_or(0.0) / 500.0;
        let within = |b: &str, want: f64| (share(b) - want).abs() <= 0.05;
        if seen.len() == 2
            && within("grpc-infra-backend-v1", 0.7)
            && within("grpc-infra-backend-v2", 0.3)
        {
            return;
        }
        last = seen;
    }
    panic!("no run within tolerance; the last: {last:?}");
}

/// Conformance GRPCRouteAllBackendsWeightZero: every weight 0 answers UNAVAILABLE (HTTP 503,
/// as a gRPC client maps it; a plain HTTP request there keeps its 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_all_weights_zero() {
    let [port] = ports();
    let mut objects = grpc_backends().await;
    let listener = json!({"name": "http", "protocol": "HTTP", "port": port.port()});
    objects.push(gateway("same-namespace", json!([listener])));
    let refs = json!([
        to("grpc-infra-backend-v1", 0),
        to("grpc-infra-backend-v2", 0),
        to("grpc-infra-backend-v3", 0)
    ]);
    objects.push(grpc_route(
        "all-backends-weight-zero",
        "same-namespace",
        &[],
        refs,
    ));
    let c = start(&objects).await;
    accepted(&c, "all-backends-weight-zero", "same-namespace").await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    answers(&c, addr, "any.example", 503, "").await;
    c.expect(port, "any.example", ECHO, 500, "").await;
}

/// A GRPCRoute `infra/name` on Gateways `gws` matching `method` of the echo service.
fn method_route(name: &str, gws: &[&str], method: &str, to_name: &str) -> Value {
    let parents: Vec<Value> = gws.iter().map(|g| json!({"name": g})).collect();
    json!({"apiVersion": GW, "kind": "GRPCRoute",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"parentRefs": parents, "rules": [{
            "matches": [{"method": {"service": "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho",
                                    "method": method}}],
            "backendRefs": [to(to_name, 1)]}]}})
}

/// Conformance GRPCRouteMultipleGateways: a route attached to Gateways `same-namespace` and
/// `all-namespaces` (Echo → v1) is served on both; each Gateway's dedicated route (EchoTwo →
/// v2, v3) only on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_route_on_two_gateways() {
    let [same, all] = ports();
    let mut objects = grpc_backends().await;
    let l = |port: SocketAddr, from: &str| {
        json!([{"name": "http", "protocol": "HTTP", "port": port.port(),
                "allowedRoutes": {"namespaces": {"from": from}}}])
    };
    objects.push(gateway("same-namespace", l(same, "Same")));
    objects.push(gateway("all-namespaces", l(all, "All")));
    let both = ["same-namespace", "all-namespaces"];
    objects.push(method_route(
        "multiple-gateways-shared-route",
        &both,
        "Echo",
        "grpc-infra-backend-v1",
    ));
    objects.push(method_route(
        "same-namespace-dedicated-route",
        &["same-namespace"],
        "EchoTwo",
        "grpc-infra-backend-v2",
    ));
    objects.push(method_route(
        "all-namespaces-dedicated-route",
        &["all-namespaces"],
        "EchoTwo",
        "grpc-infra-backend-v3",
    ));
    let c = start(&objects).await;
    for gw in both {
        accepted(&c, "multiple-gateways-shared-route", gw).await;
    }
    accepted(&c, "same-namespace-dedicated-route", "same-namespace").await;
    accepted(&c, "all-namespaces-dedicated-route", "all-namespaces").await;
    let two = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho/EchoTwo";
    for (port, dedicated) in [
        (same, "grpc-infra-backend-v2"),
        (all, "grpc-infra-backend-v3"),
    ] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
        answers(&c, addr, "any.example", 200, "grpc-infra-backend-v1").await;
        let ok = poll(Duration::from_secs(10), || async {
            call(addr, "any.example", two, None)
                .await
                .is_some_and(|r| r.0 == 200 && r.1 == dedicated)
        })
        .await;
        assert!(ok, "EchoTwo on {port}: want {dedicated}");
    }
}

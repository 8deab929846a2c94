//! GRPCRoute (v1) through the fake API server and the real binary: gRPC-shaped requests over
//! HTTP/2 (h2c to the proxy) routed by service and method (conformance
//! GRPCExactMethodMatching), headers (GRPCRouteHeaderMatching), a regex method match with a
//! header filter, to backends spoken to over h2c; route status reasons and the listener's
//! `supportedKinds`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, free_ports, poll};
use fake_kube::objects::{READY, service, slice};
use gateway_support::grpc::{call, h2c_backend};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const GW: &str = "gateway.networking.k8s.io/v1";

fn grpc_route(name: &str, rules: Value) -> Value {
    json!({"apiVersion": GW, "kind": "GRPCRoute",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": rules}})
}

fn condition(fake: &FakeKube, name: &str, ty: &str) -> Option<(String, String)> {
    let r = fake.get("GRPCRoute", "infra", name)?;
    let c = r["status"]["parents"][0]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?
        .clone();
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
}

async fn condition_is(fake: &FakeKube, proxy: &Proxy, name: &str, ty: &str, want: (&str, &str)) {
    let want = Some((want.0.to_owned(), want.1.to_owned()));
    let ok = poll(Duration::from_secs(10), || async {
        condition(fake, name, ty) == want
    })
    .await;
    let got = condition(fake, name, ty);
    assert!(
        ok,
        "{name} {ty}: want {want:?}, got {got:?}; log:\n{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_routes_match_service_method_and_headers_to_h2c_backends() {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}));
    let [port] = free_ports();
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [{"name": "http",
            "protocol": "HTTP", "port": port.port()}]}}));
    for name in ["g1", "g2"] {
        let backend = h2c_backend(name).await;
        fake.apply(&service("infra", name));
        fake.apply(&slice("infra", name, &format!("{name}-a"), backend, READY));
    }
    let get = json!({"service": "pkg.Svc", "method": "Get"});
    fake.apply(&grpc_route(
        "rpc",
        json!([
            {"matches": [{"method": get}], "backendRefs": [{"name": "g1", "port": 80}]},
            {"matches": [{"method": get, "headers": [{"name": "x-canary", "value": "yes"}]}],
             "backendRefs": [{"name": "g2", "port": 80}]},
            {"matches": [{"method": {"type": "RegularExpression", "service": "other\\..+"}}],
             "filters": [{"type": "RequestHeaderModifier",
                "requestHeaderModifier": {"add": [{"name": "x-added", "value": "1"}]}}],
             "backendRefs": [{"name": "g2", "port": 80}]},
        ]),
    ));
    let g3 = h2c_backend("g3").await;
    fake.apply(&service("apps", "g3"));
    fake.apply(&slice("apps", "g3", "g3-a", g3, READY));
    fake.apply(&grpc_route(
        "cross",
        json!([{"matches": [{"method": {"service": "cross.Svc"}}],
            "backendRefs": [{"name": "g3", "namespace": "apps", "port": 80}]}]),
    ));
    let mut hosted = grpc_route(
        "hosted",
        json!([{"matches": [{"method": {"service": "host.Svc"}}],
            "backendRefs": [{"name": "g2", "port": 80}]}]),
    );
    hosted["spec"]["hostnames"] = json!(["a.grpc.test"]);
    fake.apply(&hosted);
    fake.apply(&grpc_route(
        "gone",
        json!([{"matches": [{"method": {"service": "gone.Svc"}}],
        "backendRefs": [{"name": "missing", "port": 80}]}]),
    ));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    condition_is(&fake, &proxy, "rpc", "Accepted", ("True", "Accepted")).await;
    condition_is(
        &fake,
        &proxy,
        "rpc",
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
    let served = poll(Duration::from_secs(10), || async {
        call(addr, "grpc.test", "/pkg.Svc/Get", None)
            .await
            .is_some_and(|r| r.0 == 200)
    })
    .await;
    assert!(
        served,
        "{:?}; log:\n{}",
        call(addr, "grpc.test", "/pkg.Svc/Get", None).await,
        proxy.log()
    );
    let h2 = "HTTP/2.0".to_owned();
    let ok = |body: &str, added: &str| Some((200, body.to_owned(), h2.clone(), added.to_owned()));
    assert_eq!(
        call(addr, "grpc.test", "/pkg.Svc/Get", None).await,
        ok("g1", "")
    );
    assert_eq!(
        call(addr, "grpc.test", "/pkg.Svc/Get", Some(("x-canary", "yes"))).await,
        ok("g2", "")
    );
    assert_eq!(
        call(addr, "grpc.test", "/pkg.Svc/Get", Some(("x-canary", "no"))).await,
        ok("g1", "")
    );
    assert_eq!(
        call(addr, "grpc.test", "/other.Thing/Do", None).await,
        ok("g2", "1")
    );
    let status = |r: Option<(u16, String, String, String)>| r.map(|r| r.0);
    assert_eq!(
        status(call(addr, "grpc.test", "/pkg.Svc/Put", None).await),
        Some(404)
    );
    assert_eq!(
        status(call(addr, "grpc.test", "/pkg.Svc2/Get", None).await),
        Some(404)
    );
    // A backend that cannot be used: UNAVAILABLE, as GRPCRoute's backendRefs ask (503).
    assert_eq!(
        status(call(addr, "grpc.test", "/gone.Svc/Get", None).await),
        Some(503)
    );
    // The route's hostnames: another authority does not match.
    let hosted = call(addr, "a.grpc.test", "/host.Svc/Get", None).await;
    assert_eq!(hosted, ok("g2", ""));
    let other = call(addr, "grpc.test", "/host.Svc/Get", None).await;
    assert_eq!(status(other), Some(404));
    condition_is(
        &fake,
        &proxy,
        "gone",
        "ResolvedRefs",
        ("False", "BackendNotFound"),
    )
    .await;
    // Across namespaces only with a ReferenceGrant from GRPCRoutes (one from HTTPRoutes is
    // not enough).
    let refused = ("False", "RefNotPermitted");
    condition_is(&fake, &proxy, "cross", "ResolvedRefs", refused).await;
    let grant = |kind: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
            "metadata": {"name": "g", "namespace": "apps"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": kind,
                "namespace": "infra"}], "to": [{"group": "", "kind": "Service"}]}})
    };
    fake.apply(&grant("HTTPRoute"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    condition_is(&fake, &proxy, "cross", "ResolvedRefs", refused).await;
    fake.apply(&grant("GRPCRoute"));
    let resolved = ("True", "ResolvedRefs");
    condition_is(&fake, &proxy, "cross", "ResolvedRefs", resolved).await;
    // The status is written as the routes are built; the data plane applies them a moment
    // later, so the first request may still meet the old table.
    let served = poll(Duration::from_secs(5), || async {
        call(addr, "grpc.test", "/cross.Svc/Do", None).await == ok("g3", "")
    })
    .await;
    let cross = call(addr, "grpc.test", "/cross.Svc/Do", None).await;
    assert!(served, "{cross:?}");
    assert_eq!(cross, ok("g3", ""));
    let gw = fake.get("Gateway", "infra", "gw").unwrap();
    let kinds = &gw["status"]["listeners"][0]["supportedKinds"];
    assert_eq!(
        *kinds,
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"},
            {"group": "gateway.networking.k8s.io", "kind": "GRPCRoute"}])
    );
}

/// A listener whose `allowedRoutes.kinds` is HTTPRoute only refuses GRPCRoutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_for_http_routes_only_refuses_grpc_routes() {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}));
    let [port] = free_ports();
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [{"name": "http",
            "protocol": "HTTP", "port": port.port(),
            "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}]}}]}}));
    fake.apply(&service("infra", "g1"));
    fake.apply(&grpc_route(
        "rpc",
        json!([{"backendRefs": [{"name": "g1", "port": 80}]}]),
    ));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    let refused = ("False", "NotAllowedByListeners");
    condition_is(&fake, &proxy, "rpc", "Accepted", refused).await;
}

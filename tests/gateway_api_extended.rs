//! Extended conformance tests of the Gateway API `HTTPRoute` feature through the fake API
//! server and the real binary: HTTPRouteTimeoutBackendRequest (feature HTTPRouteBackendTimeout),
//! HTTPRouteRedirectPort (HTTPRoutePortRedirect), and HTTPRouteListenerPortMatching,
//! HTTPRouteInvalidParentRefNotMatchingListenerPort and
//! HTTPRouteInvalidParentRefSectionNameNotMatchingPort (HTTPRouteParentRefPort), HTTPRouteNamedRule
//! (HTTPRouteNamedRouteRule) and GRPCRouteNamedRule (GRPCRouteNamedRouteRule). Facts from the
//! upstream suite (`conformance/tests/`), names shortened as in `tests/gateway_api_core.rs`,
//! each listener on a free port (a parentRef's `port` names that port).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use fake_kube::objects::{READY, service, slice};
use gateway_support::GW;
use gateway_support::conformance::{
    Conf, gateway, http, ports, route_parent, route_to, start, to_gateway,
};
use gateway_support::grpc::{call, h2c_backend};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A backend answering `slow <path>` after the `delay=<n>s` of its query (none: at once).
async fn slow_backend() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let query = req.uri().query().unwrap_or_default().to_owned();
                        let secs = query
                            .strip_prefix("delay=")
                            .and_then(|d| d.strip_suffix('s'))
                            .and_then(|d| d.parse().ok())
                            .unwrap_or(0);
                        let body = format!("slow {}", req.uri().path());
                        async move {
                            tokio::time::sleep(Duration::from_secs(secs)).await;
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(body)),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// GET `target` with `host` on 127.0.0.1:`addr.port()`: the whole response as text.
async fn raw(addr: SocketAddr, host: &str, target: &str) -> String {
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    };
    let out = tokio::time::timeout(Duration::from_secs(5), fut).await;
    out.ok().flatten().unwrap_or_default()
}

/// A rule for paths under `prefix` to Service `to`, with `extra` fields merged in.
fn prefix_rule(prefix: &str, to: &str, extra: Value) -> Value {
    let mut r = json!({"matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
        "backendRefs": [{"name": to, "port": 80}]});
    if let Value::Object(fields) = extra {
        for (k, v) in fields {
            r[k] = v;
        }
    }
    r
}

/// Conformance HTTPRouteTimeoutBackendRequest: `/backend-timeout` (backendRequest `500ms`)
/// answers 200 at once and 504 when the backend takes 1 s; `/disabled-backend-timeout`
/// (backendRequest `0s`: none) waits for the backend and answers 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_request_timeout_answers_504() {
    let [p] = ports();
    let backend = slow_backend().await;
    let rules = json!([
        prefix_rule(
            "/backend-timeout",
            "slow",
            json!({"timeouts": {"backendRequest": "500ms"}})
        ),
        prefix_rule(
            "/disabled-backend-timeout",
            "slow",
            json!({"timeouts": {"backendRequest": "0s"}})
        ),
    ]);
    let c = start(&[
        serde_json::to_value(service("infra", "slow")).unwrap(),
        serde_json::to_value(slice("infra", "slow", "slow-a", backend, READY)).unwrap(),
        gateway("same-namespace", json!([http("http", p, "Same")])),
        route_to(
            "infra",
            "backend-request-timeout",
            to_gateway("same-namespace", None),
            rules,
        ),
    ])
    .await;
    c.expect(
        p,
        "t.example",
        "/backend-timeout",
        200,
        "slow /backend-timeout",
    )
    .await;
    let out = raw(p, "t.example", "/backend-timeout?delay=1s").await;
    assert!(out.starts_with("HTTP/1.1 504 "), "{out}");
    let out = raw(p, "t.example", "/disabled-backend-timeout?delay=1s").await;
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.ends_with("slow /disabled-backend-timeout"), "{out}");
}

/// Waits until `target` answers `status` with `location` (lower-cased header line).
async fn redirects_to(c: &Conf, p: SocketAddr, target: &str, status: u16, location: &str) {
    let want = (
        format!("HTTP/1.1 {status} "),
        format!("location: {location}\r\n"),
    );
    let ok = poll(Duration::from_secs(10), || async {
        let out = raw(p, "r.example", target).await.to_ascii_lowercase();
        out.starts_with(&want.0.to_ascii_lowercase()) && out.contains(&want.1)
    })
    .await;
    let last = raw(p, "r.example", target).await;
    assert!(
        ok,
        "{target}: want {want:?}, got {last}; log:\n{}",
        c.proxy.log()
    );
}

/// Conformance HTTPRouteRedirectPort: a RequestRedirect with `port: 8083` answers 302 to the
/// same host at port 8083; with `hostname: example.org` too, to `example.org:8083`; with
/// `statusCode: 301`, a 301.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_redirects() {
    let [p] = ports();
    let redirect = |path: &str, redirect: Value| {
        json!({"matches": [{"path": {"type": "PathPrefix", "value": path}}],
               "filters": [{"type": "RequestRedirect", "requestRedirect": redirect}]})
    };
    let rules = json!([
        redirect("/port", json!({"port": 8083})),
        redirect(
            "/port-and-host",
            json!({"hostname": "example.org", "port": 8083})
        ),
        redirect("/port-and-status", json!({"port": 8083, "statusCode": 301})),
        redirect(
            "/port-and-host-and-status",
            json!({"hostname": "example.org", "port": 8083, "statusCode": 302})
        ),
    ]);
    let c = start(&[
        gateway("same-namespace", json!([http("http", p, "Same")])),
        route_to(
            "infra",
            "redirect-port",
            to_gateway("same-namespace", None),
            rules,
        ),
    ])
    .await;
    redirects_to(&c, p, "/port", 302, "http://r.example:8083/port").await;
    let to_org = "http://example.org:8083/port-and-host";
    redirects_to(&c, p, "/port-and-host", 302, to_org).await;
    let status = "http://r.example:8083/port-and-status";
    redirects_to(&c, p, "/port-and-status", 301, status).await;
    let all = "http://example.org:8083/port-and-host-and-status";
    redirects_to(&c, p, "/port-and-host-and-status", 302, all).await;
}

/// A parentRef to Gateway `infra/name` narrowed by `port` (and `section`).
fn to_port(name: &str, port: SocketAddr, section: Option<&str>) -> Value {
    let mut refs = to_gateway(name, section);
    refs[0]["port"] = json!(port.port());
    refs
}

/// Conformance HTTPRouteListenerPortMatching: listener-1 on port A (no hostname), listener-2
/// (`foo.com`) and listener-3 (`bar.com`) on port B, listener-4 (`foo.com`) on port C; a route
/// per port, parentRef `port` only: `foo.com` on A reaches infra-backend-v1, `foo.com` and
/// `bar.com` on B infra-backend-v2, `foo.com` on C infra-backend-v3, `bar.com` on C is 404.
/// Conformance HTTPRouteInvalidParentRefNotMatchingListenerPort (a `port` no listener has) and
/// HTTPRouteInvalidParentRefSectionNameNotMatchingPort (`sectionName` listener-1 with port B):
/// `Accepted: False, NoMatchingParent`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_ref_ports_pick_the_listeners() {
    let [a, b, c_port, unused] = ports();
    let l = |name: &str, port: SocketAddr, host: Option<&str>| {
        let mut l = http(name, port, "Same");
        if let Some(h) = host {
            l["hostname"] = json!(h);
        }
        l
    };
    let gw = "httproute-listener-port-matching";
    let listeners = json!([
        l("listener-1", a, None),
        l("listener-2", b, Some("foo.com")),
        l("listener-3", b, Some("bar.com")),
        l("listener-4", c_port, Some("foo.com")),
    ]);
    let to = |svc: &str| json!([{"backendRefs": [{"name": svc, "port": 80}]}]);
    let c = start(&[
        gateway(gw, listeners),
        route_to(
            "infra",
            "backend-v1",
            to_port(gw, a, None),
            to("infra-backend-v1"),
        ),
        route_to(
            "infra",
            "backend-v2",
            to_port(gw, b, None),
            to("infra-backend-v2"),
        ),
        route_to(
            "infra",
            "backend-v3",
            to_port(gw, c_port, None),
            to("infra-backend-v3"),
        ),
        route_to(
            "infra",
            "not-matching-port",
            to_port(gw, unused, None),
            to("infra-backend-v1"),
        ),
        route_to(
            "infra",
            "section-not-matching-port",
            to_port(gw, b, Some("listener-1")),
            to("infra-backend-v1"),
        ),
    ])
    .await;
    c.expect(a, "foo.com", "/", 200, "infra-backend-v1").await;
    c.expect(b, "foo.com", "/", 200, "infra-backend-v2").await;
    c.expect(b, "bar.com", "/", 200, "infra-backend-v2").await;
    c.expect(c_port, "foo.com", "/", 200, "infra-backend-v3")
        .await;
    c.expect(c_port, "bar.com", "/", 404, "").await;
    for name in ["not-matching-port", "section-not-matching-port"] {
        c.route_is("infra", name, gw, "Accepted", ("False", "NoMatchingParent"))
            .await;
    }
    for name in ["backend-v1", "backend-v2", "backend-v3"] {
        c.route_is("infra", name, gw, "Accepted", ("True", "Accepted"))
            .await;
    }
}

/// Conformance HTTPRouteNamedRule: rules with a `name` (`named-rule`) and without one are
/// served alike (`/named` → infra-backend-v1, `/unnamed` → infra-backend-v2) and the route is
/// accepted with its refs resolved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_http_route_rules_are_served() {
    let [p] = ports();
    let named = prefix_rule("/named", "infra-backend-v1", json!({"name": "named-rule"}));
    let rules = json!([
        named,
        prefix_rule("/unnamed", "infra-backend-v2", json!({}))
    ]);
    let gw = "same-namespace";
    let c = start(&[
        gateway(gw, json!([http("http", p, "Same")])),
        route_to("infra", "named-rule", to_gateway(gw, None), rules),
    ])
    .await;
    c.expect(p, "n.example", "/named", 200, "infra-backend-v1")
        .await;
    c.expect(p, "n.example", "/unnamed", 200, "infra-backend-v2")
        .await;
    c.route_is("infra", "named-rule", gw, "Accepted", ("True", "Accepted"))
        .await;
    c.route_is(
        "infra",
        "named-rule",
        gw,
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
}

const GRPC_ECHO: &str = "/gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

/// Conformance GRPCRouteNamedRule: a GRPCRoute whose rules are named (`name-1` for method
/// Echo → grpc-infra-backend-v1, `name-2` for EchoTwo → grpc-infra-backend-v2) is accepted
/// and each call reaches its rule's backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_grpc_route_rules_are_served() {
    let [p] = ports();
    let mut objects = Vec::new();
    for name in ["grpc-infra-backend-v1", "grpc-infra-backend-v2"] {
        let port = h2c_backend(name).await;
        objects.push(serde_json::to_value(service("infra", name)).unwrap());
        let s = slice("infra", name, &format!("{name}-a"), port, READY);
        objects.push(serde_json::to_value(s).unwrap());
    }
    let rule = |name: &str, method: &str, to: &str| {
        json!({"name": name, "matches": [{"method": {"type": "Exact",
            "service": "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho", "method": method}}],
            "backendRefs": [{"name": to, "port": 80}]})
    };
    let gw = "same-namespace";
    objects.push(gateway(gw, json!([http("http", p, "Same")])));
    objects.push(json!({"apiVersion": GW, "kind": "GRPCRoute",
        "metadata": {"name": "grpc-named-rules", "namespace": "infra"},
        "spec": {"parentRefs": [{"name": gw}], "rules": [
            rule("name-1", "Echo", "grpc-infra-backend-v1"),
            rule("name-2", "EchoTwo", "grpc-infra-backend-v2")]}}));
    let c = start(&objects).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], p.port()));
    for (method, backend) in [
        ("Echo", "grpc-infra-backend-v1"),
        ("EchoTwo", "grpc-infra-backend-v2"),
    ] {
        let path = format!("{GRPC_ECHO}/{method}");
        let ok = poll(Duration::from_secs(10), || async {
            call(addr, "grpc.example", &path, None)
                .await
                .is_some_and(|r| r.0 == 200 && r.1 == backend)
        })
        .await;
        let got = call(addr, "grpc.example", &path, None).await;
        assert!(
            ok,
            "{method}: want {backend}, got {got:?}; log:\n{}",
            c.proxy.log()
        );
    }
    let route = || route_parent(&c.fake, "GRPCRoute", "infra", "grpc-named-rules", gw);
    c.until(
        "grpc-named-rules accepted",
        || {
            let cs = route()["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            cs.iter()
                .any(|c| c["type"] == "Accepted" && c["status"] == "True")
        },
        route,
    )
    .await;
}

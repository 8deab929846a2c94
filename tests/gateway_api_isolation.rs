//! Listener isolation through the fake API server and the real binary: an HTTPRoute is served
//! only on the Gateway listeners it attached to, for the hosts it intersected there; a
//! Gateway listener serves no Ingress or file route; listeners sharing a port are told apart
//! by hostname, the most specific first (conformance GatewayHTTPListenerIsolation and
//! HTTPRouteListenerHostnameMatching, transcribed); on a port shared with a file listener the
//! file's routes keep the hosts no Gateway listener claims.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::{free_ports, poll};
use fake_kube::objects::{class, ingress};
use gateway_support::{GW, get, route, setup, to};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// Waits until `addr` answers GET `host` `path` with `status` (and `body`, when given).
async fn expect_at(
    s: &gateway_support::Setup,
    addr: SocketAddr,
    host: &str,
    path: &str,
    status: u16,
    body: &str,
) {
    let ok = poll(Duration::from_secs(10), || async {
        get(addr, host, path, "")
            .await
            .is_some_and(|(st, b)| st == status && (body.is_empty() || b == body))
    })
    .await;
    let last = get(addr, host, path, "").await;
    assert!(
        ok,
        "{addr} {host}{path}: want {status} {body:?}, got {last:?}; log:\n{}",
        s.proxy.log()
    );
}

/// A Gateway `infra/name` of our class with HTTP listeners (name, port, hostname), admitting
/// routes from every namespace.
fn gateway(name: &str, listeners: &[(&str, u16, Option<&str>)]) -> Value {
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|(l, port, host)| {
            let mut v = json!({"name": l, "protocol": "HTTP", "port": port,
                "allowedRoutes": {"namespaces": {"from": "All"}}});
            if let Some(h) = host {
                v["hostname"] = json!(h);
            }
            v
        })
        .collect();
    json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": listeners}})
}

/// An HTTPRoute attached to `gateway`'s listener `section`, for `path`, to `service`.
fn attached(name: &str, gateway: &str, section: &str, hosts: &[&str], path: &str) -> Value {
    let rules = json!([{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                        "backendRefs": [{"name": "v1", "port": 80}]}]);
    let mut r = route("infra", name, hosts, rules);
    r["spec"]["parentRefs"] =
        json!([{"name": gateway, "namespace": "infra", "sectionName": section}]);
    r
}

/// Conformance GatewayHTTPListenerIsolation, both halves: four listeners on one port
/// (no hostname, `*.example.com`, `*.foo.example.com`, `abc.foo.example.com`), a route on
/// each; a request is served by the most specific listener claiming its host, and only by
/// that listener's route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_on_one_port_serve_only_their_own_routes() {
    let s = setup(None, "Same").await;
    let [port] = free_ports();
    let names = [
        ("empty-hostname", None, "bar.com"),
        (
            "wildcard-example-com",
            Some("*.example.com"),
            "bar.example.com",
        ),
        (
            "wildcard-foo-example-com",
            Some("*.foo.example.com"),
            "bar.foo.example.com",
        ),
        (
            "abc-foo-example-com",
            Some("abc.foo.example.com"),
            "abc.foo.example.com",
        ),
    ];
    let listeners: Vec<_> = names
        .iter()
        .map(|(n, h, _)| (*n, port.port(), *h))
        .collect();
    s.fake.apply(&gateway("iso", &listeners));
    for intersect in [false, true] {
        for (n, h, _) in &names {
            // The second half names the listener's hostname (or `*.com`) in the route too.
            let hosts = match (intersect, h) {
                (false, _) => vec![],
                (true, Some(h)) => vec![*h],
                (true, None) => vec!["bar.com"],
            };
            let path = format!("/{n}");
            s.fake
                .apply(&attached(&format!("to-{n}"), "iso", n, &hosts, &path));
        }
        for (_, _, host) in &names {
            for (n, _, served) in &names {
                let (status, body) = if host == served {
                    (200, "v1")
                } else {
                    (404, "")
                };
                expect_at(&s, port, host, &format!("/{n}"), status, body).await;
            }
        }
    }
}

/// Conformance HTTPRouteListenerHostnameMatching: listeners `bar.com`,
/// `foo.bar.com`, `*.bar.com` and `*.foo.com` on one port, routes on the first, the second,
/// and the last two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_hostname_fences_its_hosts() {
    let s = setup(None, "Same").await;
    let [port] = free_ports();
    let p = port.port();
    s.fake.apply(&gateway(
        "hm",
        &[
            ("listener-1", p, Some("bar.com")),
            ("listener-2", p, Some("foo.bar.com")),
            ("listener-3", p, Some("*.bar.com")),
            ("listener-4", p, Some("*.foo.com")),
        ],
    ));
    let mut r1 = route("infra", "backend-v1", &[], to("v1"));
    r1["spec"]["parentRefs"] = json!([{"name": "hm", "sectionName": "listener-1"}]);
    let mut r2 = route("infra", "backend-v2", &[], to("v2"));
    r2["spec"]["parentRefs"] = json!([{"name": "hm", "sectionName": "listener-2"}]);
    let mut r3 = route("infra", "backend-v3", &[], to("v1"));
    r3["spec"]["parentRefs"] = json!([{"name": "hm", "sectionName": "listener-3"},
                                      {"name": "hm", "sectionName": "listener-4"}]);
    r3["spec"]["rules"][0]["backendRefs"] =
        json!([{"name": "v3", "namespace": "apps", "port": 80}]);
    s.fake
        .apply(&json!({"apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "apps"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                           "namespace": "infra"}],
                 "to": [{"group": "", "kind": "Service"}]}}));
    for r in [r1, r2, r3] {
        s.fake.apply(&r);
    }
    expect_at(&s, port, "bar.com", "/", 200, "v1").await;
    expect_at(&s, port, "foo.bar.com", "/", 200, "v2").await;
    expect_at(&s, port, "baz.bar.com", "/", 200, "v3").await;
    expect_at(&s, port, "boo.bar.com", "/", 200, "v3").await;
    expect_at(&s, port, "multiple.prefixes.bar.com", "/", 200, "v3").await;
    expect_at(&s, port, "multiple.prefixes.foo.com", "/", 200, "v3").await;
    expect_at(&s, port, "foo.com", "/", 404, "").await;
    expect_at(&s, port, "no.matching.host", "/", 404, "").await;
    // Served elsewhere (an Ingress, another Gateway's listener), still 404 on these.
    s.fake.apply(&class());
    s.fake.apply(&ingress("apps", "ing", "foo.com", "v3", None));
    s.fake.apply(&route(
        "infra",
        "elsewhere",
        &["no.matching.host"],
        to("v2"),
    ));
    expect_at(&s, s.proxy.http, "foo.com", "/", 200, "v3").await;
    expect_at(&s, s.port, "no.matching.host", "/", 200, "v2").await;
    expect_at(&s, port, "foo.com", "/", 404, "").await;
    expect_at(&s, port, "no.matching.host", "/", 404, "").await;
}

/// A route attached to Gateway A is 404 on Gateway B's listener and on the file's; an
/// Ingress route is 404 on a Gateway listener and served on the file's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_files_and_ingresses_do_not_share_routes() {
    let s = setup(None, "All").await;
    let [b] = free_ports();
    s.fake.apply(&gateway("b", &[("http", b.port(), None)]));
    let mut on_b = route("infra", "on-b", &["b.example"], to("v2"));
    on_b["spec"]["parentRefs"] = json!([{"name": "b"}]);
    s.fake.apply(&on_b);
    s.fake
        .apply(&route("infra", "on-a", &["a.example"], to("v1")));
    s.fake.apply(&class());
    s.fake
        .apply(&ingress("apps", "ing", "ing.example", "v3", None));
    let file = s.proxy.http;
    expect_at(&s, s.port, "a.example", "/", 200, "v1").await;
    expect_at(&s, b, "b.example", "/", 200, "v2").await;
    expect_at(&s, file, "ing.example", "/", 200, "v3").await;
    expect_at(&s, b, "a.example", "/", 404, "").await;
    expect_at(&s, file, "a.example", "/", 404, "").await;
    expect_at(&s, s.port, "b.example", "/", 404, "").await;
    expect_at(&s, file, "b.example", "/", 404, "").await;
    expect_at(&s, s.port, "ing.example", "/", 404, "").await;
    expect_at(&s, b, "ing.example", "/", 404, "").await;
    // The same host and path from an Ingress and an HTTPRoute: each on its own listeners,
    // neither reported as a conflict.
    s.fake
        .apply(&ingress("apps", "both", "both.example", "v3", None));
    s.fake
        .apply(&route("infra", "both", &["both.example"], to("v1")));
    expect_at(&s, s.port, "both.example", "/", 200, "v1").await;
    expect_at(&s, file, "both.example", "/", 200, "v3").await;
    assert_eq!(s.skipped("route_conflict").await, 0.0);
}

/// A Gateway listener with a hostname on the file listener's port claims that host (only its
/// routes are served for it); the file's and Ingresses' routes keep every other host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_shared_with_the_file_is_split_by_hostname() {
    let s = setup(None, "All").await;
    let file = s.proxy.http;
    s.fake.apply(&gateway(
        "shared",
        &[("web", file.port(), Some("gw.example"))],
    ));
    let mut r = route("infra", "gw", &[], to("v1"));
    r["spec"]["parentRefs"] = json!([{"name": "shared"}]);
    s.fake.apply(&r);
    s.fake.apply(&class());
    s.fake
        .apply(&ingress("apps", "ing", "ing.example", "v3", None));
    s.fake
        .apply(&ingress("infra", "taken", "gw.example", "v2", None));
    expect_at(&s, file, "gw.example", "/", 200, "v1").await;
    expect_at(&s, file, "ing.example", "/", 200, "v3").await;
    expect_at(&s, file, "other.example", "/", 404, "").await;
    // The route is not served on the Gateway `infra/gw` of the setup either.
    expect_at(&s, s.port, "gw.example", "/", 404, "").await;
}

/// A route attached to two listeners that conflicts with an older route on one of them is
/// left out there only: it still serves on the other listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_on_one_listener_leaves_the_route_on_the_others() {
    let s = setup(None, "All").await;
    let [a, b] = free_ports();
    s.fake.apply(&gateway(
        "two",
        &[("a", a.port(), None), ("b", b.port(), None)],
    ));
    s.fake
        .apply(&attached("old", "two", "a", &["x.example"], "/p"));
    let mut new = route("infra", "new", &["x.example"], to("v2"));
    new["spec"]["parentRefs"] = json!([{"name": "two", "namespace": "infra"}]);
    new["spec"]["rules"][0]["matches"] = json!([{"path": {"type": "PathPrefix", "value": "/p"}}]);
    s.fake.apply(&new);
    expect_at(&s, a, "x.example", "/p", 200, "v1").await;
    expect_at(&s, b, "x.example", "/p", 200, "v2").await;
    assert_eq!(s.skipped("route_conflict").await, 1.0);
}

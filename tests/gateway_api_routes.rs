//! HTTPRoutes through the fake API server and the real binary, on a Gateway listener opened
//! at run time: parents (sectionName, allowedRoutes), hostname intersection, path / header /
//! query / method matches, weighted backendRefs, the 500 cases (missing Service, other kinds,
//! cross-namespace refs without a ReferenceGrant, filters not served yet), ReferenceGrant,
//! and the source-conflict rule (an Ingress's route wins over an HTTPRoute's). Each problem is
//! checked in `switchyard_kube_skipped_total{kind="HTTPRoute",reason}`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, free_ports, http_backend, metric, poll};
use fake_kube::objects::{READY, class, ingress, service, slice};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GW: &str = "gateway.networking.k8s.io/v1";

/// A running proxy with a Gateway `infra/gw` whose HTTP listener `http` (on `port`, with
/// `hostname` and `allowedRoutes` `from`) is ours, and Services `infra/v1`, `infra/v2`,
/// `apps/v3` answering their names.
struct Setup {
    fake: FakeKube,
    proxy: Proxy,
    port: SocketAddr,
}

async fn setup(hostname: Option<&str>, from: &str) -> Setup {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}));
    let [port] = free_ports();
    let mut listener = json!({"name": "http", "protocol": "HTTP", "port": port.port(),
        "allowedRoutes": {"namespaces": {"from": from}}});
    if let Some(h) = hostname {
        listener["hostname"] = json!(h);
    }
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [listener]}}));
    for (ns, name) in [("infra", "v1"), ("infra", "v2"), ("apps", "v3")] {
        let backend = http_backend(name).await;
        fake.apply(&service(ns, name));
        fake.apply(&slice(ns, name, &format!("{name}-a"), backend, READY));
    }
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    Setup { fake, proxy, port }
}

fn route(ns: &str, name: &str, hostnames: &[&str], rules: Value) -> Value {
    json!({"apiVersion": GW, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}],
            "hostnames": hostnames, "rules": rules}})
}

fn to(name: &str) -> Value {
    json!([{"backendRefs": [{"name": name, "port": 80}]}])
}

/// GET `target` with `host` and extra header lines: (status, body).
async fn get(addr: SocketAddr, host: &str, target: &str, extra: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req =
            format!("GET {target} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

impl Setup {
    /// Waits until `host` `target` answers `status` (and `body`, when given).
    async fn expect(&self, host: &str, target: &str, extra: &str, status: u16, body: &str) {
        let ok = poll(Duration::from_secs(10), || async {
            get(self.port, host, target, extra)
                .await
                .is_some_and(|(s, b)| s == status && (body.is_empty() || b == body))
        })
        .await;
        let last = get(self.port, host, target, extra).await;
        assert!(
            ok,
            "{host}{target} {extra:?}: want {status} {body:?}, got {last:?}; log:\n{}",
            self.proxy.log()
        );
    }

    async fn skipped(&self, reason: &str) -> f64 {
        let m = self.proxy.metrics().await;
        metric(
            &m,
            &format!("switchyard_kube_skipped_total{{kind=\"HTTPRoute\",reason=\"{reason}\"}}"),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_reaches_its_service_on_its_hosts_only() {
    let s = setup(None, "Same").await;
    s.fake
        .apply(&route("infra", "web", &["web.example"], to("v1")));
    s.expect("web.example", "/any", "", 200, "v1").await;
    s.expect("other.example", "/", "", 404, "").await;
    s.fake.delete("HTTPRoute", "infra", "web");
    s.expect("web.example", "/any", "", 404, "").await;
}

/// Conformance HTTPRouteHostnameIntersection (listener `*.wildcard.io`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostnames_are_intersected_with_the_listeners() {
    let s = setup(Some("*.wildcard.io"), "Same").await;
    let hosts = ["foo.wildcard.io", "non.matching.com"];
    s.fake.apply(&route("infra", "a", &hosts, to("v1")));
    s.fake
        .apply(&route("infra", "b", &["wildcard.io"], to("v2")));
    s.expect("foo.wildcard.io", "/", "", 200, "v1").await;
    s.expect("non.matching.com", "/", "", 404, "").await;
    s.expect("wildcard.io", "/", "", 404, "").await;
    assert_eq!(s.skipped("no_matching_listener_hostname").await, 1.0);
    // No hostnames: the listener's.
    s.fake.apply(&route("infra", "c", &[], to("v2")));
    s.expect("bar.wildcard.io", "/", "", 200, "v2").await;
}

/// Conformance HTTPRouteMatching, HTTPRouteExactPathMatching, HTTPRouteHeaderMatching,
/// HTTPRouteQueryParamMatching, HTTPRouteMethodMatching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_pick_the_rule() {
    let s = setup(None, "Same").await;
    let rules = json!([
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "v1", "port": 80}]},
        {"matches": [{"path": {"type": "Exact", "value": "/exact"}},
                     {"headers": [{"name": "Version", "value": "two"}]},
                     {"queryParams": [{"name": "animal", "value": "whale"}]},
                     {"method": "POST", "path": {"value": "/"}}],
         "backendRefs": [{"name": "v2", "port": 80}]},
    ]);
    s.fake.apply(&route("infra", "m", &["m.example"], rules));
    s.expect("m.example", "/", "", 200, "v1").await;
    s.expect("m.example", "/exact", "", 200, "v2").await;
    s.expect("m.example", "/exact/more", "", 200, "v1").await;
    s.expect("m.example", "/x", "version: two\r\n", 200, "v2")
        .await;
    s.expect("m.example", "/x", "version: one\r\n", 200, "v1")
        .await;
    s.expect("m.example", "/x?animal=whale", "", 200, "v2")
        .await;
    s.expect("m.example", "/x?animal=dolphin", "", 200, "v1")
        .await;
}

/// Conformance HTTPRouteWeight (a 0 weight never gets requests), and the 500 cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_refs_weights_and_unusable_refs() {
    let s = setup(None, "Same").await;
    let rules = json!([{"backendRefs": [{"name": "v1", "port": 80, "weight": 0},
                                        {"name": "v2", "port": 80, "weight": 3}]}]);
    s.fake.apply(&route("infra", "w", &["w.example"], rules));
    for _ in 0..5 {
        s.expect("w.example", "/", "", 200, "v2").await;
    }
    s.fake
        .apply(&route("infra", "missing", &["missing.example"], to("nope")));
    s.expect("missing.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("backend_not_found").await, 1.0);
    let kind = json!([{"backendRefs": [{"kind": "ConfigMap", "name": "v1", "port": 80}]}]);
    s.fake
        .apply(&route("infra", "kind", &["kind.example"], kind));
    s.expect("kind.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("invalid_kind").await, 1.0);
    let filter = json!([{"filters": [{"type": "ExtensionRef", "extensionRef": {"name": "x"}}],
                         "backendRefs": [{"name": "v1", "port": 80}]}]);
    s.fake
        .apply(&route("infra", "filter", &["filter.example"], filter));
    s.expect("filter.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("unsupported_filter").await, 1.0);
}

/// Conformance HTTPRouteInvalidCrossNamespaceBackendRef and HTTPRouteReferenceGrant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_backends_need_a_reference_grant() {
    let s = setup(None, "Same").await;
    let rules = json!([{"backendRefs": [{"name": "v3", "namespace": "apps", "port": 80}]}]);
    s.fake.apply(&route("infra", "x", &["x.example"], rules));
    s.expect("x.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("ref_not_permitted").await, 1.0);
    s.fake
        .apply(&json!({"apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "apps"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                           "namespace": "infra"}],
                 "to": [{"group": "", "kind": "Service", "name": "v3"}]}}));
    s.expect("x.example", "/", "", 200, "v3").await;
    s.fake.delete("ReferenceGrant", "apps", "g");
    s.expect("x.example", "/", "", 500, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_admit_by_namespace_and_section_name() {
    let s = setup(None, "Same").await;
    s.fake
        .apply(&route("apps", "other-ns", &["o.example"], to("v3")));
    let mut wrong = route("infra", "section", &["s.example"], to("v1"));
    wrong["spec"]["parentRefs"][0]["sectionName"] = json!("https");
    s.fake.apply(&wrong);
    let mut right = route("infra", "named", &["n.example"], to("v1"));
    right["spec"]["parentRefs"][0]["sectionName"] = json!("http");
    s.fake.apply(&right);
    s.expect("n.example", "/", "", 200, "v1").await;
    s.expect("o.example", "/", "", 404, "").await;
    s.expect("s.example", "/", "", 404, "").await;
    assert_eq!(s.skipped("not_allowed_by_listeners").await, 1.0);
    assert_eq!(s.skipped("no_matching_parent").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_and_the_ingress_wins_a_conflict() {
    let s = setup(None, "All").await;
    s.fake.apply(&route("apps", "r", &["o.example"], to("v3")));
    s.expect("o.example", "/", "", 200, "v3").await;
    s.fake.apply(&class());
    s.fake
        .apply(&ingress("infra", "ing", "both.example", "v1", None));
    s.expect("both.example", "/", "", 200, "v1").await;
    s.fake
        .apply(&route("infra", "late", &["both.example"], to("v2")));
    let reported = poll(Duration::from_secs(10), || async {
        s.skipped("route_conflict").await == 1.0
    })
    .await;
    assert!(reported, "log:\n{}", s.proxy.log());
    s.expect("both.example", "/", "", 200, "v1").await;
}

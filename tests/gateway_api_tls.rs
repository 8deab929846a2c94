//! TLSRoute (v1alpha2) through the fake API server and the real binary: a Gateway listener
//! `protocol: TLS`, `tls.mode: Passthrough` passes a TLSRoute's hostnames undecrypted to a
//! backend that terminates TLS itself (conformance TLSRouteSimpleSameNamespace), a
//! cross-namespace backendRef only with a ReferenceGrant (TLSRouteInvalidReferenceGrant), the
//! route status reasons, the listener's status, and readiness without the TLSRoute CRD.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;

use common::edge::{any_cert_client, connect_tls, echo, tls_echo_backend};
use common::tls::Pki;
use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, free_ports, poll};
use fake_kube::objects::{READY, service, slice};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

const GW: &str = "gateway.networking.k8s.io/v1";
const ALPHA: &str = "gateway.networking.k8s.io/v1alpha2";

fn tls_route(name: &str, section: Option<&str>, hosts: &[&str], backend: Value) -> Value {
    let mut parent = json!({"name": "gw", "namespace": "infra"});
    if let Some(s) = section {
        parent["sectionName"] = json!(s);
    }
    json!({"apiVersion": ALPHA, "kind": "TLSRoute",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"parentRefs": [parent], "hostnames": hosts,
            "rules": [{"backendRefs": [backend]}]}})
}

/// The (status, reason) of condition `ty` of our first parent entry of TLSRoute `name`.
fn condition(fake: &FakeKube, name: &str, ty: &str) -> Option<(String, String)> {
    let r = fake.get("TLSRoute", "infra", name)?;
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

/// The line the backend behind `sni` answers through the listener, if passed through.
async fn through(addr: SocketAddr, sni: &str) -> String {
    let (mut tls, _) = connect_tls(addr, any_cert_client(&[], true), sni).await;
    echo(&mut tls, "hello").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_route_passes_its_hostnames_through_with_its_status() {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}));
    let [port] = free_ports();
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [{"name": "tls",
            "protocol": "TLS", "port": port.port(), "hostname": "*.test",
            "tls": {"mode": "Passthrough"}}]}}));
    let pki = Pki::new();
    let db = tls_echo_backend("db", &pki.issue("db", &["db.test"])).await;
    let other = tls_echo_backend("other", &pki.issue("other", &["other.test"])).await;
    fake.apply(&service("infra", "db"));
    fake.apply(&slice("infra", "db", "db-a", db.port(), READY));
    fake.apply(&service("apps", "other"));
    fake.apply(&slice("apps", "other", "other-a", other.port(), READY));
    let to = |ns: &str, name: &str| json!({"name": name, "namespace": ns, "port": 80});
    fake.apply(&tls_route("db", None, &["db.test"], to("infra", "db")));
    fake.apply(&tls_route(
        "cross",
        None,
        &["other.test"],
        to("apps", "other"),
    ));
    fake.apply(&tls_route("far", None, &["db.example"], to("infra", "db")));
    fake.apply(&tls_route(
        "lost",
        Some("nope"),
        &["x.test"],
        to("infra", "db"),
    ));
    fake.apply(&tls_route(
        "gone",
        None,
        &["gone.test"],
        to("infra", "missing"),
    ));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    let up = poll(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(up, "log:\n{}", proxy.log());
    condition_is(&fake, &proxy, "db", "Accepted", ("True", "Accepted")).await;
    condition_is(
        &fake,
        &proxy,
        "db",
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
    assert_eq!(through(addr, "db.test").await, "db: hello");
    // A wildcard covers names any depth of labels under it (the Gateway API's rule).
    fake.apply(&tls_route(
        "deep",
        None,
        &["*.deep.test"],
        to("infra", "db"),
    ));
    condition_is(&fake, &proxy, "deep", "Accepted", ("True", "Accepted")).await;
    let deep = poll(Duration::from_secs(10), || async {
        through(addr, "a.b.deep.test").await == "db: hello"
    })
    .await;
    assert!(deep, "log:\n{}", proxy.log());
    let far = ("False", "NoMatchingListenerHostname");
    condition_is(&fake, &proxy, "far", "Accepted", far).await;
    condition_is(
        &fake,
        &proxy,
        "lost",
        "Accepted",
        ("False", "NoMatchingParent"),
    )
    .await;
    let gone = ("False", "BackendNotFound");
    condition_is(&fake, &proxy, "gone", "ResolvedRefs", gone).await;
    let refused = ("False", "RefNotPermitted");
    condition_is(&fake, &proxy, "cross", "ResolvedRefs", refused).await;
    // Not passed through: terminated here with our certificate, so no backend answers.
    let (_tls, leaf) = connect_tls(addr, any_cert_client(&[], true), "other.test").await;
    assert!(!common::edge::has_common_name(&leaf, "other"));
    fake.apply(&json!({"apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "apps"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "TLSRoute",
            "namespace": "infra"}], "to": [{"group": "", "kind": "Service"}]}}));
    condition_is(
        &fake,
        &proxy,
        "cross",
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
    // The status is written as the routes are built; the listener takes the new names a
    // moment later, so the first handshake may still be terminated here.
    let passed = poll(Duration::from_secs(5), || async {
        let (_tls, leaf) = connect_tls(addr, any_cert_client(&[], true), "other.test").await;
        common::edge::has_common_name(&leaf, "other")
    })
    .await;
    assert!(
        passed,
        "other.test never passed through; log:\n{}",
        proxy.log()
    );
    assert_eq!(through(addr, "other.test").await, "other: hello");
    let gw = fake.get("Gateway", "infra", "gw").unwrap();
    let l = &gw["status"]["listeners"][0];
    assert_eq!(
        l["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "TLSRoute"}])
    );
    let programmed = l["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Programmed");
    assert_eq!(programmed.unwrap()["status"], "True", "{gw}");
    let attached = poll(Duration::from_secs(10), || async {
        let gw = fake.get("Gateway", "infra", "gw").unwrap();
        gw["status"]["listeners"][0]["attachedRoutes"] == 4
    })
    .await;
    let gw = fake.get("Gateway", "infra", "gw").unwrap();
    assert!(attached, "db, deep, cross, gone attach: {gw}");
}

/// The TLSRoute CRD is the experimental channel's: without it (404) the proxy is ready all
/// the same, says so once, and a later outage of the API server is still reported (the
/// missing kind is not counted as a failing watch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_without_the_tls_route_crd() {
    let fake = FakeKube::start().await;
    fake.set_missing("tlsroutes", true);
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    assert!(fake.lists("gatewayclasses") >= 1);
    let not_served = poll(Duration::from_secs(10), || async {
        proxy.log().contains("kind not served by the api server")
    })
    .await;
    assert!(not_served, "log:\n{}", proxy.log());
    assert!(!proxy.log().contains("kubernetes watch failed"));
    fake.set_down(true);
    let reported = poll(Duration::from_secs(10), || async {
        proxy.log().contains("kubernetes watch failed")
    })
    .await;
    fake.set_down(false);
    assert!(reported, "log:\n{}", proxy.log());
}

//! HTTPS Gateway listeners through the fake API server and the real binary: `tls.mode:
//! Terminate` with `certificateRefs` to a TLS Secret (its certificate presented by SNI, the
//! route served behind it), a Secret in another namespace only with a ReferenceGrant
//! (conformance GatewaySecretReferenceGrantSpecific, GatewaySecretMissingReferenceGrant), and
//! the listener's `ResolvedRefs` (`RefNotPermitted`, `InvalidCertificateRef`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, free_ports, http_backend, https_get, issue, poll};
use fake_kube::objects::{READY, secret, service, slice};
use gateway_support::{GW, route, to};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;

fn ref_state(fake: &FakeKube) -> Option<(String, String)> {
    let gw = fake.get("Gateway", "infra", "gw")?;
    let l = gw["status"]["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == "https")?
        .clone();
    let c = l["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "ResolvedRefs")?
        .clone();
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str()?.to_owned(),
    ))
}

async fn refs_are(fake: &FakeKube, proxy: &Proxy, want: (&str, &str)) {
    let want = Some((want.0.to_owned(), want.1.to_owned()));
    let ok = poll(Duration::from_secs(10), || async {
        ref_state(fake) == want
    })
    .await;
    assert!(
        ok,
        "want {want:?}, got {:?}; log:\n{}",
        ref_state(fake),
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_listener_presents_its_secret_and_routes() {
    let fake = FakeKube::start().await;
    let (chain, key, leaf, roots) = issue("secure.example");
    fake.apply(
        &json!({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}),
    );
    let [port] = free_ports();
    // The Secret lives in namespace certs: not usable until a ReferenceGrant allows it.
    fake.apply(&secret("certs", "secure", &chain, &key));
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [{"name": "https",
            "protocol": "HTTPS", "port": port.port(), "hostname": "secure.example",
            "tls": {"mode": "Terminate", "certificateRefs": [{"name": "secure", "namespace": "certs"}]}}]}}));
    let backend = http_backend("v1").await;
    fake.apply(&service("infra", "v1"));
    fake.apply(&slice("infra", "v1", "v1-a", backend, READY));
    fake.apply(&route("infra", "web", &[], to("v1")));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    refs_are(&fake, &proxy, ("False", "RefNotPermitted")).await;
    fake.apply(&json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": "g", "namespace": "certs"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra"}],
                 "to": [{"group": "", "kind": "Secret", "name": "secure"}]}}));
    refs_are(&fake, &proxy, ("True", "ResolvedRefs")).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    let served = poll(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(addr).await.is_ok()
    })
    .await;
    assert!(served, "log:\n{}", proxy.log());
    let (status, body, presented) = https_get(addr, "secure.example", roots).await;
    assert_eq!((status, body.as_str()), (200, "v1"));
    assert_eq!(presented, leaf, "the Secret's certificate");
    // A Secret that is not a usable TLS pair.
    fake.apply(&secret("certs", "secure", "not a certificate", "nor a key"));
    refs_are(&fake, &proxy, ("False", "InvalidCertificateRef")).await;
}

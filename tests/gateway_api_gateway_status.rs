//! Gateway status through the fake API server and the real binary: `Accepted`, `Programmed`,
//! `addresses` from `--publish-status-address`, and per listener `Accepted` (`Accepted`,
//! `UnsupportedProtocol`, `PortUnavailable`), `Programmed`, `ResolvedRefs`
//! (`InvalidRouteKinds`), `Conflicted` (`HostnameConflict`), `supportedKinds` and
//! `attachedRoutes`; written once, and again when a route attaches.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, free_ports, poll};
use gateway_support::{GW, route, to};
use serde_json::{Value, json};
use std::time::Duration;

/// (status, reason) of condition `ty` of listener `name` (or of the Gateway, for `None`).
fn cond(fake: &FakeKube, listener: Option<&str>, ty: &str) -> Option<(String, String)> {
    let gw = fake.get("Gateway", "infra", "gw")?;
    let holder = match listener {
        None => gw["status"].clone(),
        Some(n) => gw["status"]["listeners"]
            .as_array()?
            .iter()
            .find(|l| l["name"] == n)?
            .clone(),
    };
    let c = holder["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?
        .clone();
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str()?.to_owned(),
    ))
}

fn listener(fake: &FakeKube, name: &str) -> Value {
    let gw = fake.get("Gateway", "infra", "gw").unwrap();
    let ls = gw["status"]["listeners"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ls.into_iter()
        .find(|l| l["name"] == name)
        .unwrap_or_default()
}

async fn until(
    fake: &FakeKube,
    proxy: &Proxy,
    listener: Option<&str>,
    ty: &str,
    want: (&str, &str),
) {
    let want = (want.0.to_owned(), want.1.to_owned());
    let ok = poll(Duration::from_secs(10), || async {
        cond(fake, listener, ty) == Some(want.clone())
    })
    .await;
    assert!(
        ok,
        "{listener:?} {ty}: want {want:?}, got {:?}; log:\n{}",
        cond(fake, listener, ty),
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_and_listener_status() {
    let fake = FakeKube::start().await;
    fake.apply(
        &json!({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}),
    );
    let [http, https, kinds, busy, tls] = free_ports();
    let _holder = std::net::TcpListener::bind(("0.0.0.0", busy.port())).unwrap();
    let l = |name: &str, protocol: &str, port: u16| json!({"name": name, "protocol": protocol, "port": port});
    let mut odd = l("kinds", "HTTP", kinds.port());
    odd["allowedRoutes"] = json!({"kinds": [{"kind": "HTTPRoute"}, {"kind": "TCPRoute"}]});
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [
            l("http", "HTTP", http.port()), l("dup", "HTTP", http.port()),
            l("tcp", "TCP", https.port()), l("tls", "HTTPS", tls.port()), odd,
            l("busy", "HTTP", busy.port())]}}));
    let proxy = Proxy::start(
        &fake,
        &[
            "--gateway-api",
            "--publish-status-address",
            "10.0.0.1,lb.example",
        ],
    );
    proxy.wait_ready().await;
    until(
        &fake,
        &proxy,
        Some("busy"),
        "Accepted",
        ("False", "PortUnavailable"),
    )
    .await;
    until(
        &fake,
        &proxy,
        None,
        "Accepted",
        ("True", "ListenersNotValid"),
    )
    .await;
    until(&fake, &proxy, None, "Programmed", ("True", "Programmed")).await;
    let gw = fake.get("Gateway", "infra", "gw").unwrap();
    assert_eq!(
        gw["status"]["addresses"],
        json!([{"type": "IPAddress", "value": "10.0.0.1"}, {"type": "Hostname", "value": "lb.example"}])
    );
    until(
        &fake,
        &proxy,
        Some("http"),
        "Accepted",
        ("True", "Accepted"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("http"),
        "Programmed",
        ("True", "Programmed"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("http"),
        "Conflicted",
        ("False", "NoConflicts"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("http"),
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("dup"),
        "Conflicted",
        ("True", "HostnameConflict"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("dup"),
        "Programmed",
        ("False", "Invalid"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("tcp"),
        "Accepted",
        ("False", "UnsupportedProtocol"),
    )
    .await;
    // HTTPS without certificateRefs: accepted, refs unresolved, not programmed.
    until(
        &fake,
        &proxy,
        Some("tls"),
        "ResolvedRefs",
        ("False", "InvalidCertificateRef"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("tls"),
        "Programmed",
        ("False", "Invalid"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("busy"),
        "Programmed",
        ("False", "Invalid"),
    )
    .await;
    until(
        &fake,
        &proxy,
        Some("kinds"),
        "ResolvedRefs",
        ("False", "InvalidRouteKinds"),
    )
    .await;
    assert_eq!(
        listener(&fake, "kinds")["supportedKinds"],
        json!([{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}])
    );
    assert_eq!(listener(&fake, "tcp")["supportedKinds"], json!([]));
    assert_eq!(listener(&fake, "http")["attachedRoutes"], 0);
    // A route attaching to the Gateway counts on each programmed listener it attached to.
    fake.apply(&fake_kube::objects::service("infra", "v1"));
    fake.apply(&route("infra", "web", &["web.example"], to("v1")));
    let attached = poll(Duration::from_secs(10), || async {
        listener(&fake, "http")["attachedRoutes"] == 1
    })
    .await;
    assert!(attached, "{}", fake.get("Gateway", "infra", "gw").unwrap());
    assert_eq!(listener(&fake, "dup")["attachedRoutes"], 0);
    assert_eq!(listener(&fake, "kinds")["attachedRoutes"], 1);
    // One write per change (the first status, the busy port, the route): none twice, none
    // after.
    assert_eq!(fake.status_patches("gateways").len(), 3);
    let writes = fake.status_patches("gateways").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.status_patches("gateways").len(), writes);
}

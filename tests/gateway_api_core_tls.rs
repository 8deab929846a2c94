//! The core conformance tests of the Gateway API `TLSRoute` feature that
//! `tests/gateway_api_tls.rs` does not transcribe, through the fake API server and the real
//! binary: TLSRouteListenerPassthroughSupportedKinds, TLSRouteInvalidNoMatchingListener,
//! TLSRouteInvalidBackendRefNonexistent, TLSRouteInvalidNoMatchingListenerHostname (status) and
//! TLSRouteHostnameIntersection (connections passed through to backends terminating TLS).
//! Facts from the upstream suite (`conformance/tests/`), names shortened as in
//! `tests/gateway_api_core.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use common::edge::{echo, tls_echo_backend};
use common::tls::Pki;
use fake_kube::objects::{READY, secret, service, slice};
use gateway_support::conformance::{
    Conf, cond, gateway, is, issue_many, listener, ports, route_parent, start,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// A TLSRoute `infra/name` for `tls.example.com` to Gateway `gw` (listener `section`, if any)
/// and Service `to`.
fn tls_route(name: &str, gw: &str, section: Option<&str>, to: &str) -> Value {
    let mut parent = json!({"name": gw});
    if let Some(s) = section {
        parent["sectionName"] = json!(s);
    }
    json!({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TLSRoute",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"parentRefs": [parent], "hostnames": ["tls.example.com"],
            "rules": [{"backendRefs": [{"name": to, "port": 80}]}]}})
}

/// A listener admitting routes of the same namespace of `kinds`.
fn listener_of(name: &str, protocol: &str, port: std::net::SocketAddr, kinds: Value) -> Value {
    json!({"name": name, "protocol": protocol, "port": port.port(),
        "allowedRoutes": {"namespaces": {"from": "Same"}, "kinds": kinds}})
}

/// Waits until TLSRoute `name`'s condition `ty` for Gateway `gw` is `want`.
async fn tls_route_is(c: &Conf, name: &str, gw: &str, ty: &str, want: (&str, &str)) {
    c.until(
        &format!("{name} {ty} want {want:?}"),
        || cond(&route_parent(&c.fake, "TLSRoute", "infra", name, gw), ty) == is(want.0, want.1),
        || route_parent(&c.fake, "TLSRoute", "infra", name, gw),
    )
    .await;
}

/// The sum of `attachedRoutes` over the listeners of Gateway `gw`.
fn attached(c: &Conf, gw: &str) -> i64 {
    let ls = c.gw(gw)["status"]["listeners"].as_array().cloned();
    ls.unwrap_or_default()
        .iter()
        .map(|l| l["attachedRoutes"].as_i64().unwrap_or(-1))
        .sum()
}

/// Conformance TLSRouteListenerPassthroughSupportedKinds: a TLS Passthrough listener whose
/// `allowedRoutes.kinds` are TCPRoute and TLSRoute is `ResolvedRefs: False,
/// InvalidRouteKinds`, lists TLSRoute only, no route attached.
/// Conformance TLSRouteInvalidNoMatchingListener: TLSRoutes to an HTTP listener (kinds
/// TLSRoute), an HTTP listener for HTTPRoutes and an HTTPS listener (kinds TLSRoute) are
/// `Accepted: False, NotAllowedByListeners`; one naming a listener that does not exist is
/// `NoMatchingParent`; those Gateways have no route attached.
/// Conformance TLSRouteInvalidBackendRefNonexistent: a TLSRoute to a Service that does not
/// exist is `ResolvedRefs: False, BackendNotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_route_listeners_and_refs() {
    let [p1, p2, p3, p4, p5] = ports();
    let (chain, key, _) = issue_many(&["tls.example.com"]);
    let mut passthrough = listener_of(
        "tls-passthrough",
        "TLS",
        p1,
        json!([{"kind": "TCPRoute"}, {"kind": "TLSRoute"}]),
    );
    passthrough["tls"] = json!({"mode": "Passthrough"});
    let mut https = listener_of("https", "HTTPS", p4, json!([{"kind": "TLSRoute"}]));
    https["tls"] = json!({"mode": "Terminate", "certificateRefs": [{"name": "cert"}]});
    let mut nonexistent = listener_of("tls", "TLS", p5, json!([{"kind": "TLSRoute"}]));
    nonexistent["tls"] = json!({"mode": "Passthrough"});
    let c = start(&[
        serde_json::to_value(secret("infra", "cert", &chain, &key)).unwrap(),
        gateway("passthrough-supported-kind", json!([passthrough])),
        gateway(
            "http-only",
            json!([listener_of(
                "http",
                "HTTP",
                p2,
                json!([{"kind": "TLSRoute"}])
            )]),
        ),
        gateway(
            "tls-httproute-only",
            json!([listener_of(
                "http",
                "HTTP",
                p3,
                json!([{"kind": "HTTPRoute"}])
            )]),
        ),
        gateway("https-only", json!([https])),
        gateway("invalid-backend-ref-nonexistent", json!([nonexistent])),
        tls_route(
            "no-matching-listener",
            "http-only",
            None,
            "infra-backend-v1",
        ),
        tls_route(
            "not-allowed-kind",
            "tls-httproute-only",
            None,
            "infra-backend-v1",
        ),
        tls_route("wrong-protocol", "https-only", None, "infra-backend-v1"),
        tls_route(
            "wrong-section-name",
            "http-only",
            Some("nonexistent-listener"),
            "infra-backend-v1",
        ),
        tls_route(
            "nonexistent",
            "invalid-backend-ref-nonexistent",
            None,
            "nonexistent",
        ),
    ])
    .await;
    let gw = "passthrough-supported-kind";
    c.until(
        "tls-passthrough: InvalidRouteKinds, TLSRoute listed",
        || {
            let l = listener(&c.fake, gw, "tls-passthrough");
            cond(&l, "ResolvedRefs") == is("False", "InvalidRouteKinds")
                && l["supportedKinds"]
                    == json!([{"group": "gateway.networking.k8s.io", "kind": "TLSRoute"}])
                && l["attachedRoutes"] == 0
        },
        || c.gw(gw),
    )
    .await;
    let refused = ("False", "NotAllowedByListeners");
    tls_route_is(&c, "no-matching-listener", "http-only", "Accepted", refused).await;
    tls_route_is(
        &c,
        "not-allowed-kind",
        "tls-httproute-only",
        "Accepted",
        refused,
    )
    .await;
    tls_route_is(&c, "wrong-protocol", "https-only", "Accepted", refused).await;
    let no_parent = ("False", "NoMatchingParent");
    tls_route_is(&c, "wrong-section-name", "http-only", "Accepted", no_parent).await;
    for g in ["http-only", "tls-httproute-only", "https-only"] {
        assert_eq!(attached(&c, g), 0, "{g}: {}", c.gw(g));
    }
    let gw = "invalid-backend-ref-nonexistent";
    tls_route_is(
        &c,
        "nonexistent",
        gw,
        "ResolvedRefs",
        ("False", "BackendNotFound"),
    )
    .await;
}

/// A TLS Passthrough listener on `port` (routes of kind TLSRoute from the same namespace).
fn passthrough(port: SocketAddr, hostname: Option<&str>) -> Value {
    let mut l = listener_of("tls", "TLS", port, json!([{"kind": "TLSRoute"}]));
    l["tls"] = json!({"mode": "Passthrough"});
    if let Some(h) = hostname {
        l["hostname"] = json!(h);
    }
    json!([l])
}

/// A TLSRoute `infra/name` for `hosts` to Gateway `gw` and Service `to`.
fn tls_route_for(name: &str, gw: &str, hosts: &[&str], to: &str) -> Value {
    let mut r = tls_route(name, gw, None, to);
    r["spec"]["hostnames"] = json!(hosts);
    r
}

/// What a client trusting only `roots` reads back through `port` with `sni` (`None`: the
/// connection was refused or the handshake failed: nothing passed through to a backend).
async fn through(port: SocketAddr, sni: &str, roots: rustls::RootCertStore) -> Option<String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = SocketAddr::from(([127, 0, 0, 1], port.port()));
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).ok()?;
        let mut tls = connector.connect(name, tcp).await.ok()?;
        Some(echo(&mut tls, "hello").await)
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), fut)
        .await
        .ok()?
}

/// Conformance TLSRouteHostnameIntersection: a TLSRoute attaches to a TLS Passthrough listener
/// only where their hostnames intersect, and only the intersection is passed through. Listener
/// `abc.example.com` with a route `*.example.com`; listener `*.example.com` with routes
/// `abc.example.com` (tls-backend) and `*.com` (tls-backend-2: `other.example.com`); listener
/// `*.com` with routes `abc.example.com` and `*.example.com`; a listener without hostname with
/// routes `abc.example.com` and `*.com` (`other.example.com`, two labels under `.com`).
/// `non.matching.com` (`.org` on the last) is never passed through.
/// Conformance TLSRouteInvalidNoMatchingListenerHostname: routes whose hostnames intersect
/// neither an exact nor a wildcard listener hostname are `Accepted: False,
/// NoMatchingListenerHostname`, nothing attached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_route_hostnames_intersect_listener_hostnames() {
    let [p1, p2, p3, p4, p5, p6] = ports();
    let pki = Pki::new();
    let names = ["abc.example.com", "other.example.com"];
    let one = tls_echo_backend("tls-backend", &pki.issue("one", &names)).await;
    let two = tls_echo_backend("tls-backend-2", &pki.issue("two", &names)).await;
    let mut objects = Vec::new();
    for (name, addr) in [("tls-backend", one), ("tls-backend-2", two)] {
        objects.push(serde_json::to_value(service("infra", name)).unwrap());
        let s = slice("infra", name, &format!("{name}-a"), addr.port(), READY);
        objects.push(serde_json::to_value(s).unwrap());
    }
    let routes = [
        (
            "exact-x-1",
            "wildcard-x-1",
            &["*.example.com"][..],
            "tls-backend",
        ),
        (
            "more-x-2",
            "exact-x-2",
            &["abc.example.com"][..],
            "tls-backend",
        ),
        ("more-x-2", "less-x-2", &["*.com"][..], "tls-backend-2"),
        (
            "less-x-3",
            "exact-x-3",
            &["abc.example.com"][..],
            "tls-backend",
        ),
        (
            "less-x-3",
            "more-x-3",
            &["*.example.com"][..],
            "tls-backend-2",
        ),
        (
            "empty-x-4",
            "exact-x-4",
            &["abc.example.com"][..],
            "tls-backend",
        ),
        ("empty-x-4", "less-x-4", &["*.com"][..], "tls-backend-2"),
        (
            "exact-mismatch",
            "mismatch-1",
            &["abc.example.org"][..],
            "tls-backend",
        ),
        (
            "wildcard-mismatch",
            "mismatch-2",
            &["abc.example.org"][..],
            "tls-backend",
        ),
    ];
    objects.extend([
        gateway("exact-x-1", passthrough(p1, Some("abc.example.com"))),
        gateway("more-x-2", passthrough(p2, Some("*.example.com"))),
        gateway("less-x-3", passthrough(p3, Some("*.com"))),
        gateway("empty-x-4", passthrough(p4, None)),
        gateway("exact-mismatch", passthrough(p5, Some("abc.example.com"))),
        gateway("wildcard-mismatch", passthrough(p6, Some("*.example.com"))),
    ]);
    for (gw, name, hosts, to) in routes {
        objects.push(tls_route_for(name, gw, hosts, to));
    }
    let c = start(&objects).await;
    for (gw, name, _, _) in &routes[..7] {
        tls_route_is(&c, name, gw, "ResolvedRefs", ("True", "ResolvedRefs")).await;
        tls_route_is(&c, name, gw, "Accepted", ("True", "Accepted")).await;
    }
    let want = |b: &str| Some(format!("{b}: hello"));
    for (port, sni, backend) in [
        (p1, "abc.example.com", want("tls-backend")),
        (p1, "non.matching.com", None),
        (p2, "abc.example.com", want("tls-backend")),
        (p2, "other.example.com", want("tls-backend-2")),
        (p2, "non.matching.com", None),
        (p3, "abc.example.com", want("tls-backend")),
        (p3, "other.example.com", want("tls-backend-2")),
        (p3, "non.matching.com", None),
        (p4, "abc.example.com", want("tls-backend")),
        (p4, "other.example.com", want("tls-backend-2")),
        (p4, "non.matching.org", None),
    ] {
        let ok = fake_kube::harness::poll(std::time::Duration::from_secs(10), || async {
            through(port, sni, pki.roots()).await == backend
        })
        .await;
        let got = through(port, sni, pki.roots()).await;
        assert!(
            ok,
            "{sni} on {port}: want {backend:?}, got {got:?}; log:\n{}",
            c.proxy.log()
        );
    }
    let refused = ("False", "NoMatchingListenerHostname");
    tls_route_is(&c, "mismatch-1", "exact-mismatch", "Accepted", refused).await;
    tls_route_is(&c, "mismatch-2", "wildcard-mismatch", "Accepted", refused).await;
    for g in ["exact-mismatch", "wildcard-mismatch"] {
        assert_eq!(attached(&c, g), 0, "{g}: {}", c.gw(g));
    }
}

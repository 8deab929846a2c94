//! The core conformance tests of the Gateway API `TLSRoute` feature that
//! `tests/gateway_api_tls.rs` does not transcribe, through the fake API server and the real
//! binary: TLSRouteListenerPassthroughSupportedKinds, TLSRouteInvalidNoMatchingListener and
//! TLSRouteInvalidBackendRefNonexistent (status only: no connection is made). Facts from the
//! upstream suite (`conformance/tests/`), names shortened as in `tests/gateway_api_core.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::secret;
use gateway_support::conformance::{
    Conf, cond, gateway, is, issue_many, listener, ports, route_parent, start,
};
use serde_json::{Value, json};

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

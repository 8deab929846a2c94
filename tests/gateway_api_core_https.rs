//! The core conformance tests of the Gateway API `Gateway` feature about HTTPS listeners,
//! through the fake API server and the real binary: HTTPRouteHTTPSListener,
//! GatewaySecretReferenceGrantAllInNamespace, GatewaySecretInvalidReferenceGrant,
//! GatewaySecretMissingReferencedSecret and GatewayOverlappingTLSConfigHostnames. Facts from the
//! upstream suite (`conformance/tests/`), names shortened as in `tests/gateway_api_core.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::secret;
use gateway_support::conformance::{
    cond, gateway, has, is, issue_many, kinds_http_route, listener, listener_ok, ports, route_to,
    rule_to, start, tls_get, to_gateway,
};
use serde_json::{Value, json};
use std::time::Duration;

/// An HTTPS listener on `port` (routes from the same namespace) with `cert` (`[namespace,]
/// name`) and an optional `hostname`.
fn https(name: &str, port: std::net::SocketAddr, cert: Value, hostname: Option<&str>) -> Value {
    let mut l = json!({"name": name, "protocol": "HTTPS", "port": port.port(),
        "allowedRoutes": {"namespaces": {"from": "Same"}},
        "tls": {"mode": "Terminate", "certificateRefs": [cert]}});
    if let Some(h) = hostname {
        l["hostname"] = json!(h);
    }
    l
}

/// A ReferenceGrant in `ns` letting Gateways of `infra` refer to Secret `to` (`None`: all).
fn secret_grant(ns: &str, to: Option<&str>) -> Value {
    let mut target = json!({"group": "", "kind": "Secret"});
    if let Some(n) = to {
        target["name"] = json!(n);
    }
    json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": format!("grant-{}", to.unwrap_or("all")), "namespace": ns},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                           "namespace": "infra"}], "to": [target]}})
}

/// Conformance HTTPRouteHTTPSListener: Gateway `same-namespace-with-https-listener` with
/// listeners `https` and `https-with-hostname` (`second-example.org`) on one port; route
/// `example.org` on the Gateway, a route without hostnames on `https-with-hostname`. Over TLS:
/// `example.org` and `second-example.org` reach infra-backend-v1, `unknown-example.org` is 404.
/// Conformance GatewaySecretReferenceGrantAllInNamespace (a grant to every Secret of `web`:
/// the listener is accepted, resolved, programmed) and GatewaySecretInvalidReferenceGrant (a
/// grant in `app` to another Secret than the one referred to: `ResolvedRefs: False,
/// RefNotPermitted`, HTTPRoute still listed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listeners_and_secret_grants() {
    let [p1, p2, p3] = ports();
    let names = ["example.org", "second-example.org", "unknown-example.org"];
    let (chain, key, roots) = issue_many(&names);
    let cert = |ns: &str| serde_json::to_value(secret(ns, "cert", &chain, &key)).unwrap();
    let mut r1 = route_to(
        "infra",
        "httproute-https-test",
        to_gateway("https-gw", None),
        json!([rule_to(None, "infra-backend-v1")]),
    );
    r1["spec"]["hostnames"] = json!(["example.org"]);
    let c = start(&[
        cert("infra"),
        cert("web"),
        cert("app"),
        secret_grant("web", None),
        secret_grant("app", Some("not-the-cert")),
        gateway(
            "https-gw",
            json!([
                https("https", p1, json!({"name": "cert"}), None),
                https(
                    "https-with-hostname",
                    p1,
                    json!({"name": "cert"}),
                    Some("second-example.org")
                )
            ]),
        ),
        r1,
        route_to(
            "infra",
            "no-hostname",
            to_gateway("https-gw", Some("https-with-hostname")),
            json!([rule_to(None, "infra-backend-v1")]),
        ),
        gateway(
            "all-in-namespace",
            json!([https(
                "https",
                p2,
                json!({"name": "cert", "namespace": "web"}),
                None
            )]),
        ),
        gateway(
            "invalid-grant",
            json!([https(
                "https",
                p3,
                json!({"name": "cert", "namespace": "app"}),
                None
            )]),
        ),
    ])
    .await;
    c.route_is(
        "infra",
        "httproute-https-test",
        "https-gw",
        "Accepted",
        ("True", "Accepted"),
    )
    .await;
    c.route_is(
        "infra",
        "no-hostname",
        "https-gw",
        "ResolvedRefs",
        ("True", "ResolvedRefs"),
    )
    .await;
    for (sni, host, want) in [
        (
            "example.org",
            "example.org",
            Some((200, "infra-backend-v1".to_owned())),
        ),
        (
            "second-example.org",
            "second-example.org",
            Some((200, "infra-backend-v1".to_owned())),
        ),
        (
            "unknown-example.org",
            "unknown-example.org",
            Some((404, String::new())),
        ),
        (
            "unknown-example.org",
            "second-example.org",
            Some((404, String::new())),
        ),
    ] {
        let ok = fake_kube::harness::poll(Duration::from_secs(10), || async {
            let got = tls_get(p1, sni, host, roots.clone()).await;
            got.map(|(s, b)| (s, if s == 404 { String::new() } else { b })) == want
        })
        .await;
        let got = tls_get(p1, sni, host, roots.clone()).await;
        assert!(ok, "sni {sni} host {host}: want {want:?}, got {got:?}");
    }
    listener_ok(&c, "all-in-namespace", "https", 0, 1).await;
    c.until(
        "all-in-namespace programmed",
        || {
            has(
                &listener(&c.fake, "all-in-namespace", "https"),
                "Programmed",
                "True",
            )
        },
        || c.gw("all-in-namespace"),
    )
    .await;
    c.until(
        "invalid-grant: RefNotPermitted",
        || {
            let l = listener(&c.fake, "invalid-grant", "https");
            cond(&l, "ResolvedRefs") == is("False", "RefNotPermitted") && kinds_http_route(&l)
        },
        || c.gw("invalid-grant"),
    )
    .await;
}

/// Conformance GatewayOverlappingTLSConfigHostnames: HTTPS listeners on one port whose
/// hostnames overlap (`foo.example.com`, `bar.bar.example.com`, `*.example.com`; `*.other.com`
/// and `*.bar.other.com`) are accepted and carry `OverlappingTLSConfig: True,
/// OverlappingHostnames`; `example.com` and `*.not.example` (no overlap) and a `foo.example.com`
/// on another port do not have the condition. Conformance
/// GatewaySecretMissingReferencedSecret: a certificateRef to a Secret that does not exist is
/// `ResolvedRefs: False, InvalidCertificateRef`, HTTPRoute still listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_hostnames_and_a_missing_secret() {
    let [p1, p2, p3] = ports();
    let (chain, key, _) = issue_many(&["foo.example.com"]);
    let cert = || json!({"name": "cert"});
    let c = start(&[
        serde_json::to_value(secret("infra", "cert", &chain, &key)).unwrap(),
        gateway(
            "overlapping-hostnames",
            json!([
                https("foo-example-https", p1, cert(), Some("foo.example.com")),
                https("bar-example-https", p1, cert(), Some("bar.bar.example.com")),
                https("wildcard-example-https", p1, cert(), Some("*.example.com")),
                https("wildcard-other-https", p1, cert(), Some("*.other.com")),
                https(
                    "wildcard-bar-other-https",
                    p1,
                    cert(),
                    Some("*.bar.other.com")
                ),
                https("not-overlapping-https", p1, cert(), Some("example.com")),
                https(
                    "not-overlapping-wildcard-https",
                    p1,
                    cert(),
                    Some("*.not.example")
                ),
                https(
                    "not-overlapping-other-port",
                    p2,
                    cert(),
                    Some("foo.example.com")
                ),
            ]),
        ),
        gateway(
            "missing-secret",
            json!([https("https", p3, json!({"name": "does-not-exist"}), None)]),
        ),
    ])
    .await;
    let overlapping = [
        "foo-example-https",
        "bar-example-https",
        "wildcard-example-https",
        "wildcard-other-https",
        "wildcard-bar-other-https",
    ];
    let gw = "overlapping-hostnames";
    c.until(
        "overlapping listeners flagged, the others not",
        || {
            let flagged = |name: &str| {
                let l = listener(&c.fake, gw, name);
                cond(&l, "Accepted") == is("True", "Accepted")
                    && cond(&l, "OverlappingTLSConfig") == is("True", "OverlappingHostnames")
            };
            let clear = |name: &str| {
                let l = listener(&c.fake, gw, name);
                cond(&l, "Accepted") == is("True", "Accepted")
                    && cond(&l, "OverlappingTLSConfig").is_none()
            };
            overlapping.iter().all(|n| flagged(n))
                && ["not-overlapping-https", "not-overlapping-wildcard-https"]
                    .iter()
                    .all(|n| clear(n))
                && clear("not-overlapping-other-port")
        },
        || c.gw(gw),
    )
    .await;
    c.until(
        "missing-secret: InvalidCertificateRef",
        || {
            let l = listener(&c.fake, "missing-secret", "https");
            cond(&l, "ResolvedRefs") == is("False", "InvalidCertificateRef") && kinds_http_route(&l)
        },
        || c.gw("missing-secret"),
    )
    .await;
    assert!(!has(
        &listener(&c.fake, "missing-secret", "https"),
        "Programmed",
        "True"
    ));
}

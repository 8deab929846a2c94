//! The core conformance test GatewayInvalidTLSConfiguration (feature `Gateway`) through the fake
//! API server and the real binary: an HTTPS listener whose only certificateRef is a Secret that
//! does not exist, a ref of another group or kind (to a usable Secret, so the ref's group or kind
//! is what is refused), or a Secret whose `tls.crt` / `tls.key` are not PEM is `ResolvedRefs:
//! False, InvalidCertificateRef`, still lists HTTPRoute among its `supportedKinds`, has no
//! attached routes and is not programmed; the Gateway's HTTP listener beside it serves its
//! route. Facts from the upstream suite (`conformance/tests/gateway-invalid-tls-configuration`),
//! names shortened as in `tests/gateway_api_core.rs`, each listener on its own free port.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::secret;
use gateway_support::conformance::{
    cond, gateway, has, http, is, issue_many, kinds_http_route, listener, ports, route_to, rule_to,
    start, to_gateway,
};
use serde_json::{Value, json};

/// The four Gateways of the scenario and the certificateRef of each one's `https` listener.
fn cases() -> [(&'static str, Value); 4] {
    [
        (
            "certificate-nonexistent-secret",
            json!({"group": "", "kind": "Secret", "name": "nonexistent-certificate"}),
        ),
        (
            "certificate-unsupported-group",
            json!({"group": "wrong.group.company.io", "kind": "Secret",
                   "name": "tls-validity-checks-certificate"}),
        ),
        (
            "certificate-unsupported-kind",
            json!({"group": "", "kind": "WrongKind", "name": "tls-validity-checks-certificate"}),
        ),
        (
            "certificate-malformed-secret",
            json!({"group": "", "kind": "Secret", "name": "malformed-certificate"}),
        ),
    ]
}

/// Conformance GatewayInvalidTLSConfiguration: each Gateway has listener `http` (routes from
/// the same namespace, a control route `<name>.example.com` to infra-backend-v1 on it) and
/// listener `https` (routes from all namespaces) with the case's certificateRef. Every `https`
/// listener: `ResolvedRefs: False, InvalidCertificateRef`, HTTPRoute in `supportedKinds`,
/// `attachedRoutes` 0, not `Programmed`; every control route is served on its `http` listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_certificate_refs_leave_the_listener_unresolved() {
    let p: [_; 8] = ports();
    let (chain, key, _) = issue_many(&["tls-validity.example.com"]);
    let mut objects = vec![
        serde_json::to_value(secret(
            "infra",
            "tls-validity-checks-certificate",
            &chain,
            &key,
        ))
        .unwrap(),
        // The upstream Secret's data: base64 of "Hello world\n" for both.
        serde_json::to_value(secret(
            "infra",
            "malformed-certificate",
            "Hello world\n",
            "Hello world\n",
        ))
        .unwrap(),
    ];
    for (i, (name, cert)) in cases().into_iter().enumerate() {
        let https = json!({"name": "https", "protocol": "HTTPS", "port": p[2 * i + 1].port(),
            "allowedRoutes": {"namespaces": {"from": "All"}},
            "tls": {"certificateRefs": [cert]}});
        objects.push(gateway(
            name,
            json!([http("http", p[2 * i], "Same"), https]),
        ));
        let mut control = route_to(
            "infra",
            &format!("{name}-control"),
            to_gateway(name, Some("http")),
            json!([rule_to(None, "infra-backend-v1")]),
        );
        control["spec"]["hostnames"] = json!([format!("{name}.example.com")]);
        objects.push(control);
    }
    let c = start(&objects).await;
    for (i, (name, _)) in cases().into_iter().enumerate() {
        c.until(
            &format!("{name}/https: InvalidCertificateRef, HTTPRoute kind, 0 attached"),
            || {
                let l = listener(&c.fake, name, "https");
                cond(&l, "ResolvedRefs") == is("False", "InvalidCertificateRef")
                    && kinds_http_route(&l)
                    && l["attachedRoutes"] == 0
                    && has(&l, "Programmed", "False")
            },
            || c.gw(name),
        )
        .await;
        let host = format!("{name}.example.com");
        c.expect(p[2 * i], &host, "/", 200, "infra-backend-v1")
            .await;
    }
}

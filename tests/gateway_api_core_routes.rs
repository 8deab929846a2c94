//! The core conformance tests of the Gateway API `HTTPRoute` feature that no other file
//! transcribes, through the fake API server and the real binary: HTTPRouteSimpleSameNamespace,
//! HTTPRouteCrossNamespace, HTTPRoutePathMatchOrder, HTTPRouteInvalidNonExistentBackendRef,
//! HTTPRouteInvalidBackendRefUnknownKind, HTTPRouteInvalidReferenceGrant,
//! HTTPRoutePartiallyInvalidViaInvalidReferenceGrant, HTTPRouteDisallowedKind,
//! HTTPRouteInvalidParentRefNotMatchingSectionName, HTTPRouteInvalidCrossNamespaceParentRef,
//! HTTPRouteObservedGenerationBump, HTTPRouteAllBackendsWeightZero and
//! HTTPRouteHostnamePrecedence (Services and weights: `tests/gateway_api_core_backends.rs`). Facts
//! from the upstream suite (`conformance/tests/`); names shortened (`infra` for
//! `gateway-conformance-infra`, `web`, `app`), each Gateway on its own free port, and where
//! several upstream scenarios share one Gateway here their routes get distinct hostnames.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use gateway_support::conformance::{
    Conf, gateway, http, listener, ports, route_cond, route_parent, route_to, rule_to, start,
};
use serde_json::{Value, json};

const ACCEPTED: (&str, &str) = ("True", "Accepted");
const RESOLVED: (&str, &str) = ("True", "ResolvedRefs");

/// A parentRef to Gateway `infra/name`.
fn parent(name: &str) -> Value {
    json!([{"name": name, "namespace": "infra"}])
}

/// `route` with `hostnames`.
fn with_hosts(mut route: Value, hosts: &[&str]) -> Value {
    route["spec"]["hostnames"] = json!(hosts);
    route
}

/// A rule matching path `ty` `value` to Service `infra/to`.
fn path_rule(ty: &str, value: &str, to: &str) -> Value {
    let mut r = rule_to(None, to);
    r["matches"] = json!([{"path": {"type": ty, "value": value}}]);
    r
}

/// A ReferenceGrant in `ns` letting HTTPRoutes of `infra` refer to Service `to`.
fn service_grant(ns: &str, to: &str) -> Value {
    json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
        "metadata": {"name": format!("grant-{to}"), "namespace": ns},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                           "namespace": "infra"}], "to": [{"group": "", "kind": "Service", "name": to}]}})
}

/// Conformance HTTPRouteSimpleSameNamespace, HTTPRouteCrossNamespace (a route in `web`
/// attached to Gateway `backend-namespaces`, whose listener admits namespaces labelled
/// `gateway-conformance: backend`), HTTPRoutePathMatchOrder (Exact before PathPrefix, longer
/// prefixes first, whatever the rule order), and the requests of the invalid backendRef
/// tests (each answers 500): HTTPRouteInvalidNonExistentBackendRef,
/// HTTPRouteInvalidBackendRefUnknownKind, HTTPRouteInvalidReferenceGrant (a grant for another
/// Service) and HTTPRoutePartiallyInvalidViaInvalidReferenceGrant (its valid rule served);
/// HTTPRouteAllBackendsWeightZero (every weight 0: refs resolved, 500).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_reach_their_backends() {
    let [same, backend, order] = ports();
    let v1 = || json!([rule_to(None, "infra-backend-v1")]);
    let order_rules = json!([
        path_rule("Exact", "/match", "infra-backend-v1"),
        path_rule("Exact", "/match/exact", "infra-backend-v2"),
        path_rule("Exact", "/match/exact/one", "infra-backend-v3"),
        path_rule("PathPrefix", "/match/", "infra-backend-v3"),
        path_rule("PathPrefix", "/match/prefix/", "infra-backend-v1"),
        path_rule("PathPrefix", "/match/prefix/one", "infra-backend-v2"),
    ]);
    let unknown_kind = json!([{"backendRefs": [{"group": "unknownkind.example.com",
        "kind": "UnknownKind", "name": "infra-backend-v1", "port": 80}]}]);
    let zero = |name: &str| json!({"name": name, "port": 80, "weight": 0});
    let all_zero = json!([{"backendRefs": [zero("infra-backend-v1"), zero("infra-backend-v2"),
        zero("infra-backend-v3")]}]);
    let mut partly = json!([
        rule_to(Some("app"), "app-backend-v1"),
        rule_to(None, "infra-backend-v1")
    ]);
    partly[0]["matches"] = json!([{"path": {"type": "PathPrefix", "value": "/invalid"}}]);
    let c = start(&[
        gateway("same-namespace", json!([http("http", same, "Same")])),
        gateway(
            "backend-namespaces",
            json!([http("http", backend, "Selector")]),
        ),
        gateway("order", json!([http("http", order, "Same")])),
        with_hosts(
            route_to("infra", "simple", parent("same-namespace"), v1()),
            &["simple.example"],
        ),
        route_to(
            "web",
            "cross-namespace",
            parent("backend-namespaces"),
            json!([rule_to(None, "web-backend")]),
        ),
        route_to("infra", "path-matching-order", parent("order"), order_rules),
        with_hosts(
            route_to(
                "infra",
                "nonexistent",
                parent("same-namespace"),
                json!([rule_to(None, "nonexistent")]),
            ),
            &["nonexistent.example"],
        ),
        with_hosts(
            route_to(
                "infra",
                "unknown-kind",
                parent("same-namespace"),
                unknown_kind,
            ),
            &["unknown-kind.example"],
        ),
        service_grant("web", "not-web-backend"),
        with_hosts(
            route_to(
                "infra",
                "invalid-grant",
                parent("same-namespace"),
                json!([rule_to(Some("web"), "web-backend")]),
            ),
            &["invalid-grant.example"],
        ),
        with_hosts(
            route_to("infra", "partly", parent("same-namespace"), partly),
            &["partly.example"],
        ),
        with_hosts(
            route_to("infra", "weight-zero", parent("same-namespace"), all_zero),
            &["weight-zero.example"],
        ),
    ])
    .await;
    c.route_is("infra", "simple", "same-namespace", "Accepted", ACCEPTED)
        .await;
    c.route_is(
        "infra",
        "simple",
        "same-namespace",
        "ResolvedRefs",
        RESOLVED,
    )
    .await;
    c.expect(same, "simple.example", "/", 200, "infra-backend-v1")
        .await;
    let cross = ("web", "cross-namespace", "backend-namespaces");
    c.route_is(cross.0, cross.1, cross.2, "Accepted", ACCEPTED)
        .await;
    c.route_is(cross.0, cross.1, cross.2, "ResolvedRefs", RESOLVED)
        .await;
    c.expect(backend, "any.example", "/", 200, "web-backend")
        .await;
    c.route_is(
        "infra",
        "path-matching-order",
        "order",
        "ResolvedRefs",
        RESOLVED,
    )
    .await;
    for (path, to) in [
        ("/match/exact/one", "infra-backend-v3"),
        ("/match/exact", "infra-backend-v2"),
        ("/match", "infra-backend-v1"),
        ("/match/prefix/one/any", "infra-backend-v2"),
        ("/match/prefix/any", "infra-backend-v1"),
        ("/match/any", "infra-backend-v3"),
    ] {
        c.expect(order, "order.example", path, 200, to).await;
    }
    for (name, reason) in [
        ("nonexistent", "BackendNotFound"),
        ("unknown-kind", "InvalidKind"),
        ("invalid-grant", "RefNotPermitted"),
        ("partly", "RefNotPermitted"),
    ] {
        c.route_is("infra", name, "same-namespace", "Accepted", ACCEPTED)
            .await;
        c.route_is(
            "infra",
            name,
            "same-namespace",
            "ResolvedRefs",
            ("False", reason),
        )
        .await;
        let path = if name == "partly" { "/invalid" } else { "/" };
        c.expect(same, &format!("{name}.example"), path, 500, "")
            .await;
    }
    c.expect(same, "partly.example", "/", 200, "infra-backend-v1")
        .await;
    let zero = ("infra", "weight-zero", "same-namespace");
    c.route_is(zero.0, zero.1, zero.2, "ResolvedRefs", RESOLVED)
        .await;
    c.expect(same, "weight-zero.example", "/", 500, "").await;
}

/// Whether every condition of our entry for `infra/gw` on route `ns/name` carries `generation`.
fn route_observed(c: &Conf, ns: &str, name: &str, gw: &str, generation: i64) -> bool {
    let p = route_parent(&c.fake, "HTTPRoute", ns, name, gw);
    let cs = p["conditions"].as_array().cloned().unwrap_or_default();
    !cs.is_empty() && cs.iter().all(|c| c["observedGeneration"] == generation)
}

/// Conformance HTTPRouteDisallowedKind (a Gateway whose only listener takes TLSRoutes:
/// `Accepted: False, NotAllowedByListeners`, refs resolved, no route attached),
/// HTTPRouteInvalidParentRefNotMatchingSectionName (`NoMatchingParent`),
/// HTTPRouteInvalidCrossNamespaceParentRef (a route of `web` to a Gateway admitting its own
/// namespace only: `NotAllowedByListeners`, nothing attached) and
/// HTTPRouteObservedGenerationBump (a spec change: the conditions carry the new generation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_parents_and_generations() {
    let [tls, same] = ports();
    let tls_only = json!([{"name": "tls", "protocol": "TLS", "port": tls.port(),
        "tls": {"mode": "Passthrough"},
        "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": [{"kind": "TLSRoute"}]}}]);
    let mut section = parent("same-namespace");
    section[0]["sectionName"] = json!("unknownsection");
    let v1 = || json!([rule_to(None, "infra-backend-v1")]);
    let c = start(&[
        gateway("tlsroutes-only", tls_only),
        gateway("same-namespace", json!([http("http", same, "Same")])),
        route_to("infra", "disallowed-kind", parent("tlsroutes-only"), v1()),
        route_to("infra", "section", section, v1()),
        route_to(
            "web",
            "cross-parent",
            parent("same-namespace"),
            json!([rule_to(None, "web-backend")]),
        ),
        with_hosts(
            route_to("infra", "bump", parent("same-namespace"), v1()),
            &["bump.example"],
        ),
    ])
    .await;
    let refused = ("False", "NotAllowedByListeners");
    c.route_is(
        "infra",
        "disallowed-kind",
        "tlsroutes-only",
        "Accepted",
        refused,
    )
    .await;
    c.route_is(
        "infra",
        "disallowed-kind",
        "tlsroutes-only",
        "ResolvedRefs",
        RESOLVED,
    )
    .await;
    c.route_is(
        "infra",
        "section",
        "same-namespace",
        "Accepted",
        ("False", "NoMatchingParent"),
    )
    .await;
    c.route_is("web", "cross-parent", "same-namespace", "Accepted", refused)
        .await;
    c.until(
        "bump at generation 1",
        || route_observed(&c, "infra", "bump", "same-namespace", 1),
        || route_parent(&c.fake, "HTTPRoute", "infra", "bump", "same-namespace"),
    )
    .await;
    // Only `bump` is attached: the refused routes count nowhere.
    assert_eq!(
        listener(&c.fake, "tlsroutes-only", "tls")["attachedRoutes"],
        0
    );
    assert_eq!(
        listener(&c.fake, "same-namespace", "http")["attachedRoutes"],
        1
    );
    let mut r = c.fake.get("HTTPRoute", "infra", "bump").unwrap();
    r["spec"]["rules"][0]["matches"] = json!([{"path": {"type": "PathPrefix", "value": "/bump"}}]);
    c.fake.apply(&r);
    c.until(
        "bump at generation 2",
        || route_observed(&c, "infra", "bump", "same-namespace", 2),
        || route_parent(&c.fake, "HTTPRoute", "infra", "bump", "same-namespace"),
    )
    .await;
    assert_eq!(
        route_cond(&c.fake, "infra", "bump", "same-namespace", "Accepted"),
        Some(("True".into(), "Accepted".into()))
    );
    c.expect(same, "bump.example", "/bump", 200, "infra-backend-v1")
        .await;
}

/// GET `path` with `host` on `port`: the whole response (head and body), or "" on failure.
async fn raw(port: std::net::SocketAddr, host: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port.port()));
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    let mut out = String::new();
    if s.write_all(req.as_bytes()).await.is_ok() {
        let _ = s.read_to_string(&mut out).await;
    }
    out
}

/// Conformance HTTPRouteHostnamePrecedence: a route without hostnames and one for `test.com`
/// (adding the response field `test: true`) both match `/hostname-precedence`; a request for
/// `test.com` is served by the one naming its host (the field is there), any other host by
/// the other (no field).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_naming_the_host_wins() {
    let [port] = ports();
    let mut specific = path_rule("PathPrefix", "/hostname-precedence", "infra-backend-v1");
    specific["filters"] = json!([{"type": "ResponseHeaderModifier",
        "responseHeaderModifier": {"add": [{"name": "test", "value": "true"}]}}]);
    let c = start(&[
        gateway("same-namespace", json!([http("http", port, "Same")])),
        route_to(
            "infra",
            "hostname-precedence-without-specific",
            parent("same-namespace"),
            json!([path_rule(
                "PathPrefix",
                "/hostname-precedence",
                "infra-backend-v1"
            )]),
        ),
        with_hosts(
            route_to(
                "infra",
                "hostname-precedence-with-specific",
                parent("same-namespace"),
                json!([specific]),
            ),
            &["test.com"],
        ),
    ])
    .await;
    for name in [
        "hostname-precedence-without-specific",
        "hostname-precedence-with-specific",
    ] {
        c.route_is("infra", name, "same-namespace", "ResolvedRefs", RESOLVED)
            .await;
    }
    let ok = fake_kube::harness::poll(std::time::Duration::from_secs(10), || async {
        raw(port, "test.com", "/hostname-precedence")
            .await
            .contains("\r\ntest: true\r\n")
    })
    .await;
    assert!(
        ok,
        "{}",
        raw(port, "test.com", "/hostname-precedence").await
    );
    let other = raw(port, "other.example", "/hostname-precedence").await;
    assert!(
        other.starts_with("HTTP/1.1 200") && other.ends_with("infra-backend-v1"),
        "{other}"
    );
    assert!(!other.to_ascii_lowercase().contains("\r\ntest:"), "{other}");
}

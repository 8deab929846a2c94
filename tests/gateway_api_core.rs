//! The core conformance tests of the Gateway API `Gateway` feature that no other file
//! transcribes, through the fake API server and the real binary: GatewayWithAttachedRoutes,
//! GatewayObservedGenerationBump, GatewayModifyListeners, GatewayInvalidRouteKind,
//! GatewayListenerUnsupportedProtocol and GatewayUpdateListenerHostname (HTTPS listeners:
//! `tests/gateway_api_core_https.rs`). Facts from the upstream suite (kubernetes-sigs/gateway-api
//! `conformance/tests/`), names shortened (`infra` for `gateway-conformance-infra`, ...), each
//! Gateway on its own free port instead of 80 / 443.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::secret;
use gateway_support::conformance::{
    Conf, cond, gateway, has, http, is, issue_many, kinds_http_route, listener, listener_ok, ports,
    route_to, rule_to, start, tls_get, to_gateway,
};
use serde_json::{Value, json};
use std::time::Duration;

/// Selector listener of conformance GatewayWithAttachedRoutes (kinds HTTPRoute, the route's
/// namespace by `kubernetes.io/metadata.name`).
fn selector_http(port: std::net::SocketAddr) -> Value {
    json!([{"name": "http", "protocol": "HTTP", "port": port.port(),
        "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}], "namespaces": {"from": "Selector",
            "selector": {"matchLabels": {"kubernetes.io/metadata.name": "infra"}}}}}])
}

/// Conformance GatewayWithAttachedRoutes: one route, two routes, and an HTTPS listener whose
/// certificate Secret does not exist (not programmed, refs unresolved) still counting the
/// route attached to it, whose own backend is missing (route `ResolvedRefs: False`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attached_routes_are_counted() {
    let [p1, p2, p3] = ports();
    let tls = json!([{"name": "tls", "protocol": "HTTPS", "port": p3.port(),
        "allowedRoutes": {"namespaces": {"from": "Same"}},
        "tls": {"mode": "Terminate", "certificateRefs": [{"name": "does-not-exist"}]}}]);
    let c = start(&[
        gateway("one", selector_http(p1)),
        gateway("two", selector_http(p2)),
        gateway("unresolved", tls),
        route_to(
            "infra",
            "http-route-1",
            to_gateway("one", None),
            json!([rule_to(None, "infra-backend-v1")]),
        ),
        route_to(
            "infra",
            "http-route-2",
            to_gateway("two", None),
            json!([rule_to(None, "infra-backend-v1")]),
        ),
        route_to(
            "infra",
            "http-route-3",
            to_gateway("two", None),
            json!([rule_to(None, "infra-backend-v1")]),
        ),
        route_to(
            "infra",
            "http-route-4",
            to_gateway("unresolved", Some("tls")),
            json!([rule_to(None, "does-not-exist")]),
        ),
    ])
    .await;
    listener_ok(&c, "one", "http", 1, 1).await;
    listener_ok(&c, "two", "http", 2, 1).await;
    c.until(
        "unresolved/tls: not programmed, refs unresolved, 1 attached",
        || {
            let l = listener(&c.fake, "unresolved", "tls");
            has(&l, "Programmed", "False")
                && has(&l, "ResolvedRefs", "False")
                && kinds_http_route(&l)
                && l["attachedRoutes"] == 1
        },
        || listener(&c.fake, "unresolved", "tls"),
    )
    .await;
    let resolved = ("False", "BackendNotFound");
    c.route_is(
        "infra",
        "http-route-4",
        "unresolved",
        "ResolvedRefs",
        resolved,
    )
    .await;
}

/// The conditions of Gateway `infra/gw` and of its listeners all carry `generation`.
fn all_observed(c: &Conf, gw: &str, generation: i64) -> bool {
    let Some(g) = c.fake.get("Gateway", "infra", gw) else {
        return false;
    };
    let mut holders = vec![g["status"].clone()];
    holders.extend(
        g["status"]["listeners"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    g["metadata"]["generation"] == generation
        && holders.iter().all(|h| {
            let cs = h["conditions"].as_array().cloned().unwrap_or_default();
            !cs.is_empty() && cs.iter().all(|c| c["observedGeneration"] == generation)
        })
}

/// Applies `gw` with its listeners changed by `edit` (status kept, spec changed).
fn edit_listeners(c: &Conf, gw: &str, edit: impl FnOnce(&mut Vec<Value>)) {
    let mut g = c.fake.get("Gateway", "infra", gw).unwrap();
    let mut ls = g["spec"]["listeners"].as_array().cloned().unwrap();
    edit(&mut ls);
    g["spec"]["listeners"] = json!(ls);
    c.fake.apply(&g);
}

/// Conformance GatewayObservedGenerationBump: a listener added to the spec bumps the
/// generation, and every condition (the Gateway's and each listener's) then carries it.
/// Conformance GatewayModifyListeners: a listener added (`http` with hostname
/// `data.test.com`, routes from All namespaces) is accepted, takes the route attached to the
/// whole Gateway and serves it; a listener removed leaves the status and stops serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_added_and_removed_with_the_generation() {
    let [p1, p2, p3, p4, p5] = ports();
    let (chain, key, roots) = issue_many(&["secure.example"]);
    let https = |port: std::net::SocketAddr| {
        json!({"name": "https", "protocol": "HTTPS", "port": port.port(),
            "allowedRoutes": {"namespaces": {"from": "Same"}},
            "tls": {"certificateRefs": [{"name": "cert"}]}})
    };
    let c = start(&[
        serde_json::to_value(secret("infra", "cert", &chain, &key)).unwrap(),
        gateway("bump", json!([http("http", p1, "Same")])),
        gateway("add", json!([https(p2)])),
        gateway("remove", json!([https(p3), http("http", p4, "All")])),
        route_to(
            "infra",
            "r-add",
            to_gateway("add", None),
            json!([rule_to(None, "infra-backend-v1")]),
        ),
        route_to(
            "infra",
            "r-remove",
            to_gateway("remove", None),
            json!([rule_to(None, "infra-backend-v2")]),
        ),
    ])
    .await;
    c.until(
        "bump at generation 1",
        || all_observed(&c, "bump", 1),
        || c.gw("bump"),
    )
    .await;
    edit_listeners(&c, "bump", |ls| {
        let mut alt = http("alternate", p1, "All");
        alt["hostname"] = json!("foo.com");
        ls.push(alt);
    });
    c.until(
        "bump at generation 2",
        || all_observed(&c, "bump", 2),
        || c.gw("bump"),
    )
    .await;

    listener_ok(&c, "add", "https", 1, 1).await;
    edit_listeners(&c, "add", |ls| {
        let mut l = http("http", p5, "All");
        l["hostname"] = json!("data.test.com");
        ls.push(l);
    });
    listener_ok(&c, "add", "https", 1, 2).await;
    listener_ok(&c, "add", "http", 1, 2).await;
    c.until(
        "add at generation 2",
        || all_observed(&c, "add", 2),
        || c.gw("add"),
    )
    .await;
    c.expect(p5, "data.test.com", "/", 200, "infra-backend-v1")
        .await;

    listener_ok(&c, "remove", "https", 1, 2).await;
    let served = tls_get(p3, "secure.example", "secure.example", roots.clone()).await;
    assert_eq!(served, Some((200, "infra-backend-v2".into())));
    edit_listeners(&c, "remove", |ls| ls.retain(|l| l["name"] == "http"));
    listener_ok(&c, "remove", "http", 1, 1).await;
    c.until(
        "remove at generation 2",
        || all_observed(&c, "remove", 2),
        || c.gw("remove"),
    )
    .await;
    c.expect(p4, "any.example", "/", 200, "infra-backend-v2")
        .await;
    let closed = fake_kube::harness::poll(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", p3.port()))
            .await
            .is_err()
    })
    .await;
    assert!(closed, "the removed listener's port still accepts");
}

/// Conformance GatewayInvalidRouteKind: a listener whose `allowedRoutes.kinds` names only
/// `InvalidRoute` has no `supportedKinds`, `ResolvedRefs: False, InvalidRouteKinds` and no
/// routes; one naming `InvalidRoute` and `HTTPRoute` lists HTTPRoute, has the same condition,
/// and takes the control HTTPRoute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_route_kinds() {
    let [p1, p2] = ports();
    let kinds = |port: std::net::SocketAddr, kinds: Value| {
        json!([{"name": "http", "protocol": "HTTP", "port": port.port(),
            "allowedRoutes": {"namespaces": {"from": "All"}, "kinds": kinds}}])
    };
    let mut control = route_to(
        "infra",
        "control",
        to_gateway("supported-and-invalid", Some("http")),
        json!([rule_to(None, "infra-backend-v1")]),
    );
    control["spec"]["hostnames"] = json!(["supported-route-kind.example.com"]);
    let c = start(&[
        gateway("only-invalid", kinds(p1, json!([{"kind": "InvalidRoute"}]))),
        gateway(
            "supported-and-invalid",
            kinds(p2, json!([{"kind": "InvalidRoute"}, {"kind": "HTTPRoute"}])),
        ),
        control,
    ])
    .await;
    let invalid = is("False", "InvalidRouteKinds");
    c.until(
        "only-invalid/http",
        || {
            let l = listener(&c.fake, "only-invalid", "http");
            cond(&l, "ResolvedRefs") == invalid
                && l["supportedKinds"] == json!([])
                && l["attachedRoutes"] == 0
        },
        || listener(&c.fake, "only-invalid", "http"),
    )
    .await;
    c.until(
        "supported-and-invalid/http",
        || {
            let l = listener(&c.fake, "supported-and-invalid", "http");
            cond(&l, "ResolvedRefs") == invalid && kinds_http_route(&l) && l["attachedRoutes"] == 1
        },
        || listener(&c.fake, "supported-and-invalid", "http"),
    )
    .await;
    c.expect(
        p2,
        "supported-route-kind.example.com",
        "/",
        200,
        "infra-backend-v1",
    )
    .await;
}

/// (status, reason) of the Gateway's own condition `ty`.
fn gateway_cond(c: &Conf, gw: &str, ty: &str) -> Option<(String, String)> {
    cond(&c.gw(gw)["status"], ty)
}

/// Conformance GatewayListenerUnsupportedProtocol: a Gateway whose only listener has a protocol
/// we do not serve is `Accepted: False, ListenersNotValid`, the listener `Accepted: False,
/// UnsupportedProtocol` with no `supportedKinds`; with an HTTP listener beside it the Gateway
/// is `Accepted: True, ListenersNotValid` and the HTTP listener accepted.
/// Conformance GatewayUpdateListenerHostname: a route refused `NoMatchingListenerHostname` is
/// accepted once the listener's hostname is changed to its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocols_and_a_hostname_update() {
    let [p1, p2, p3, p4] = ports();
    let invalid = |port: std::net::SocketAddr| json!({"name": "invalid", "protocol": "example.com/invalid", "port": port.port()});
    let mut hostname = http("http", p4, "Same");
    hostname["hostname"] = json!("rejected.example.com");
    let mut r = route_to(
        "infra",
        "update-listener-hostname",
        to_gateway("update-hostname", None),
        json!([rule_to(None, "infra-backend-v1")]),
    );
    r["spec"]["hostnames"] = json!(["accepted.example.com"]);
    let c = start(&[
        gateway("only-unsupported", json!([invalid(p1)])),
        gateway(
            "supported-and-unsupported",
            json!([http("http", p2, "Same"), invalid(p3)]),
        ),
        gateway("update-hostname", json!([hostname])),
        r,
    ])
    .await;
    let not_valid = |status: &str| is(status, "ListenersNotValid");
    c.until(
        "only-unsupported: not accepted",
        || {
            let l = listener(&c.fake, "only-unsupported", "invalid");
            gateway_cond(&c, "only-unsupported", "Accepted") == not_valid("False")
                && cond(&l, "Accepted") == is("False", "UnsupportedProtocol")
                && l["supportedKinds"] == json!([])
                && l["attachedRoutes"] == 0
        },
        || c.gw("only-unsupported"),
    )
    .await;
    c.until(
        "supported-and-unsupported: accepted",
        || {
            let ok = listener(&c.fake, "supported-and-unsupported", "http");
            let bad = listener(&c.fake, "supported-and-unsupported", "invalid");
            gateway_cond(&c, "supported-and-unsupported", "Accepted") == not_valid("True")
                && cond(&ok, "Accepted") == is("True", "Accepted")
                && kinds_http_route(&ok)
                && cond(&bad, "Accepted") == is("False", "UnsupportedProtocol")
                && bad["supportedKinds"] == json!([])
        },
        || c.gw("supported-and-unsupported"),
    )
    .await;
    let route = ("infra", "update-listener-hostname", "update-hostname");
    let refused = ("False", "NoMatchingListenerHostname");
    c.route_is(route.0, route.1, route.2, "Accepted", refused)
        .await;
    edit_listeners(&c, "update-hostname", |ls| {
        ls[0]["hostname"] = json!("accepted.example.com");
    });
    c.route_is(route.0, route.1, route.2, "Accepted", ("True", "Accepted"))
        .await;
    listener_ok(&c, "update-hostname", "http", 1, 1).await;
    c.until(
        "update-hostname at generation 2",
        || all_observed(&c, "update-hostname", 2),
        || c.gw("update-hostname"),
    )
    .await;
    c.expect(p4, "accepted.example.com", "/", 200, "infra-backend-v1")
        .await;
}

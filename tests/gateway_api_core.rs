//! The core conformance tests of the Gateway API `Gateway` feature that no other file
//! transcribes, through the fake API server and the real binary: GatewayWithAttachedRoutes,
//! GatewayObservedGenerationBump, GatewayModifyListeners, GatewayInvalidRouteKind,
//! GatewaySecretReferenceGrantAllInNamespace, GatewaySecretInvalidReferenceGrant and
//! HTTPRouteHTTPSListener. Facts from the upstream suite (kubernetes-sigs/gateway-api
//! `conformance/tests/`), names shortened (`infra` for `gateway-conformance-infra`, ...), each
//! Gateway on its own free port instead of 80 / 443.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::objects::secret;
use gateway_support::conformance::{
    Conf, cond, gateway, http, is, issue_many, listener, ports, route_to, rule_to, start, tls_get,
};
use serde_json::{Value, json};
use std::time::Duration;

/// Whether listener status `l` has (`ty`, `status`) conditions (any reason).
fn has(l: &Value, ty: &str, status: &str) -> bool {
    cond(l, ty).is_some_and(|c| c.0 == status)
}

/// Whether listener status `l` lists HTTPRoute among its `supportedKinds`.
fn kinds_http_route(l: &Value) -> bool {
    let kinds = l["supportedKinds"].as_array().cloned().unwrap_or_default();
    kinds.contains(&json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}))
}

/// The number of listeners in the status of Gateway `infra/gw`.
fn listener_count(c: &Conf, gw: &str) -> usize {
    let g = c.fake.get("Gateway", "infra", gw).unwrap_or_default();
    g["status"]["listeners"].as_array().map_or(0, Vec::len)
}

/// Waits until listener `name` of `gw` is Accepted, ResolvedRefs, lists HTTPRoute and has
/// `attached` routes, and `gw` has `count` listeners.
async fn listener_ok(c: &Conf, gw: &str, name: &str, attached: i64, count: usize) {
    let what = format!("{gw}/{name}: accepted, resolved, {attached} attached");
    c.until(
        &what,
        || {
            let l = listener(&c.fake, gw, name);
            has(&l, "Accepted", "True")
                && has(&l, "ResolvedRefs", "True")
                && kinds_http_route(&l)
                && l["attachedRoutes"] == attached
                && listener_count(c, gw) == count
        },
        || c.gw(gw),
    )
    .await;
}

/// Selector listener of conformance GatewayWithAttachedRoutes (kinds HTTPRoute, the route's
/// namespace by `kubernetes.io/metadata.name`).
fn selector_http(port: std::net::SocketAddr) -> Value {
    json!([{"name": "http", "protocol": "HTTP", "port": port.port(),
        "allowedRoutes": {"kinds": [{"kind": "HTTPRoute"}], "namespaces": {"from": "Selector",
            "selector": {"matchLabels": {"kubernetes.io/metadata.name": "infra"}}}}}])
}

fn to_gateway(name: &str, section: Option<&str>) -> Value {
    let mut p = json!({"kind": "Gateway", "name": name, "namespace": "infra"});
    if let Some(s) = section {
        p["sectionName"] = json!(s);
    }
    json!([p])
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

//! HTTPRoutes through the fake API server and the real binary, on a Gateway listener opened
//! at run time: parents (sectionName, allowedRoutes), hostname intersection, path / header /
//! query / method matches, weighted backendRefs, the 500 cases (missing Service, other kinds,
//! cross-namespace refs without a ReferenceGrant, filters not served yet), ReferenceGrant,
//! matching across routes, and the conflict rule (the older of two equal HTTPRoutes wins).
//! Each problem is checked in `switchyard_kube_skipped_total{kind="HTTPRoute",reason}`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use gateway_support::{route, setup, to};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_reaches_its_service_on_its_hosts_only() {
    let s = setup(None, "Same").await;
    s.fake
        .apply(&route("infra", "web", &["web.example"], to("v1")));
    s.expect("web.example", "/any", "", 200, "v1").await;
    s.expect("other.example", "/", "", 404, "").await;
    s.fake.delete("HTTPRoute", "infra", "web");
    s.expect("web.example", "/any", "", 404, "").await;
}

/// Conformance HTTPRouteHostnameIntersection (listener `*.wildcard.io`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostnames_are_intersected_with_the_listeners() {
    let s = setup(Some("*.wildcard.io"), "Same").await;
    let hosts = ["foo.wildcard.io", "non.matching.com"];
    s.fake.apply(&route("infra", "a", &hosts, to("v1")));
    s.fake
        .apply(&route("infra", "b", &["wildcard.io"], to("v2")));
    s.expect("foo.wildcard.io", "/", "", 200, "v1").await;
    s.expect("non.matching.com", "/", "", 404, "").await;
    s.expect("wildcard.io", "/", "", 404, "").await;
    assert_eq!(s.skipped("no_matching_listener_hostname").await, 1.0);
    // No hostnames: the listener's.
    s.fake.apply(&route("infra", "c", &[], to("v2")));
    s.expect("bar.wildcard.io", "/", "", 200, "v2").await;
}

/// Conformance HTTPRouteMatching, HTTPRouteExactPathMatching, HTTPRouteHeaderMatching,
/// HTTPRouteQueryParamMatching, HTTPRouteMethodMatching.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_pick_the_rule() {
    let s = setup(None, "Same").await;
    let rules = json!([
        {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
         "backendRefs": [{"name": "v1", "port": 80}]},
        {"matches": [{"path": {"type": "Exact", "value": "/exact"}},
                     {"headers": [{"name": "Version", "value": "two"}]},
                     {"queryParams": [{"name": "animal", "value": "whale"}]},
                     {"method": "POST", "path": {"value": "/"}}],
         "backendRefs": [{"name": "v2", "port": 80}]},
    ]);
    s.fake.apply(&route("infra", "m", &["m.example"], rules));
    s.expect("m.example", "/", "", 200, "v1").await;
    s.expect("m.example", "/exact", "", 200, "v2").await;
    s.expect("m.example", "/exact/more", "", 200, "v1").await;
    s.expect("m.example", "/x", "version: two\r\n", 200, "v2")
        .await;
    s.expect("m.example", "/x", "version: one\r\n", 200, "v1")
        .await;
    s.expect("m.example", "/x?animal=whale", "", 200, "v2")
        .await;
    s.expect("m.example", "/x?animal=dolphin", "", 200, "v1")
        .await;
}

/// Conformance HTTPRouteMatchingAcrossRoutes: a request is matched against the rules of
/// every route whose hostnames cover its host, in match precedence (`example.com/v2` goes to
/// the `*.com` route's `/v2`, not to the `example.com` route's `/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_are_ordered_across_routes_covering_the_host() {
    let s = setup(None, "Same").await;
    let part1 = json!([{"matches": [{"path": {"type": "PathPrefix", "value": "/"}},
                                    {"headers": [{"name": "version", "value": "one"}]}],
                       "backendRefs": [{"name": "v1", "port": 80}]}]);
    let part2 = json!([{"matches": [{"path": {"type": "PathPrefix", "value": "/v2"}},
                                    {"headers": [{"name": "version", "value": "two"}]}],
                       "backendRefs": [{"name": "v2", "port": 80}]}]);
    let hosts = ["example.com", "example.net"];
    s.fake
        .apply(&route("infra", "matching-part1", &hosts, part1));
    s.fake
        .apply(&route("infra", "matching-part2", &["*.com"], part2));
    for (host, path, extra, want) in [
        ("example.com", "/", "", "v1"),
        ("example.com", "/example", "", "v1"),
        ("example.net", "/example", "", "v1"),
        ("example.com", "/example", "version: one\r\n", "v1"),
        ("example.com", "/v2", "", "v2"),
        ("example.net", "/v2", "", "v1"),
        ("example.com", "/v2/example", "", "v2"),
        ("example.com", "/", "version: two\r\n", "v2"),
    ] {
        s.expect(host, path, extra, 200, want).await;
    }
    assert_eq!(s.skipped("route_conflict").await, 0.0);
}

/// Conformance HTTPRouteWeight (a 0 weight never gets requests), and the 500 cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_refs_weights_and_unusable_refs() {
    let s = setup(None, "Same").await;
    let rules = json!([{"backendRefs": [{"name": "v1", "port": 80, "weight": 0},
                                        {"name": "v2", "port": 80, "weight": 3}]}]);
    s.fake.apply(&route("infra", "w", &["w.example"], rules));
    for _ in 0..5 {
        s.expect("w.example", "/", "", 200, "v2").await;
    }
    s.fake
        .apply(&route("infra", "missing", &["missing.example"], to("nope")));
    s.expect("missing.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("backend_not_found").await, 1.0);
    let kind = json!([{"backendRefs": [{"kind": "ConfigMap", "name": "v1", "port": 80}]}]);
    s.fake
        .apply(&route("infra", "kind", &["kind.example"], kind));
    s.expect("kind.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("invalid_kind").await, 1.0);
    let filter = json!([{"filters": [{"type": "ExtensionRef", "extensionRef": {"name": "x"}}],
                         "backendRefs": [{"name": "v1", "port": 80}]}]);
    s.fake
        .apply(&route("infra", "filter", &["filter.example"], filter));
    s.expect("filter.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("unsupported_filter").await, 1.0);
}

/// Conformance HTTPRouteInvalidCrossNamespaceBackendRef and HTTPRouteReferenceGrant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_namespace_backends_need_a_reference_grant() {
    let s = setup(None, "Same").await;
    let rules = json!([{"backendRefs": [{"name": "v3", "namespace": "apps", "port": 80}]}]);
    s.fake.apply(&route("infra", "x", &["x.example"], rules));
    s.expect("x.example", "/", "", 500, "").await;
    assert_eq!(s.skipped("ref_not_permitted").await, 1.0);
    s.fake
        .apply(&json!({"apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant", "metadata": {"name": "g", "namespace": "apps"},
        "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                           "namespace": "infra"}],
                 "to": [{"group": "", "kind": "Service", "name": "v3"}]}}));
    s.expect("x.example", "/", "", 200, "v3").await;
    s.fake.delete("ReferenceGrant", "apps", "g");
    s.expect("x.example", "/", "", 500, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_admit_by_namespace_and_section_name() {
    let s = setup(None, "Same").await;
    s.fake
        .apply(&route("apps", "other-ns", &["o.example"], to("v3")));
    let mut wrong = route("infra", "section", &["s.example"], to("v1"));
    wrong["spec"]["parentRefs"][0]["sectionName"] = json!("https");
    s.fake.apply(&wrong);
    let mut right = route("infra", "named", &["n.example"], to("v1"));
    right["spec"]["parentRefs"][0]["sectionName"] = json!("http");
    s.fake.apply(&right);
    s.expect("n.example", "/", "", 200, "v1").await;
    s.expect("o.example", "/", "", 404, "").await;
    s.expect("s.example", "/", "", 404, "").await;
    assert_eq!(s.skipped("not_allowed_by_listeners").await, 1.0);
    assert_eq!(s.skipped("no_matching_parent").await, 1.0);
}

/// Two HTTPRoutes with the same host and path on one listener: the older wins, the later is
/// reported. (An Ingress never conflicts with an HTTPRoute: they are served on different
/// listeners, `tests/gateway_api_isolation.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_namespaces_and_the_older_route_wins_a_conflict() {
    let s = setup(None, "All").await;
    s.fake.apply(&route("apps", "r", &["o.example"], to("v3")));
    s.expect("o.example", "/", "", 200, "v3").await;
    s.fake
        .apply(&route("infra", "late", &["o.example"], to("v2")));
    let reported = poll(Duration::from_secs(10), || async {
        s.skipped("route_conflict").await == 1.0
    })
    .await;
    assert!(reported, "log:\n{}", s.proxy.log());
    s.expect("o.example", "/", "", 200, "v3").await;
}

/// A listener admitting namespaces by label (`allowedRoutes.namespaces.from: Selector`): a
/// route is served once its Namespace carries the label.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_selector_admits_by_labels() {
    let s = setup(None, "Selector").await;
    let mut gw = s.fake.get("Gateway", "infra", "gw").unwrap();
    gw["spec"]["listeners"][0]["allowedRoutes"]["namespaces"]["selector"] =
        json!({"matchLabels": {"team": "apps"}});
    s.fake.apply(&gw);
    s.fake
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}));
    s.fake
        .apply(&route("apps", "r", &["sel.example"], to("v3")));
    s.expect("sel.example", "/", "", 404, "").await;
    s.fake
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "apps", "labels": {"team": "apps"}}}));
    s.expect("sel.example", "/", "", 200, "v3").await;
}

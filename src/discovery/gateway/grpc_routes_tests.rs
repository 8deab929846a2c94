//! Table tests for the GRPCRoute → HTTPRoute rewrite and the h2c backends.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use serde_json::json;

fn method(kind: Option<&str>, service: Option<&str>, m: Option<&str>) -> (String, String) {
    let p = path(&GrpcMethodMatch {
        kind: kind.map(str::to_owned),
        service: service.map(str::to_owned),
        method: m.map(str::to_owned),
    });
    (p.kind.unwrap(), p.value.unwrap())
}

#[test]
fn a_method_match_becomes_a_path_match() {
    let exact = Some("Exact");
    let re = Some("RegularExpression");
    let cases = [
        (
            (None, Some("pkg.Svc"), Some("Get")),
            ("Exact", "/pkg.Svc/Get"),
        ),
        (
            (exact, Some("pkg.Svc"), Some("Get")),
            ("Exact", "/pkg.Svc/Get"),
        ),
        ((exact, Some("pkg.Svc"), None), ("PathPrefix", "/pkg.Svc")),
        (
            (exact, None, Some("Get")),
            ("RegularExpression", "/[^/]+/Get"),
        ),
        ((exact, None, None), ("PathPrefix", "/")),
        (
            (re, Some(r"pkg\..*"), Some("Get|Put")),
            ("RegularExpression", r"/(?:pkg\..*)/(?:Get|Put)"),
        ),
        (
            (re, None, Some("G.t")),
            ("RegularExpression", "/(?:[^/]+)/(?:G.t)"),
        ),
        (
            (re, Some("a.B"), None),
            ("RegularExpression", "/(?:a.B)/(?:[^/]+)"),
        ),
    ];
    for ((k, s, m), (want_kind, want)) in cases {
        assert_eq!(
            method(k, s, m),
            (want_kind.to_owned(), want.to_owned()),
            "{k:?} {s:?} {m:?}"
        );
    }
}

fn grpc(rule: serde_json::Value) -> Arc<GrpcRoute> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "r", "namespace": "ns"},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [rule]}}))
        .unwrap(),
    )
}

#[test]
fn headers_and_grpc_filters_are_kept_and_others_refused() {
    let r = grpc(json!({
        "matches": [{"method": {"service": "s.S", "method": "M"},
            "headers": [{"name": "x-v", "value": "1"}]}],
        "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"set": []}},
                    {"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}],
        "backendRefs": [{"name": "a", "port": 80, "weight": 3}]}));
    let h = as_http(&r);
    let rule = &h.spec.rules[0];
    let m = &rule.matches[0];
    assert_eq!(m.path.as_ref().unwrap().value.as_deref(), Some("/s.S/M"));
    assert_eq!(m.headers[0].name.as_deref(), Some("x-v"));
    assert_eq!(rule.filters[0].kind, "RequestHeaderModifier");
    assert_eq!(
        rule.filters[1].kind,
        "RequestRedirect (not a GRPCRoute filter)"
    );
    assert_eq!(rule.backend_refs[0].weight, Some(3));
}

#[test]
fn listener_kinds_are_read_for_grpc_routes() {
    let gw = |kinds: serde_json::Value| -> Arc<Gateway> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": "gw", "namespace": "ns"},
                "spec": {"listeners": [{"name": "l", "port": 80, "protocol": "HTTP",
                    "allowedRoutes": {"kinds": kinds}}]}}))
            .unwrap(),
        )
    };
    let kinds = |g: Gateway| {
        let a = g.spec.listeners[0].allowed_routes.clone().unwrap();
        a.kinds.into_iter().map(|k| k.kind).collect::<Vec<_>>()
    };
    assert!(kinds(for_grpc(&gw(json!([])))).is_empty());
    assert_eq!(
        kinds(for_grpc(&gw(json!([{"kind": "GRPCRoute"}])))),
        ["HTTPRoute"]
    );
    assert_eq!(
        kinds(for_grpc(&gw(json!([{"kind": "HTTPRoute"}])))),
        ["None"]
    );
}

#[test]
fn reference_grants_are_read_for_grpc_routes() {
    let g: Arc<ReferenceGrant> = Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "g", "namespace": "b"},
            "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "GRPCRoute",
                "namespace": "a"}, {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                "namespace": "c"}], "to": [{"group": "", "kind": "Service"}]}}))
        .unwrap(),
    );
    let kinds: Vec<String> = grant(&g).spec.from.into_iter().map(|f| f.kind).collect();
    assert_eq!(kinds, ["HTTPRoute", "HTTPRoute (not for GRPCRoutes)"]);
}

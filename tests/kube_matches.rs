//! The ingress-nginx `use-regex` annotation through the fake API server: the Ingress's prefix
//! paths become case-insensitive regexes anchored at the start, the longest pattern first and
//! before every prefix, and a path the `regex` crate cannot compile is skipped and counted
//! while the Ingress's other paths still route.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use k8s_openapi::api::networking::v1::HTTPIngressPath;
use std::collections::BTreeMap;
use std::time::Duration;

fn path(path: &str, path_type: &str, svc: &str) -> HTTPIngressPath {
    HTTPIngressPath {
        path: Some(path.into()),
        path_type: path_type.into(),
        backend: backend(svc),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_regex_makes_prefix_paths_nginx_regex_locations() {
    let fake = FakeKube::start().await;
    fake.apply(&class());
    for (svc, body) in [("web", "web-1"), ("api", "api-1"), ("docs", "docs-1")] {
        let port = http_backend(body).await;
        fake.apply(&service("shop", svc));
        fake.apply(&slice("shop", svc, body, port, READY));
    }
    let mut ing = ingress("shop", "regex", "re.test", "web", None);
    ing.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/use-regex".to_owned(),
        "true".to_owned(),
    )]));
    let rules = ing.spec.as_mut().unwrap().rules.as_mut().unwrap();
    rules[0].http.as_mut().unwrap().paths = vec![
        path("/", "Prefix", "web"),
        path("/api/v[0-9]+", "ImplementationSpecific", "api"),
        path("/docs", "Exact", "docs"),
        path("/(?=lookahead)", "Prefix", "api"),
    ];
    fake.apply(&ing);
    // Without the annotation the same path is a plain prefix.
    let mut plain = ingress("shop", "plain", "plain.test", "api", None);
    let rules = plain.spec.as_mut().unwrap().rules.as_mut().unwrap();
    rules[0].http.as_mut().unwrap().paths = vec![path("/api/v[0-9]+", "Prefix", "api")];
    fake.apply(&plain);

    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    let routed = poll(Duration::from_secs(10), || async {
        raw_get(proxy.http, "re.test", "/api/v2").await == Some((200, "api-1".into()))
    })
    .await;
    assert!(routed, "regex path not served; log:\n{}", proxy.log());
    for (host, target, want) in [
        ("re.test", "/API/V17/users?x=1", (200, "api-1")),
        ("re.test", "/api/v", (200, "web-1")),
        ("re.test", "/x/api/v1", (200, "web-1")),
        ("re.test", "/docs", (200, "docs-1")),
        ("re.test", "/docs/more", (200, "web-1")),
        ("plain.test", "/api/v[0-9]+/x", (200, "api-1")),
        (
            "plain.test",
            "/api/v1",
            (404, "no route for this host and path\n"),
        ),
    ] {
        let got = raw_get(proxy.http, host, target).await.unwrap();
        assert_eq!((got.0, got.1.as_str()), want, "{host}{target}");
    }
    let m = proxy.metrics().await;
    let line = "switchyard_kube_skipped_total{kind=\"Ingress\",reason=\"invalid_path\"}";
    assert!(metric(&m, line) >= 1.0, "{line} missing:\n{m}");
    assert!(proxy.log().contains("lookahead"), "{}", proxy.log());
}

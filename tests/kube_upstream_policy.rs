//! The ingress-nginx annotations for mirroring and retries through the fake API server:
//! `mirror-target` naming a cluster Service gets the copies, `proxy-next-upstream`
//! (+ `-tries`) retries a 503 on the next endpoint, and what has no equivalent is reported.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;
mod policy;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use policy::{Answer, raw_backend};
use std::collections::BTreeMap;
use std::time::Duration;

fn annotated(
    mut ing: k8s_openapi::api::networking::v1::Ingress,
    pairs: &[(&str, &str)],
) -> k8s_openapi::api::networking::v1::Ingress {
    ing.metadata.annotations = Some(
        pairs
            .iter()
            .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    ing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_target_and_proxy_next_upstream_annotations_take_effect() {
    let fake = FakeKube::start().await;
    let web = http_backend("web-a").await;
    let (shadow, shadow_seen) = raw_backend("shadow", Answer::Status(200)).await;
    let (bad, bad_seen) = raw_backend("bad", Answer::Status(503)).await;
    let good = http_backend("good").await;
    fake.apply(&class());
    for name in ["web", "shadow", "flaky"] {
        fake.apply(&service("shop", name));
    }
    fake.apply(&slice("shop", "web", "web-a", web, READY));
    fake.apply(&slice("shop", "shadow", "shadow-a", shadow.port(), READY));
    fake.apply(&slice("shop", "flaky", "flaky-bad", bad.port(), READY));
    fake.apply(&slice("shop", "flaky", "flaky-good", good, READY));
    fake.apply(&annotated(
        ingress("shop", "web", "shop.test", "web", None),
        &[(
            "mirror-target",
            "http://shadow.shop.svc.cluster.local:80$request_uri",
        )],
    ));
    fake.apply(&annotated(
        ingress("shop", "flaky", "flaky.test", "flaky", None),
        &[
            ("proxy-next-upstream", "error http_503 non_idempotent"),
            ("proxy-next-upstream-tries", "2"),
        ],
    ));
    fake.apply(&annotated(
        ingress("shop", "elsewhere", "elsewhere.test", "web", None),
        &[("mirror-target", "https://mirror.example.com$request_uri")],
    ));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;

    assert_eq!(
        raw_get(proxy.http, "shop.test", "/x?y=1").await.unwrap(),
        (200, "web-a".to_owned())
    );
    let copied = poll(Duration::from_secs(5), || async {
        shadow_seen.requests() == 1
    })
    .await;
    assert!(
        copied,
        "no copy reached the mirror Service; log:\n{}",
        proxy.log()
    );
    let head = shadow_seen.heads.lock().unwrap()[0].clone();
    assert!(
        head.starts_with("GET /x?y=1 HTTP/1.1\r\nhost: shop.test\r\n"),
        "{head}"
    );

    // Three: within the budget's reserve whatever the scheduler's order (each may need a retry).
    for _ in 0..3 {
        assert_eq!(
            raw_get(proxy.http, "flaky.test", "/").await.unwrap(),
            (200, "good".to_owned())
        );
    }
    assert!(bad_seen.requests() >= 1, "the 503 endpoint was tried");

    // The other mirror URL is not followed, and the nginx token without an equivalent is
    // reported; both Ingresses still route.
    assert_eq!(
        raw_get(proxy.http, "elsewhere.test", "/").await.unwrap().0,
        200
    );
    let log = proxy.log();
    assert!(
        log.contains("mirror-target=https://mirror.example.com"),
        "{log}"
    );
    assert!(log.contains("proxy-next-upstream=non_idempotent"), "{log}");
    assert_eq!(shadow_seen.requests(), 1);
}

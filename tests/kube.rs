//! The Kubernetes source end to end: the real binary (`run --kubernetes --kubeconfig …`)
//! against a fake API server (`fake_kube`) that speaks list/watch over HTTP, with real
//! backends on 127.0.0.1.
//!
//! EndpointSlice addresses must be reachable, so every backend is 127.0.0.1 with a port of its
//! own. One Service port's endpoints then need different ports: each backend gets its own
//! EndpointSlice whose port (named like the Service port) is that backend's port. That is
//! valid API usage (slices of one Service may resolve a named targetPort differently) and
//! exercises the merging of slices.
//!
//! This file: the first listing (readiness, the Secret's certificate, skipped objects,
//! status), a reloaded file merged with cluster objects, `--watch-namespace`. Scaling is in
//! `kube_scaling.rs`, relists and outages in `kube_outage.rs`; the fake and the harness are in
//! `fake_kube/`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_the_ingress_backend_with_the_secret_certificate_after_the_first_listing() {
    let fake = FakeKube::start().await;
    fake.hold_lists(true);
    let port = http_backend("web-a").await;
    let (chain, key, leaf, roots) = issue("shop.test");
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-a", port, READY));
    fake.apply(&secret("shop", "web-tls", &chain, &key));
    let mut ing = ingress("shop", "web", "shop.test", "web", Some("web-tls"));
    ing.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/configuration-snippet".to_owned(),
        "return 200;".to_owned(),
    )]));
    fake.apply(&ing);
    // Bad objects: a missing Service, a Secret that is no certificate.
    fake.apply(&ingress("shop", "broken", "broken.test", "nope", None));
    fake.apply(&secret("shop", "bad-tls", "not a cert", "nor a key"));
    let mut badcert = ingress("shop", "badcert", "bad.test", "web", Some("bad-tls"));
    badcert.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/ssl-redirect".to_owned(),
        "false".to_owned(),
    )]));
    fake.apply(&badcert);

    let proxy = Proxy::start(&fake, &["--publish-status-address", "192.0.2.10"]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        admin_get(proxy.admin, "/readyz").await.unwrap().0,
        503,
        "ready before the first listing"
    );
    fake.hold_lists(false);
    let released = Instant::now();
    proxy.wait_ready().await;
    println!(
        "ready {:?} after the lists were released",
        released.elapsed()
    );

    let (status, body, got_leaf) = https_get(proxy.https, "shop.test", roots).await;
    assert_eq!((status, body.as_str()), (200, "web-a"));
    assert_eq!(got_leaf, leaf, "not the certificate from the Secret");
    // TLS host: plain HTTP is redirected (nginx's ssl-redirect default).
    let (status, _) = raw_get(proxy.http, "shop.test", "/x").await.unwrap();
    assert_eq!(status, 308);
    // The Ingress with a bad certificate still routes (plain HTTP: ssl-redirect is off).
    assert_eq!(
        raw_get(proxy.http, "bad.test", "/").await.unwrap(),
        (200, "web-a".to_owned())
    );
    assert_eq!(
        raw_get(proxy.http, "broken.test", "/").await.unwrap().0,
        404
    );

    let m = proxy.metrics().await;
    for reason in ["missing_service", "invalid_secret"] {
        let line = format!("switchyard_kube_skipped_total{{kind=\"Ingress\",reason=\"{reason}\"}}");
        assert!(metric(&m, &line) >= 1.0, "{line} missing:\n{m}");
    }
    assert!(metric(&m, "switchyard_kube_unsupported_annotations_total") >= 1.0);
    assert!(proxy.log().contains("configuration-snippet"));

    let written = poll(Duration::from_secs(5), || async {
        fake.patches().iter().any(|(ns, name, body)| {
            ns == "shop" && name == "web" && body.to_string().contains("192.0.2.10")
        })
    })
    .await;
    assert!(written, "status not written: {:?}", fake.patches());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_file_is_merged_with_the_cluster_objects() {
    let fake = FakeKube::start().await;
    let port = http_backend("from-kube").await;
    let fixed = http_backend("from-file").await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", port, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    proxy.reload(&format!(
        "[[services]]\nname = \"static\"\n[[services.endpoints]]\naddress = \"127.0.0.1:{fixed}\"\n\
         [[routes]]\nhost = \"static.test\"\nservice = \"static\"\n"
    ));
    let merged = poll(Duration::from_secs(10), || async {
        raw_get(proxy.http, "static.test", "/").await == Some((200, "from-file".into()))
    })
    .await;
    assert!(merged, "file service not served; log:\n{}", proxy.log());
    assert_eq!(
        raw_get(proxy.http, "web.test", "/").await.unwrap(),
        (200, "from-kube".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_namespace_limits_what_is_served() {
    let fake = FakeKube::start().await;
    let (pa, pb) = (http_backend("in-a").await, http_backend("in-b").await);
    fake.apply(&class());
    for (ns, port) in [("a", pa), ("b", pb)] {
        fake.apply(&service(ns, "web"));
        fake.apply(&slice(ns, "web", "web-1", port, READY));
        fake.apply(&ingress(ns, "web", &format!("{ns}.test"), "web", None));
    }
    let proxy = Proxy::start(&fake, &["--watch-namespace", "a"]);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "a.test", "/").await.unwrap(),
        (200, "in-a".to_owned())
    );
    assert_eq!(raw_get(proxy.http, "b.test", "/").await.unwrap().0, 404);
}

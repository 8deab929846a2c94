//! The TLS edge from the cluster, through the fake API server and the real binary:
//! `ssl-passthrough` with and without `--enable-ssl-passthrough`, and
//! `--default-ssl-certificate` (also with no TLS Ingress at all).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;

use common::edge::{any_cert_client, connect_tls, echo, has_common_name, tls_echo_backend};
use common::tls::{HTTP1, Issued, Pki, Tls, client_config};
use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, admin_get, metric, poll};
use fake_kube::objects::*;
use std::collections::BTreeMap;
use std::time::Duration;
use switchyard::tls::DEFAULT_CERT_NAME;

/// The Secret holding `issued`.
fn secret_of(ns: &str, name: &str, issued: &Issued) -> k8s_openapi::api::core::v1::Secret {
    let cert = std::fs::read_to_string(&issued.cert).unwrap();
    let key = std::fs::read_to_string(&issued.key).unwrap();
    secret(ns, name, &cert, &key)
}

/// A fake cluster with Service shop/db whose one endpoint terminates TLS for db.test itself,
/// and an Ingress for db.test annotated `ssl-passthrough: "true"`.
async fn passthrough_cluster(db: &Issued) -> FakeKube {
    let fake = FakeKube::start().await;
    let port = tls_echo_backend("db", db).await.port();
    fake.apply(&class());
    fake.apply(&service("shop", "db"));
    fake.apply(&slice("shop", "db", "db-a", port, READY));
    let mut ing = ingress("shop", "db", "db.test", "db", None);
    ing.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/ssl-passthrough".to_owned(),
        "true".to_owned(),
    )]));
    fake.apply(&ing);
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_passthrough_with_the_flag_reaches_the_backends_own_tls() {
    let pki = Pki::new();
    let db = pki.issue("db", &["db.test"]);
    let fake = passthrough_cluster(&db).await;
    let proxy = Proxy::start(&fake, &["--enable-ssl-passthrough"]);
    proxy.wait_ready().await;
    let mut tls = Tls::to(proxy.https, &pki, "db.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), db.leaf, "the backend's own certificate");
    assert_eq!(echo(&mut tls.stream, "hello").await, "db: hello");
    let m = proxy.metrics().await;
    let line = "switchyard_tls_passthrough_connections_total{listener=\"https\",service=\"shop/db:http\",result=\"ok\"}";
    assert_eq!(metric(&m, line), 1.0, "{m}");
    // The Ingress's HTTP route stays for plain HTTP: routed (to a backend that speaks only
    // TLS, hence 502), not 404.
    let (status, _) = fake_kube::harness::raw_get(proxy.http, "db.test", "/")
        .await
        .unwrap();
    assert_eq!(status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_passthrough_without_the_flag_is_reported_and_not_applied() {
    let pki = Pki::new();
    let db = pki.issue("db", &["db.test"]);
    let fake = passthrough_cluster(&db).await;
    // Lists held until the proxy's metrics recorder is up, so the report is counted.
    fake.hold_lists(true);
    let proxy = Proxy::start(&fake, &[]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    fake.hold_lists(false);
    proxy.wait_ready().await;
    // Terminated here, with the generated default (no Secret for db.test), and routed as
    // HTTP to the same backend, which does not speak plain HTTP: whatever it answers, it is
    // not the backend's certificate the client saw.
    let (_tls, leaf) = connect_tls(proxy.https, any_cert_client(&[HTTP1], true), "db.test").await;
    assert!(has_common_name(&leaf, DEFAULT_CERT_NAME));
    assert_ne!(leaf, db.leaf);
    let m = proxy.metrics().await;
    assert!(
        metric(&m, "switchyard_kube_unsupported_annotations_total") >= 1.0,
        "{m}"
    );
    let logged = poll(Duration::from_secs(5), || async {
        proxy.log().contains("--enable-ssl-passthrough")
    })
    .await;
    assert!(logged, "{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_ssl_certificate_secret_serves_unmatched_names() {
    let pki = Pki::new();
    let fallback = pki.issue("fallback", &["fallback.test"]);
    let web = pki.issue("web", &["web.test"]);
    let fake = FakeKube::start().await;
    fake.apply(&class());
    fake.apply(&secret_of("infra", "fallback", &fallback));
    let proxy = Proxy::start(&fake, &["--default-ssl-certificate", "infra/fallback"]);
    proxy.wait_ready().await;
    // No TLS Ingress at all: handshakes still complete, with the Secret's certificate.
    let (_tls, leaf) = connect_tls(proxy.https, any_cert_client(&[HTTP1], true), "x.test").await;
    assert_eq!(leaf, fallback.leaf);
    // Once an Ingress brings web.test's Secret, web.test gets its own; others the default.
    let port = fake_kube::harness::http_backend("web").await;
    fake.apply(&service("infra", "web"));
    fake.apply(&slice("infra", "web", "web-a", port, READY));
    fake.apply(&secret_of("infra", "web-tls", &web));
    fake.apply(&ingress("infra", "web", "web.test", "web", Some("web-tls")));
    let served = fake_kube::harness::poll(std::time::Duration::from_secs(10), || async {
        let (_tls, leaf) =
            connect_tls(proxy.https, any_cert_client(&[HTTP1], true), "web.test").await;
        leaf == web.leaf
    })
    .await;
    assert!(
        served,
        "web.test never got its certificate; log:\n{}",
        proxy.log()
    );
    let tls = Tls::connect(
        proxy.https,
        client_config(pki.roots(), &[HTTP1], Some("fallback.test")),
        "other.test",
    )
    .await;
    assert_eq!(tls.leaf(), fallback.leaf);
    let answer = tls.h1().await.get("other.test", "/").await;
    assert_eq!(answer.status, 404, "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_ssl_certificate_outside_the_watched_namespace_is_refused_at_start() {
    let fake = FakeKube::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[admin]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let out = std::process::Command::new(fake_kube::harness::BIN)
        .args(["run", "--config"])
        .arg(&config)
        .args(["--kubernetes", "--kubeconfig"])
        .arg(fake.kubeconfig(dir.path()))
        .args([
            "--watch-namespace",
            "shop",
            "--default-ssl-certificate",
            "infra/x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--default-ssl-certificate \"infra/x\""),
        "{stderr}"
    );
}

//! The ingress-nginx limit and CORS annotations end to end: the real binary against the fake
//! API server (`fake_kube`), requests over real sockets.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFIX: &str = "nginx.ingress.kubernetes.io/";

fn annotated(
    name: &str,
    host: &str,
    notes: &[(&str, &str)],
) -> k8s_openapi::api::networking::v1::Ingress {
    let mut ing = ingress("shop", name, host, "web", None);
    ing.metadata.annotations = Some(
        notes
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    ing
}

/// Sends `request` and returns the whole answer (the request asks to close).
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(host: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_and_cors_annotations_shape_the_ingress_routes() {
    let fake = FakeKube::start().await;
    let a = http_backend("web-a").await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-a", a, READY));
    fake.apply(&annotated(
        "limited",
        "limited.test",
        &[("limit-rpm", "1"), ("limit-burst-multiplier", "2")],
    ));
    fake.apply(&annotated(
        "listed",
        "listed.test",
        &[
            ("limit-rpm", "1"),
            ("limit-burst-multiplier", "1"),
            ("limit-whitelist", "127.0.0.0/8"),
        ],
    ));
    fake.apply(&annotated(
        "cors",
        "cors.test",
        &[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://app.test, https://*.tenant.test",
            ),
            ("cors-allow-methods", "GET, PUT"),
            ("cors-max-age", "60"),
        ],
    ));
    fake.apply(&ingress("shop", "open", "open.test", "web", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;

    // limit-rpm 1 × multiplier 2: two pass, the third is refused with Retry-After.
    for i in 0..2 {
        let answer = raw(proxy.http, &get("limited.test")).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "request {i}: {answer}");
    }
    let refused = raw(proxy.http, &get("limited.test")).await;
    assert!(
        refused.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{refused}"
    );
    assert!(refused.contains("\r\nretry-after: "), "{refused}");
    // limit-whitelist: never limited.
    for _ in 0..5 {
        assert!(
            raw(proxy.http, &get("listed.test"))
                .await
                .starts_with("HTTP/1.1 200 ")
        );
    }

    // An endpoint change rebuilds the table; the limited client stays limited.
    let b = http_backend("web-b").await;
    fake.apply(&slice("shop", "web", "web-b", b, READY));
    let moved = poll(Duration::from_secs(10), || async {
        raw_get(proxy.http, "open.test", "/")
            .await
            .is_some_and(|(_, body)| body == "web-b")
    })
    .await;
    assert!(
        moved,
        "the new endpoint never served; log:\n{}",
        proxy.log()
    );
    let still = raw(proxy.http, &get("limited.test")).await;
    assert!(still.starts_with("HTTP/1.1 429 "), "{still}");

    // enable-cors: the preflight is answered here.
    let preflight = "OPTIONS / HTTP/1.1\r\nHost: cors.test\r\nOrigin: https://x.tenant.test\r\n\
        Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n";
    assert_eq!(
        raw(proxy.http, preflight).await,
        "HTTP/1.1 204 No Content\r\naccess-control-allow-origin: https://x.tenant.test\r\n\
         access-control-allow-credentials: true\r\naccess-control-allow-methods: GET, PUT\r\n\
         access-control-allow-headers: DNT, Keep-Alive, User-Agent, X-Requested-With, \
         If-Modified-Since, Cache-Control, Content-Type, Range, Authorization\r\n\
         access-control-max-age: 60\r\nvary: Origin\r\nconnection: close\r\n\r\n"
    );
    let other = "GET / HTTP/1.1\r\nHost: cors.test\r\nOrigin: https://evil.test\r\nConnection: close\r\n\r\n";
    let answer = raw(proxy.http, other).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(
        !answer.to_ascii_lowercase().contains("access-control-"),
        "{answer}"
    );

    let m = proxy.metrics().await;
    assert_eq!(
        metric(
            &m,
            "switchyard_http_limited_total{route=\"shop/limited\",reason=\"rate\"}"
        ),
        2.0
    );
}

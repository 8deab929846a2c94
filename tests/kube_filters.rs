//! The ingress-nginx filter annotations end to end, through the fake API server and the real
//! binary: `rewrite-target` (plain and with `use-regex`), `upstream-vhost`,
//! `x-forwarded-prefix`, `permanent-redirect` (+ code), `temporal-redirect`, `app-root` and
//! `server-alias` (an invalid name reported, the valid ones served).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend answering "METHOD TARGET host=HOST prefix=X-FORWARDED-PREFIX".
async fn echo_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|req: hyper::Request<_>| async move {
                    let seen = |h: &str| {
                        req.headers()
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-")
                            .to_owned()
                    };
                    let text = format!(
                        "{} {} host={} prefix={}",
                        req.method(),
                        req.uri(),
                        seen("host"),
                        seen("x-forwarded-prefix")
                    );
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(text)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// The whole response to a GET, as text.
async fn fetch(addr: SocketAddr, host: &str, path: &str) -> String {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap()
}

fn annotated(
    name: &str,
    host: &str,
    path: &str,
    notes: &[(&str, &str)],
) -> k8s_openapi::api::networking::v1::Ingress {
    let mut ing = ingress("shop", name, host, "web", None);
    if let Some(rule) = ing
        .spec
        .as_mut()
        .and_then(|s| s.rules.as_mut())
        .and_then(|r| r.first_mut())
        && let Some(http) = rule.http.as_mut()
    {
        http.paths[0].path = Some(path.to_owned());
    }
    ing.metadata.annotations = Some(
        notes
            .iter()
            .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    ing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filter_annotations_rewrite_redirect_and_alias_as_ingress_nginx_does() {
    let fake = FakeKube::start().await;
    let port = echo_backend().await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", port, READY));
    fake.apply(&annotated(
        "regex",
        "rx.test",
        "/api",
        &[
            ("rewrite-target", "/v2"),
            ("use-regex", "true"),
            ("upstream-vhost", "inner.svc"),
            ("x-forwarded-prefix", "/api"),
        ],
    ));
    // ingress-nginx's own rewrite example: capture groups of the path regex.
    fake.apply(&annotated(
        "groups",
        "groups.test",
        "/something(/|$)(.*)",
        &[("rewrite-target", "/$2"), ("use-regex", "true")],
    ));
    fake.apply(&annotated(
        "plain",
        "plain.test",
        "/app",
        &[("rewrite-target", "/")],
    ));
    fake.apply(&annotated(
        "moved",
        "moved.test",
        "/",
        &[
            ("permanent-redirect", "https://new.test/"),
            ("permanent-redirect-code", "308"),
        ],
    ));
    fake.apply(&annotated(
        "temp",
        "temp.test",
        "/",
        &[("temporal-redirect", "https://t.test/x")],
    ));
    fake.apply(&annotated(
        "root",
        "root.test",
        "/",
        &[("app-root", "/home")],
    ));
    fake.apply(&annotated(
        "alias",
        "main.test",
        "/",
        &[("server-alias", "other.test, bad_name!")],
    ));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    let ok = poll(Duration::from_secs(10), || async {
        fetch(proxy.http, "main.test", "/")
            .await
            .starts_with("HTTP/1.1 200")
    })
    .await;
    assert!(ok, "not routed; log:\n{}", proxy.log());

    let body = |text: String| text.split_once("\r\n\r\n").unwrap().1.to_owned();
    // use-regex: the whole path matched by the path regex becomes the target.
    assert_eq!(
        body(fetch(proxy.http, "rx.test", "/api/items?x=1").await),
        "GET /v2?x=1 host=inner.svc prefix=/api"
    );
    // The path regex routes (case-insensitive, anchored at the start) and its groups rewrite.
    for (asked, sent) in [
        ("/something", "/"),
        ("/something/", "/"),
        ("/something/new?q=1", "/new?q=1"),
        ("/SomeThing/a/b", "/a/b"),
    ] {
        let got = body(fetch(proxy.http, "groups.test", asked).await);
        assert_eq!(
            got,
            format!("GET {sent} host=groups.test prefix=-"),
            "{asked}"
        );
    }
    let other = fetch(proxy.http, "groups.test", "/somethingelse").await;
    assert!(other.starts_with("HTTP/1.1 404 "), "{other}");
    // Without use-regex, the prefix is replaced.
    assert_eq!(
        body(fetch(proxy.http, "plain.test", "/app/x?y=2").await),
        "GET /x?y=2 host=plain.test prefix=-"
    );
    let moved = fetch(proxy.http, "moved.test", "/any").await;
    assert!(moved.starts_with("HTTP/1.1 308 "), "{moved}");
    assert!(
        moved.contains("\r\nlocation: https://new.test/\r\n"),
        "{moved}"
    );
    let temp = fetch(proxy.http, "temp.test", "/any").await;
    assert!(temp.starts_with("HTTP/1.1 302 "), "{temp}");
    assert!(
        temp.contains("\r\nlocation: https://t.test/x\r\n"),
        "{temp}"
    );
    let root = fetch(proxy.http, "root.test", "/").await;
    assert!(root.starts_with("HTTP/1.1 302 "), "{root}");
    assert!(
        root.contains("\r\nlocation: http://root.test/home\r\n"),
        "{root}"
    );
    assert_eq!(
        body(fetch(proxy.http, "root.test", "/other").await),
        "GET /other host=root.test prefix=-"
    );
    assert_eq!(
        body(fetch(proxy.http, "other.test", "/a").await),
        "GET /a host=other.test prefix=-"
    );
    assert!(
        proxy.log().contains("server-alias"),
        "the invalid alias is not reported:\n{}",
        proxy.log()
    );
}

//! HTTPRoute filters and timeouts through the fake API server and the real binary, with the
//! facts of the upstream conformance scenarios HTTPRouteRequestHeaderModifier,
//! HTTPRouteResponseHeaderModifier, HTTPRouteRedirectHostAndStatus, HTTPRouteRedirectPath,
//! HTTPRouteRedirectScheme, HTTPRouteRewritePath, HTTPRouteRewriteHost, HTTPRouteRequestMirror
//! and HTTPRouteTimeoutRequest; an ExtensionRef makes the rule answer 500.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use fake_kube::objects::{READY, service, slice};
use gateway_support::{Setup, get, route, setup};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A backend answering with what it got (`METHOD path`, `host`, then each field), counting
/// requests; `/slow…` answers after 2 s.
async fn echo_backend(name: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        seen.fetch_add(1, Ordering::SeqCst);
                        async move {
                            let mut body = format!("{name} {} {}\n", req.method(), req.uri());
                            for (k, v) in req.headers() {
                                body.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                            }
                            if req.uri().path().starts_with("/slow") {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                            }
                            let mut resp = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from(body),
                            ));
                            resp.headers_mut()
                                .insert("x-from-backend", "yes".parse().unwrap());
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    (port, count)
}

/// The setup plus Services `infra/echo` and `infra/mirror` (echo backends).
async fn with_echo() -> (Setup, Arc<AtomicUsize>) {
    let s = setup(None, "Same").await;
    let (echo, _) = echo_backend("echo").await;
    let (mirror, mirrored) = echo_backend("mirror").await;
    for (name, port) in [("echo", echo), ("mirror", mirror)] {
        s.fake.apply(&service("infra", name));
        s.fake
            .apply(&slice("infra", name, &format!("{name}-a"), port, READY));
    }
    (s, mirrored)
}

fn rule(matches: Value, filters: Value) -> Value {
    json!([{"matches": matches, "filters": filters, "backendRefs": [{"name": "echo", "port": 80}]}])
}

/// The raw response (head and body) of GET `target` on `host`.
async fn raw(s: &Setup, host: &str, target: &str, extra: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(s.port).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n");
    c.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_string(&mut out)).await;
    out
}

/// Waits until `host` is routed with its backend resolved: not 404 (no route yet) and not
/// 500 (the route came before its Service: each kind has its own watch, in no set order).
async fn routed(s: &Setup, host: &str) {
    let ok = poll(Duration::from_secs(10), || async {
        get(s.port, host, "/", "")
            .await
            // 503: routed, but the backends' EndpointSlices (another watch stream) not yet.
            .is_some_and(|r| ![404, 500, 503].contains(&r.0))
    })
    .await;
    assert!(ok, "{host} never routed; log:\n{}", s.proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_modifiers() {
    let (s, _) = with_echo().await;
    let filters = json!([
        {"type": "RequestHeaderModifier", "requestHeaderModifier": {
            "set": [{"name": "X-Header-Set", "value": "set-overwrites-values"}],
            "add": [{"name": "X-Header-Add", "value": "add-appends-values"}],
            "remove": ["X-Header-Remove"]}},
        {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
            "set": [{"name": "X-Response-Set", "value": "set"}], "remove": ["x-from-backend"]}},
    ]);
    s.fake.apply(&route(
        "infra",
        "h",
        &["h.example"],
        rule(json!([]), filters),
    ));
    routed(&s, "h.example").await;
    let out = raw(
        &s,
        "h.example",
        "/",
        "x-header-set: some-other-value\r\nx-header-add: original\r\nx-header-remove: gone\r\n",
    )
    .await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(
        body.contains("x-header-set: set-overwrites-values\n"),
        "{body}"
    );
    assert!(!body.contains("some-other-value"), "{body}");
    assert!(
        body.contains("x-header-add: original\n")
            && body.contains("x-header-add: add-appends-values\n"),
        "{body}"
    );
    assert!(!body.contains("x-header-remove"), "{body}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("x-response-set: set\r\n"), "{head}");
    assert!(!head.contains("x-from-backend"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects() {
    let (s, _) = with_echo().await;
    let host_status = json!([{"type": "RequestRedirect",
        "requestRedirect": {"hostname": "example.org", "statusCode": 301}}]);
    s.fake.apply(&route(
        "infra",
        "r1",
        &["r1.example"],
        rule(json!([]), host_status),
    ));
    let prefix = json!([{"type": "RequestRedirect", "requestRedirect": {"path":
        {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/replacement-prefix"}}}]);
    let m = json!([{"path": {"type": "PathPrefix", "value": "/original-prefix"}}]);
    s.fake
        .apply(&route("infra", "r2", &["r2.example"], rule(m, prefix)));
    let scheme = json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]);
    s.fake.apply(&route(
        "infra",
        "r3",
        &["r3.example"],
        rule(json!([]), scheme),
    ));
    routed(&s, "r1.example").await;
    let out = raw(&s, "r1.example", "/hostname-redirect", "").await;
    assert!(out.starts_with("HTTP/1.1 301"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("location: http://example.org/hostname-redirect\r\n"),
        "{out}"
    );
    routed(&s, "r3.example").await;
    let out = raw(&s, "r2.example", "/original-prefix/lemon", "").await;
    assert!(out.starts_with("HTTP/1.1 302"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("location: http://r2.example/replacement-prefix/lemon\r\n"),
        "{out}"
    );
    let out = raw(&s, "r3.example", "/scheme-redirect", "").await;
    assert!(
        out.to_ascii_lowercase()
            .contains("location: https://r3.example/scheme-redirect\r\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewrites() {
    let (s, _) = with_echo().await;
    let prefix = json!([{"type": "URLRewrite", "urlRewrite": {"path":
        {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/one"}}}]);
    let m = json!([{"path": {"type": "PathPrefix", "value": "/prefix/one"}}]);
    s.fake
        .apply(&route("infra", "w1", &["w1.example"], rule(m, prefix)));
    let full = json!([{"type": "URLRewrite", "urlRewrite": {"hostname": "rewritten.example",
        "path": {"type": "ReplaceFullPath", "replaceFullPath": "/one"}}}]);
    s.fake.apply(&route(
        "infra",
        "w2",
        &["w2.example"],
        rule(json!([]), full),
    ));
    routed(&s, "w2.example").await;
    let out = raw(&s, "w1.example", "/prefix/one/two?q=1", "").await;
    assert!(out.contains("echo GET /one/two?q=1\n"), "{out}");
    let out = raw(&s, "w2.example", "/full/path", "").await;
    assert!(out.contains("echo GET /one\n"), "{out}");
    assert!(out.contains("host: rewritten.example\n"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_timeouts_and_extension_refs() {
    let (s, mirrored) = with_echo().await;
    let mirror = json!([{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "mirror", "port": 80}}}]);
    s.fake.apply(&route(
        "infra",
        "m",
        &["m.example"],
        rule(json!([]), mirror),
    ));
    routed(&s, "m.example").await;
    let before = mirrored.load(Ordering::SeqCst);
    let out = raw(&s, "m.example", "/", "").await;
    assert!(
        out.contains("echo GET /\n"),
        "the response is the primary's: {out}"
    );
    let copied = poll(Duration::from_secs(5), || async {
        mirrored.load(Ordering::SeqCst) > before
    })
    .await;
    assert!(copied, "the mirror got a copy");
    let mut timed = route(
        "infra",
        "t",
        &["t.example"],
        json!([{"timeouts": {"request": "300ms"},
        "backendRefs": [{"name": "echo", "port": 80}]}]),
    );
    timed["metadata"]["generation"] = json!(1);
    s.fake.apply(&timed);
    routed(&s, "t.example").await;
    let out = raw(&s, "t.example", "/slow", "").await;
    assert!(out.starts_with("HTTP/1.1 504"), "{out}");
    let ext = json!([{"type": "ExtensionRef", "extensionRef": {"group": "example.net", "kind": "X", "name": "x"}}]);
    s.fake
        .apply(&route("infra", "e", &["e.example"], rule(json!([]), ext)));
    s.expect("e.example", "/", "", 500, "").await;
}

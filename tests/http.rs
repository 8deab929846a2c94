//! The plain-HTTP router over real sockets: routing, forwarding headers, redirects, retries,
//! limits, deadlines and reloads.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, config, get, service, start};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn routes_by_host_and_path_with_kubernetes_rules() {
    let (a, b, api) = (backend("a").await, backend("b").await, backend("api").await);
    let body = format!(
        "{}{}{}[[routes]]\nhost = \"a.test\"\nservice = \"a\"\n\
         [[routes]]\nhost = \"a.test\"\npath = \"/api\"\nservice = \"api\"\n\
         [[routes]]\nhost = \"*.b.test\"\nservice = \"b\"\n",
        service("a", &[a], ""),
        service("b", &[b], ""),
        service("api", &[api], "")
    );
    let (_app, addr) = start(&body).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("a.test", "/").await.2, "a GET / 0");
    assert_eq!(
        c.get("A.TEST:8080", "/x?y=1").await.2,
        "a GET /x?y=1 0",
        "host is case-insensitive, port ignored"
    );
    assert_eq!(c.get("a.test", "/api/v1").await.2, "api GET /api/v1 0");
    assert_eq!(
        c.get("a.test", "/apix").await.2,
        "a GET /apix 0",
        "prefix matches whole path elements"
    );
    assert_eq!(c.get("x.b.test", "/").await.2, "b GET / 0");
    assert_eq!(
        c.get("x.y.b.test", "/").await.0,
        404,
        "wildcards cover one label"
    );
    assert_eq!(c.get("unknown.test", "/").await.0, 404);
}

#[tokio::test]
async fn forwarding_headers_are_set_and_hop_by_hop_headers_dropped() {
    let a = backend("a").await;
    let body = format!("{}[[routes]]\nservice = \"a\"\n", service("a", &[a], ""));
    let (_app, addr) = start(&body).await;
    let mut c = Client::connect(addr).await;
    let req = Request::get("/")
        .header("host", "app.test")
        .header("x-forwarded-for", "10.9.9.9")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, h, _) = c.send(req).await;
    assert_eq!(status, 200);
    assert_eq!(
        h["x-seen-xff"], "127.0.0.1",
        "an untrusted client cannot claim an address"
    );
    assert_eq!(h["x-seen-proto"], "http");
    assert_eq!(h["x-seen-host"], "app.test");
    assert_eq!(h["x-seen-request-id"].len(), 32);
}

#[tokio::test]
async fn http_to_https_redirect_spares_acme_challenges() {
    let a = backend("a").await;
    let body = format!(
        "{}[[hosts]]\nhost = \"secure.test\"\nredirect_https = true\n[[routes]]\nhost = \"secure.test\"\nservice = \"a\"\n",
        service("a", &[a], "")
    );
    let (_app, addr) = start(&body).await;
    let (status, h, _) = get(addr, "secure.test", "/login?next=/home").await;
    assert_eq!(status, 308);
    assert_eq!(h["location"], "https://secure.test/login?next=/home");
    let (status, _, body) = get(addr, "secure.test", "/.well-known/acme-challenge/token123").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "a GET /.well-known/acme-challenge/token123 0")
    );
}

#[tokio::test]
async fn a_dead_endpoint_is_retried_and_the_client_gets_200() {
    let dead = common::dead_address().await;
    let live = backend("live").await;
    let body = format!(
        "{}[[routes]]\nservice = \"r\"\n",
        service("r", &[dead, live], "max_failures = 0")
    );
    let (_app, addr) = start(&body).await;
    let mut c = Client::connect(addr).await;
    for _ in 0..6 {
        let (status, _, body) = c.get("r.test", "/").await;
        assert_eq!((status, body.as_str()), (200, "live GET / 0"));
    }
}

#[tokio::test]
async fn passive_health_benches_a_failing_endpoint_and_lets_it_back() {
    // The endpoint is down at first, then comes up on the same port.
    let port_holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let flaky = port_holder.local_addr().unwrap();
    drop(port_holder);
    let live = backend("live").await;
    let body = format!(
        "{}[[routes]]\nservice = \"p\"\n",
        service(
            "p",
            &[flaky, live],
            "max_failures = 1\nfailure_backoff = \"300ms\""
        )
    );
    let (app, addr) = start(&body).await;
    for _ in 0..4 {
        assert_eq!(get(addr, "p.test", "/").await.2, "live GET / 0");
    }
    let (_, metrics) = common::admin_get(app.admin_addr(), "/metrics").await;
    assert_eq!(
        common::metric(
            &metrics,
            r#"switchyard_http_upstream_errors_total{service="p",reason="connect"}"#
        ),
        Some(1.0),
        "benched after one failure: {metrics}"
    );
    // Bring the endpoint up; after the backoff it gets traffic again.
    let listener = TcpListener::bind(flaky).await.unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|_req| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("flaky"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(get(addr, "p.test", "/").await.2);
    }
    assert!(seen.iter().any(|b| b == "flaky"), "{seen:?}");
}

#[tokio::test]
async fn no_usable_endpoint_is_503() {
    let a = backend("a").await;
    let body = format!(
        "[[services]]\nname = \"drained\"\n[[services.endpoints]]\naddress = \"{a}\"\nweight = 0\n\
         [[routes]]\nservice = \"drained\"\n"
    );
    let (_app, addr) = start(&body).await;
    assert_eq!(get(addr, "x.test", "/").await.0, 503);
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let a = backend("a").await;
    let body = format!(
        "{}[[routes]]\nservice = \"a\"\nmax_body_bytes = 10\n",
        service("a", &[a], "")
    );
    let (_app, addr) = start(&body).await;
    let mut c = Client::connect(addr).await;
    let small = Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from("0123456789")))
        .unwrap();
    assert_eq!(c.send(small).await.2, "a POST / 10");
    let big = Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from("0123456789A")))
        .unwrap();
    assert_eq!(c.send(big).await.0, 413);
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let big = "x".repeat(16 * 1024);
    s.write_all(format!("GET / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&out[..n]);
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}

#[tokio::test]
async fn slowloris_connections_are_closed_at_the_header_deadline() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let started = tokio::time::Instant::now();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    assert!(
        read.is_ok(),
        "connection must be closed by the 500 ms header deadline"
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    // A neighbour is unaffected.
    assert_eq!(get(addr, "x", "/").await.0, 200);
}

#[tokio::test]
async fn malformed_requests_get_400_and_do_not_harm_others() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    ))
    .await;
    let mut keep = Client::connect(addr).await;
    assert_eq!(keep.get("x", "/").await.0, 200);
    for garbage in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nhost: bad host\r\nconnection: close\r\n\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(garbage).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .unwrap();
        let head = String::from_utf8_lossy(&out);
        assert!(
            head.is_empty() || head.starts_with("HTTP/1.1 400"),
            "{head}"
        );
    }
    assert_eq!(
        keep.get("x", "/").await.0,
        200,
        "the neighbour's keep-alive connection still works"
    );
}

#[tokio::test]
async fn a_keep_alive_connection_uses_new_routes_on_its_next_request() {
    let (a, b) = (backend("a").await, backend("b").await);
    let services = format!("{}{}", service("a", &[a], ""), service("b", &[b], ""));
    let (app, addr) = start(&format!("{services}[[routes]]\nservice = \"a\"\n")).await;
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("x", "/").await.2, "a GET / 0");
    app.apply(&config(&format!("{services}[[routes]]\nservice = \"b\"\n")))
        .await
        .unwrap();
    assert_eq!(c.get("x", "/").await.2, "b GET / 0");
}

#[tokio::test]
async fn request_metrics_and_upstream_errors_are_counted() {
    let a = backend("a").await;
    let (app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"m.test\"\nservice = \"metered\"\n",
        service("metered", &[a], "")
    ))
    .await;
    assert_eq!(get(addr, "m.test", "/").await.0, 200);
    assert_eq!(get(addr, "nothing.test", "/").await.0, 404);
    let (_, m) = common::admin_get(app.admin_addr(), "/metrics").await;
    let name = r#"switchyard_http_requests_total{service="metered",route="m.test/",code="2xx"}"#;
    let counted = common::eventually_metric(app.admin_addr(), name, 1.0).await;
    assert_eq!(counted, Some(1.0), "{m}");
    assert!(
        common::metric(
            &m,
            r#"switchyard_http_requests_total{service="-",route="-",code="4xx"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    assert!(
        m.contains("switchyard_http_request_duration_seconds_bucket"),
        "{m}"
    );
}

#[tokio::test]
async fn max_connections_parks_new_clients_until_one_closes() {
    let a = backend("a").await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"small\"\nlisten = \"127.0.0.1:0\"\nmax_connections = 1\n\
         {}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    );
    let app = switchyard::app::start(switchyard::config::Config::parse(&text, "t").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("small").await.unwrap();
    let mut first = Client::connect(addr).await;
    assert_eq!(first.get("x", "/").await.0, 200);
    // The second client connects (the kernel backlog takes it) but is not served...
    let mut second = TcpStream::connect(addr).await.unwrap();
    second
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.read_to_end(&mut out)).await;
    assert!(
        early.is_err(),
        "served while the listener was full: {out:?}"
    );
    // ...until the first one goes away.
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), second.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"),
        "{out:?}"
    );
}

//! The plain-HTTP router over real sockets: routing, forwarding headers, redirects, retries,
//! limits, deadlines and reloads.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 backend answering "NAME METHOD PATH BODYLEN" and echoing what it saw in
/// `x-seen-*` headers.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let len = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes().len())
                        .unwrap_or(0);
                    let seen = |h: &str| {
                        parts
                            .headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let resp = Response::builder()
                        .header("x-backend", name)
                        .header("x-seen-host", seen("host"))
                        .header("x-seen-xff", seen("x-forwarded-for"))
                        .header("x-seen-proto", seen("x-forwarded-proto"))
                        .header("x-seen-request-id", seen("x-request-id"))
                        .header("x-seen-connection", seen("connection"))
                        .body(Full::new(Bytes::from(format!(
                            "{name} {} {} {len}",
                            parts.method, parts.uri
                        ))))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

fn service(name: &str, endpoints: &[SocketAddr], extra: &str) -> String {
    let mut s = format!("[[services]]\nname = \"{name}\"\n{extra}\n");
    for e in endpoints {
        s.push_str(&format!("[[services.endpoints]]\naddress = \"{e}\"\n"));
    }
    s
}

fn config(body: &str) -> Config {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"2s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"500ms\"\nmax_header_bytes = 8192\n{body}"
    );
    Config::parse(&text, "test").unwrap()
}

async fn start(body: &str) -> (App, SocketAddr) {
    let app = app::start(config(body)).await.unwrap();
    let addr = app.http_addr("web").await.unwrap();
    (app, addr)
}

/// A keep-alive HTTP/1.1 client connection.
struct Client(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client(send)
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> (u16, http::HeaderMap, String) {
        let resp = tokio::time::timeout(Duration::from_secs(5), self.0.send_request(req))
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&mut self, host: &str, path: &str) -> (u16, http::HeaderMap, String) {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(req).await
    }
}

async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, http::HeaderMap, String) {
    Client::connect(addr).await.get(host, path).await
}

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
    assert_eq!(
        common::metric(
            &m,
            r#"switchyard_http_requests_total{service="metered",code="2xx"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        common::metric(
            &m,
            r#"switchyard_http_requests_total{service="-",code="4xx"}"#
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

/// A backend that accepts any `Upgrade` and then echoes raw bytes.
async fn upgrade_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on.await {
                            let mut io = TokioIo::new(upgraded);
                            let (mut r, mut w) = tokio::io::split(&mut io);
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                    });
                    let resp = Response::builder()
                        .status(101)
                        .header("connection", "upgrade")
                        .header("upgrade", "websocket")
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_upgrade_tunnels_and_survives_100_reloads() {
    let ws = upgrade_backend().await;
    let other = backend("other").await;
    let routes = "[[routes]]\npath = \"/ws\"\nservice = \"ws\"\n[[routes]]\nservice = \"other\"\n";
    let version = |i: usize| {
        format!(
            "{}{}{routes}",
            service("ws", &[ws], &format!("connect_attempts = {}", 1 + i % 3)),
            service("other", &[other], "")
        )
    };
    let (app, addr) = start(&version(0)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for i in 1..=100 {
        app.apply(&config(&version(i))).await.unwrap();
        let msg = format!("frame {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg.as_bytes());
    }
}

/// An h2c (HTTP/2 without TLS) backend that answers like a gRPC server: a body, then trailers.
async fn grpc_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let te = req.headers().get("te").cloned();
                    let version = format!("{:?}", req.version());
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = Full::new(Bytes::from_static(b"\0\0\0\0\x02hi"))
                        .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                    let mut resp = Response::new(body);
                    resp.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("application/grpc"),
                    );
                    resp.headers_mut()
                        .insert("x-seen-version", version.parse().unwrap());
                    if let Some(te) = te {
                        resp.headers_mut().insert("x-seen-te", te);
                    }
                    Ok::<_, Infallible>(resp)
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn grpc_over_h2c_passes_trailers_end_to_end() {
    let grpc = grpc_backend().await;
    let body = format!(
        "{}[[routes]]\nservice = \"grpc\"\n",
        service("grpc", &[grpc], "upstream_protocol = \"h2c\"")
    );
    let (_app, addr) = start(&body).await;
    // h2 with prior knowledge on the plain listener, like a gRPC client.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::post("http://grpc.test/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x00")))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-seen-version"],
        "HTTP/2.0",
        "the endpoint was spoken to in h2c"
    );
    assert_eq!(
        resp.headers()["x-seen-te"],
        "trailers",
        "gRPC needs TE: trailers"
    );
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /upload HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let mut out = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("a POST /upload 5"),
        "{text}"
    );
}

#[tokio::test]
async fn proxy_protocol_on_a_listener_gives_the_real_client_address() {
    let a = backend("a").await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"behind-lb\"\nlisten = \"127.0.0.1:0\"\naccept_proxy_protocol = true\n\
         {}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    );
    let app = app::start(Config::parse(&text, "test").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("behind-lb").await.unwrap();
    let exchange = |preamble: Vec<u8>| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&preamble).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .unwrap();
        String::from_utf8_lossy(&out).to_lowercase()
    };
    let v2 =
        switchyard::upstream::proxy_v2_header("192.0.2.44:5555".parse().unwrap(), addr).unwrap();
    let resp = exchange(v2).await;
    assert!(resp.contains("x-seen-xff: 192.0.2.44"), "{resp}");
    let v1 = format!("PROXY TCP4 198.51.100.7 127.0.0.1 4444 {}\r\n", addr.port()).into_bytes();
    let resp = exchange(v1).await;
    assert!(resp.contains("x-seen-xff: 198.51.100.7"), "{resp}");
    assert_eq!(
        exchange(Vec::new()).await,
        "",
        "no PROXY header: closed without an answer"
    );
}

/// A TLS backend (self-signed for 127.0.0.1 and backend.internal); returns its address and the
/// PEM of its certificate (to trust it).
async fn tls_backend(dir: &std::path::Path) -> (SocketAddr, std::path::PathBuf) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let generated = rcgen::generate_simple_self_signed(vec![
        "backend.internal".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap();
    let ca = dir.join("backend.pem");
    std::fs::write(&ca, generated.cert.pem()).unwrap();
    let cert = CertificateDer::from_pem_slice(generated.cert.pem().as_bytes()).unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(generated.signing_key.serialize_pem().as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                let svc = service_fn(move |_req| {
                    let body = format!("tls backend, sni {sni}");
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ca)
}

#[tokio::test]
async fn https_upstreams_are_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, ca) = tls_backend(dir.path()).await;
    let wrong_ca = dir.path().join("wrong.pem");
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let https = |name: &str, extra: String| {
        service(
            name,
            &[backend],
            &format!("upstream_protocol = \"https\"\n{extra}"),
        )
    };
    let body = format!(
        "{}{}{}[[routes]]\nhost = \"ip.test\"\nservice = \"by-ip\"\n\
         [[routes]]\nhost = \"sni.test\"\nservice = \"by-sni\"\n[[routes]]\nhost = \"bad.test\"\nservice = \"bad-ca\"\n",
        https("by-ip", format!("upstream_ca = \"{}\"", ca.display())),
        https(
            "by-sni",
            format!(
                "upstream_ca = \"{}\"\nupstream_sni = \"backend.internal\"",
                ca.display()
            )
        ),
        https(
            "bad-ca",
            format!(
                "upstream_ca = \"{}\"\nconnect_attempts = 1",
                wrong_ca.display()
            )
        ),
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "ip.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni -"),
        "verified against the IP SAN, no SNI sent"
    );
    let (status, _, text) = get(addr, "sni.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni backend.internal")
    );
    assert_eq!(
        get(addr, "bad.test", "/").await.0,
        502,
        "a certificate the CA did not sign is refused"
    );
}

#[test]
fn https_upstreams_need_a_ca() {
    let text = "[[services]]\nname = \"s\"\nupstream_protocol = \"https\"\n[[services.endpoints]]\naddress = \"127.0.0.1:1\"\n";
    let err = Config::parse(text, "t").unwrap_err().to_string();
    assert!(
        err.contains("services[0].upstream_ca: upstream_protocol \"https\" needs a CA file"),
        "{err}"
    );
}

#[tokio::test]
async fn an_endpoint_stays_busy_until_its_response_body_ends() {
    // A raw backend that sends headers and half the body, then waits to be told to finish.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234")
            .await
            .unwrap();
        let _ = finish_rx.await;
        s.write_all(b"56789").await.unwrap();
        let _ = s.read(&mut buf).await;
    });
    let (app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"slow\"\n",
        service("slow", &[backend], "")
    ))
    .await;
    let active = || async {
        let (_, table) = common::admin_get(app.admin_addr(), "/debug/table").await;
        let table: serde_json::Value = serde_json::from_str(&table).unwrap();
        let svc = table["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "slow")
            .cloned()
            .unwrap();
        svc["endpoints"][0]["active"].as_u64().unwrap()
    };
    let mut c = Client::connect(addr).await;
    let req = Request::get("/")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), c.0.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(active().await, 1, "headers arrived, body still streaming");
    finish_tx.send(()).unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"0123456789");
    let mut idle = false;
    for _ in 0..50 {
        if active().await == 0 {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(idle, "the endpoint is released once the body ended");
}

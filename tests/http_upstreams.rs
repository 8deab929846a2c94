//! The HTTP router's upstream side over real sockets: upgrades (WebSocket), gRPC over h2c,
//! 100-continue, endpoint busy counts. PROXY protocol is in `http_upstreams_proxy_protocol.rs`,
//! verified https endpoints in `http_upstreams_https.rs`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, config, service, start};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

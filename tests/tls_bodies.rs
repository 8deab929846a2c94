//! Bodies larger than any buffer of the TLS stream (`src/tls/stream.rs`), through the router
//! over real sockets: a 64 KiB and a 1 MiB request body echoed back over HTTP/1.1 and over
//! HTTP/2 (ALPN), a request whose TLS records arrive a few bytes at a time, and a WebSocket
//! tunnel carrying 256 KiB each way that ends with the client's `close_notify`. Each byte of
//! the answer is compared, so a record lost, cut or repeated fails.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::https::{config_text, start};
use common::tls::{H2, HTTP1, Pki, Tls, certificates, within};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An HTTP/1.1 backend that answers each request with its body.
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    Ok::<_, Infallible>(Response::new(Full::new(body)))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

/// A WebSocket-ish backend: answers a request head with a `101`, then echoes bytes until the
/// proxy half-closes, then closes.
async fn switching_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let switched = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                                 upgrade: websocket\r\n\r\n";
                if socket.write_all(switched).await.is_err() {
                    return;
                }
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// The app with one TLS listener routing `e.test` to the echo backend and `w.test` to the
/// switching one; the PKI it trusts.
async fn start_echo() -> (switchyard::app::App, SocketAddr, Pki) {
    let pki = Pki::new();
    let cert = pki.issue("e", &["e.test", "w.test"]);
    let backend = echo_backend().await;
    let switching = switching_backend().await;
    let body = format!(
        "{}[[services]]\nname = \"echo\"\n[[services.endpoints]]\naddress = \"{backend}\"\n\
         [[services]]\nname = \"ws\"\n[[services.endpoints]]\naddress = \"{switching}\"\n\
         [[routes]]\nhost = \"e.test\"\nservice = \"echo\"\n\
         [[routes]]\nhost = \"w.test\"\nservice = \"ws\"\n",
        certificates(&[(&cert, true)])
    );
    let (app, addr) = start(&config_text(&body)).await;
    (app, addr, pki)
}

fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i * 31 + i / 509) as u8).collect()
}

fn post(uri: &str, body: &Bytes) -> Request<Full<Bytes>> {
    Request::post(uri)
        .header("host", "e.test")
        .body(Full::new(body.clone()))
        .unwrap()
}

async fn body_of(resp: hyper::Result<Response<hyper::body::Incoming>>) -> (u16, Bytes) {
    let resp = resp.unwrap();
    let status = resp.status().as_u16();
    let body = within("body", resp.into_body().collect()).await.unwrap();
    (status, body.to_bytes())
}

#[tokio::test]
async fn large_bodies_are_echoed_whole_over_tls_http1() {
    let (_app, addr, pki) = start_echo().await;
    let tls = Tls::to(addr, &pki, "e.test", &[HTTP1]).await;
    assert_eq!(tls.alpn().as_deref(), Some(HTTP1));
    let mut h1 = tls.h1().await;
    for len in [64 * 1024, 1024 * 1024] {
        let sent = pattern(len);
        within("ready", h1.0.ready()).await.unwrap();
        let (status, got) =
            body_of(within("post", h1.0.send_request(post("/", &sent))).await).await;
        assert_eq!(status, 200);
        assert!(
            got == sent,
            "{len} bytes: the echo differs ({} back)",
            got.len()
        );
    }
}

#[tokio::test]
async fn large_bodies_are_echoed_whole_over_tls_h2() {
    let (_app, addr, pki) = start_echo().await;
    let tls = Tls::to(addr, &pki, "e.test", &[H2]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let h2 = tls.h2().await;
    // Two at once on the one connection, to interleave their frames.
    let mut tasks = Vec::new();
    for len in [64 * 1024, 1024 * 1024] {
        let mut h2 = h2.clone();
        tasks.push(tokio::spawn(async move {
            let sent = pattern(len);
            within("ready", h2.0.ready()).await.unwrap();
            let req = post("https://e.test/", &sent);
            let (status, got) = body_of(within("post", h2.0.send_request(req)).await).await;
            assert_eq!(status, 200);
            assert!(
                got == sent,
                "{len} bytes: the echo differs ({} back)",
                got.len()
            );
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_request_whose_records_arrive_three_bytes_at_a_time_is_answered() {
    let (_app, addr, pki) = start_echo().await;
    let tls = Tls::to(addr, &pki, "e.test", &[HTTP1]).await;
    let (tcp, conn) = tls.stream.into_inner();
    tcp.set_nodelay(true).unwrap();
    let mut conn = conn;
    let mut tcp = tcp;
    let request = b"POST / HTTP/1.1\r\nhost: e.test\r\ncontent-length: 5\r\n\r\nhello";
    std::io::Write::write_all(&mut conn.writer(), request).unwrap();
    let mut records = Vec::new();
    conn.write_tls(&mut records).unwrap();
    for chunk in records.chunks(3) {
        tcp.write_all(chunk).await.unwrap();
        tokio::task::yield_now().await;
    }
    let mut answer = Vec::new();
    while !answer.ends_with(b"hello") {
        let mut buf = [0u8; 4096];
        let n = within("answer", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&answer));
        conn.read_tls(&mut &buf[..n]).unwrap();
        conn.process_new_packets().unwrap();
        let _ = std::io::Read::read_to_end(&mut conn.reader(), &mut answer);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
}

#[tokio::test]
async fn a_websocket_tunnel_over_tls_carries_large_messages_and_ends_on_close_notify() {
    let (_app, addr, pki) = start_echo().await;
    let tls = Tls::to(addr, &pki, "w.test", &[HTTP1]).await;
    let mut s = tls.stream;
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: w.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(within("101", s.read(&mut byte)).await.unwrap(), 1);
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let sent = pattern(256 * 1024);
    let (mut r, mut w) = tokio::io::split(s);
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&to_send).await.unwrap();
        // close_notify and the TCP half-close: the tunnel passes the end on to the backend,
        // whose close comes back as the proxy's close_notify.
        w.shutdown().await.unwrap();
    });
    let mut got = Vec::new();
    within("echo and end", r.read_to_end(&mut got))
        .await
        .unwrap();
    writer.await.unwrap();
    assert!(got == sent, "the echo differs ({} bytes back)", got.len());
}

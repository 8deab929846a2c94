//! WebSockets over HTTP/3 (RFC 9220): an extended CONNECT with `:protocol websocket` on an
//! HTTP/3 stream goes to the endpoint as an HTTP/1.1 upgrade with a fresh key (or as an
//! extended CONNECT to an `h2c` service), exactly as over HTTP/2, and the stream is the
//! tunnel: frames both ways, the close handshake and half-close, refusals, the endpoint's
//! active count, and a drain that waits for the tunnel and cuts it at the deadline. Real
//! sockets, a quinn + h3 client, the hand-written WebSocket backends of the HTTP/2 tests.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "http3_support/client.rs"]
mod client;
mod common;
#[path = "websocket_h2/setup.rs"]
#[allow(dead_code)] // shared with the HTTP/2 tests, which use all of it
mod setup;
#[path = "websocket_h2/support.rs"]
mod support;

use bytes::{Buf, Bytes, BytesMut};
use client::{H3, client_config};
use common::tls::within;
use http::{HeaderMap, Method, Request, StatusCode};
use setup::{Setup, active_settled, assert_handshake, close, settled, start_with};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Accept, echo, field};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// An HTTP/3 connection to the `tls` listener (SNI `ws.test`), with QUIC keep-alives so that
/// a quiet tunnel outlives the listener's short idle timeout (300 ms, as QUIC's), as a
/// browser's PINGs keep it.
async fn connect(s: &Setup) -> H3 {
    let mut config = client_config(s.pki.roots(), None);
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_millis(100)));
    config.transport_config(Arc::new(transport));
    within("h3 connect", H3::connect_with(s.tls, config, "ws.test"))
        .await
        .unwrap()
}

/// What an extended CONNECT over HTTP/3 got.
enum Opened {
    /// The `200`'s fields, and the stream as a byte pipe (see [`pipe`]).
    Tunnel(HeaderMap, DuplexStream),
    /// Another status, with its body.
    Refused(StatusCode, String),
}

impl Opened {
    fn tunnel(self) -> (DuplexStream, HeaderMap) {
        match self {
            Opened::Tunnel(headers, io) => (io, headers),
            Opened::Refused(status, body) => panic!("refused: {status} {body}"),
        }
    }

    fn refused(self) -> (StatusCode, String) {
        match self {
            Opened::Tunnel(headers, _) => panic!("a tunnel opened: {headers:?}"),
            Opened::Refused(status, body) => (status, body),
        }
    }
}

/// Sends an extended CONNECT for `protocol` to `url` (asking for subprotocol `chat`).
async fn open(conn: &mut H3, url: &str, protocol: h3::ext::Protocol) -> Opened {
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri(url)
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, superchat")
        .body(())
        .unwrap();
    req.extensions_mut().insert(protocol);
    let mut stream = within("extended CONNECT", conn.send.send_request(req))
        .await
        .unwrap();
    let response = within("response", stream.recv_response()).await.unwrap();
    if response.status() != StatusCode::OK {
        let mut body = BytesMut::new();
        while let Some(mut chunk) = within("refusal body", stream.recv_data()).await.unwrap() {
            body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        return Opened::Refused(
            response.status(),
            String::from_utf8_lossy(&body).into_owned(),
        );
    }
    Opened::Tunnel(response.headers().clone(), pipe(stream))
}

/// Opens a WebSocket to `url`: the tunnel and the `200`'s fields.
async fn websocket(conn: &mut H3, url: &str) -> (DuplexStream, HeaderMap) {
    open(conn, url, h3::ext::Protocol::WEBSOCKET).await.tunnel()
}

/// The stream as bytes in and out (an in-memory pipe bridged to it by a task): what is
/// written goes as DATA, shutting the pipe down finishes the stream (FIN), and what comes
/// back is read; the end of the stream, or its reset, ends the pipe.
fn pipe(stream: h3::client::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>) -> DuplexStream {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (mut up, mut down) = stream.split();
    let (mut from_test, mut to_test) = tokio::io::split(theirs);
    tokio::spawn(async move {
        let mut buf = BytesMut::new();
        loop {
            buf.reserve(16 * 1024);
            match from_test.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if up.send_data(buf.split().freeze()).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = up.finish().await;
    });
    tokio::spawn(async move {
        while let Ok(Some(mut data)) = down.recv_data().await {
            if to_test.write_all_buf(&mut data).await.is_err() {
                return;
            }
        }
        let _ = to_test.shutdown().await;
    });
    ours
}

#[tokio::test]
async fn a_websocket_over_http3_reaches_the_endpoint_as_an_http11_upgrade() {
    let s = start_with(Accept::Right, true).await;
    let mut conn = connect(&s).await;
    let (mut ws, headers) = websocket(&mut conn, "https://ws.test/chat?room=1").await;
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    assert!(headers.get("sec-websocket-accept").is_none(), "{headers:?}");
    echo(&mut ws, b"hello over h3").await;
    // A second WebSocket on the same connection, beside the first.
    let (mut second, _) = websocket(&mut conn, "https://ws.test/other").await;
    echo(&mut second, b"second").await;
    echo(&mut ws, b"first again").await;
    let heads = s.ws.heads();
    assert_eq!(heads.len(), 2);
    let first_key = assert_handshake(&heads[0], "/chat?room=1", "https");
    let second_key = assert_handshake(&heads[1], "/other", "https");
    assert_ne!(first_key, second_key, "a fresh key per request");
    // The close handshake: the endpoint ends its side, then the client its own (FIN).
    close(&mut ws).await;
    echo(&mut second, b"still open").await;
    close(&mut second).await;
    assert_eq!(s.ws.ended(2).await, 2);
    // Plain requests still go on the same connection.
    let reply = conn.get("ws.test", "/after").await;
    assert!(reply.is_ok(), "{reply:?}");
}

#[tokio::test]
async fn an_h2c_service_gets_the_websocket_as_an_extended_connect() {
    let s = start_with(Accept::Right, true).await;
    let mut conn = connect(&s).await;
    let (mut ws, headers) = websocket(&mut conn, "https://h2c.test/chat?x=1").await;
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    echo(&mut ws, b"h3 in, h2 out").await;
    let head = &s.h2c.heads()[0];
    assert!(
        head.starts_with("CONNECT /chat?x=1 protocol=websocket\r\n"),
        "{head}"
    );
    assert_eq!(field(head, "sec-websocket-key"), None, "{head}");
    assert_eq!(field(head, "x-forwarded-proto"), Some("https"), "{head}");
    let admin = s.app.admin_addr();
    assert_eq!(active_settled(admin, "h2ws", 1).await, 1);
    close(&mut ws).await;
    assert_eq!(active_settled(admin, "h2ws", 0).await, 0);
}

#[tokio::test]
async fn another_protocol_a_service_without_upgrades_and_a_denied_source_are_refused() {
    let s = start_with(Accept::Right, true).await;
    let mut conn = connect(&s).await;
    let refusals = [
        ("https://ws.test/chat", h3::ext::Protocol::CONNECT_UDP),
        ("https://plain.test/chat", h3::ext::Protocol::WEBSOCKET),
        ("https://denied.test/chat", h3::ext::Protocol::WEBSOCKET),
    ];
    let mut got = Vec::new();
    for (url, protocol) in refusals {
        got.push(open(&mut conn, url, protocol).await.refused());
    }
    let want = [
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        (StatusCode::FORBIDDEN, "forbidden\n"),
    ];
    let got: Vec<(StatusCode, &str)> = got.iter().map(|(c, b)| (*c, b.as_str())).collect();
    assert_eq!(got, want);
    assert!(s.ws.heads().is_empty() && s.plain.heads().is_empty());
    // The connection still serves WebSockets where they are allowed.
    let (mut ws, _) = websocket(&mut conn, "https://ws.test/chat").await;
    echo(&mut ws, b"allowed").await;
}

#[tokio::test]
async fn an_endpoint_that_answers_another_key_gets_the_client_a_502() {
    let s = start_with(Accept::Wrong, true).await;
    let mut conn = connect(&s).await;
    let (status, _) = open(
        &mut conn,
        "https://ws.test/chat",
        h3::ext::Protocol::WEBSOCKET,
    )
    .await
    .refused();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(s.ws.heads().len(), 1);
}

#[tokio::test]
async fn an_h3_tunnel_holds_its_connection_and_its_endpoint_count() {
    let s = start_with(Accept::Right, true).await;
    let admin = s.app.admin_addr();
    let mut conn = connect(&s).await;
    let (mut one, _) = websocket(&mut conn, "https://ws.test/one").await;
    assert_eq!(settled(admin, (1, 1.0)).await, (1, 1.0));
    let (mut two, _) = websocket(&mut conn, "https://ws.test/two").await;
    // Two tunnels, one (QUIC) connection.
    assert_eq!(settled(admin, (2, 1.0)).await, (2, 1.0));
    tokio::time::sleep(Duration::from_millis(800)).await;
    echo(&mut one, b"quiet, not cut").await;
    close(&mut two).await;
    assert_eq!(settled(admin, (1, 1.0)).await, (1, 1.0));
    close(&mut one).await;
    assert_eq!(settled(admin, (0, 1.0)).await, (0, 1.0));
    drop(conn);
}

#[tokio::test]
async fn a_drain_waits_for_an_h3_tunnel_and_cuts_it_at_the_deadline() {
    let s = start_with(Accept::Right, true).await;
    let mut conn = connect(&s).await;
    let (mut ws, _) = websocket(&mut conn, "https://ws.test/chat").await;
    let started = Instant::now();
    let shutdown = tokio::spawn(s.app.shutdown(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo(&mut ws, b"during the drain").await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the tunnel"
    );
    // The connection got its GOAWAY: a new request is refused, while the tunnel goes on.
    let late = tokio::time::timeout(Duration::from_secs(5), conn.get("ws.test", "/late")).await;
    assert!(
        !matches!(late, Ok(Ok(ref r)) if r.status == StatusCode::OK),
        "a new request during the drain: {late:?}"
    );
    echo(&mut ws, b"still going").await;
    let mut rest = Vec::new();
    let read = within("cut", ws.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?} {rest:?}");
    within("shutdown", shutdown).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "cut after {took:?}");
    // The cut reaches the endpoint too: its side of the tunnel is closed.
    assert_eq!(s.ws.ended(1).await, 1);
}

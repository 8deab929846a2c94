//! The extended conformance tests HTTPRouteBackendProtocolH2C and
//! HTTPRouteBackendProtocolWebSocket through the fake API server and the real binary: an
//! HTTPRoute to a Service port with `appProtocol: kubernetes.io/h2c` reaches a backend that
//! speaks only HTTP/2 without TLS (a client's HTTP/2 prior-knowledge request and an HTTP/1.1
//! one alike), and one to a port with `appProtocol: kubernetes.io/ws` carries a WebSocket:
//! the upgrade is answered `101` and text and binary frames come back from the backend. Facts
//! from the upstream suite (`conformance/tests/httproute-backend-protocol-*`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use fake_kube::objects::{READY, service, slice};
use gateway_support::{Setup, route, setup};
use serde_json::json;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "protocols.example.com";

/// Service `infra/name` whose port 80 says `app_protocol`, its one endpoint at `port`.
fn typed_backend(s: &Setup, name: &str, app_protocol: &str, port: u16) {
    let mut svc = service("infra", name);
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].app_protocol = Some(app_protocol.into());
    s.fake.apply(&svc);
    s.fake
        .apply(&slice("infra", name, &format!("{name}-a"), port, READY));
}

/// A backend speaking only HTTP/2 with prior knowledge, answering `h2c-only <path>`.
async fn h2c_only_backend() -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let body = format!("h2c-only {}", req.uri().path());
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(body)),
                            ))
                        }
                    });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// GET `path` over HTTP/2 with prior knowledge (no TLS) to `addr`: (status, body).
async fn h2c_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let fut = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("http://{HOST}{path}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

/// Conformance HTTPRouteBackendProtocolH2C: an HTTPRoute to Service `h2c` (appProtocol
/// `kubernetes.io/h2c`, a backend that speaks only h2c) answers 200 from that backend to an
/// HTTP/2 prior-knowledge request, and to an HTTP/1.1 one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_app_protocol_backend_is_reached_over_h2c() {
    let s = setup(None, "Same").await;
    let port = h2c_only_backend().await;
    typed_backend(&s, "h2c", "kubernetes.io/h2c", port);
    s.fake.apply(&route(
        "infra",
        "backend-protocol-h2c",
        &[HOST],
        json!([{"backendRefs": [{"name": "h2c", "port": 80}]}]),
    ));
    let want = Some((200, "h2c-only /".to_owned()));
    let ok = poll(Duration::from_secs(10), || async {
        h2c_get(s.port, "/").await == want
    })
    .await;
    let got = h2c_get(s.port, "/").await;
    assert!(ok, "want {want:?}, got {got:?}; log:\n{}", s.proxy.log());
    s.expect(HOST, "/h1", "", 200, "h2c-only /h1").await;
}

/// A WebSocket backend: checks the upgrade request, answers `101`, then returns each
/// (masked, short) frame it reads as an unmasked frame of the same opcode and payload.
async fn websocket_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Some(head) = read_head(&mut socket).await else {
                    return;
                };
                if !head.to_ascii_lowercase().contains("upgrade: websocket\r\n") {
                    let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                    return;
                }
                let switched = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                                 upgrade: websocket\r\n\r\n";
                if socket.write_all(switched).await.is_err() {
                    return;
                }
                while let Some((opcode, payload)) = read_frame(&mut socket).await {
                    let mut reply = vec![0x80 | opcode, payload.len() as u8];
                    reply.extend_from_slice(&payload);
                    if socket.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A request or response head, byte by byte (so nothing after it is read).
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

/// One masked frame with a payload under 126 bytes: (opcode, unmasked payload).
async fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut start = [0u8; 2];
    s.read_exact(&mut start).await.ok()?;
    let len = usize::from(start[1] & 0x7f);
    let mut mask = [0u8; 4];
    s.read_exact(&mut mask).await.ok()?;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((start[0] & 0x0f, payload))
}

/// A client frame: FIN, `opcode`, masked `payload` (under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Opens a WebSocket to `/ws` through `addr`, sends a text and a binary frame and returns
/// what came back: the `101` head's first line and the two (header, payload) replies.
async fn websocket_round(addr: SocketAddr) -> Option<(String, Vec<Vec<u8>>)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET /ws HTTP/1.1\r\nhost: {HOST}\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
             sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let head = read_head(&mut s).await?;
        let first = head.lines().next()?.to_owned();
        let mut replies = Vec::new();
        for (opcode, payload) in [(1, &b"Websocket Support!"[..]), (2, &[1, 2, 3, 4, 5, 6, 7])] {
            s.write_all(&client_frame(opcode, payload)).await.ok()?;
            let mut reply = vec![0u8; 2 + payload.len()];
            s.read_exact(&mut reply).await.ok()?;
            replies.push(reply);
        }
        Some((first, replies))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

/// Conformance HTTPRouteBackendProtocolWebSocket: an HTTPRoute to Service `ws` (appProtocol
/// `kubernetes.io/ws`): the upgrade of `/ws` is answered `101 Switching Protocols`, the text
/// frame "Websocket Support!" and the binary frame 1..7 come back as the backend sent them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ws_app_protocol_backend_carries_a_websocket() {
    let s = setup(None, "Same").await;
    let port = websocket_backend().await;
    typed_backend(&s, "ws", "kubernetes.io/ws", port);
    s.fake.apply(&route(
        "infra",
        "backend-protocol-ws",
        &[HOST],
        json!([{"backendRefs": [{"name": "ws", "port": 80}]}]),
    ));
    let mut text = vec![0x81, 18];
    text.extend_from_slice(b"Websocket Support!");
    let want = Some((
        "HTTP/1.1 101 Switching Protocols".to_owned(),
        vec![text, vec![0x82, 7, 1, 2, 3, 4, 5, 6, 7]],
    ));
    let ok = poll(Duration::from_secs(10), || async {
        websocket_round(s.port).await == want
    })
    .await;
    let got = websocket_round(s.port).await;
    assert!(ok, "want {want:?}, got {got:?}; log:\n{}", s.proxy.log());
}

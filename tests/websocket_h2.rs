//! WebSockets over HTTP/2 (RFC 8441): the HTTP/2 listener (TLS with ALPN h2, and h2c) offers
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and an extended CONNECT with `:protocol websocket` goes
//! to the endpoint as an HTTP/1.1 upgrade with a fresh key, whose accept is checked. The
//! tunnel, one stream of a shared connection, is accounted like an HTTP/1.1 one: it keeps its
//! connection (slot, gauge) open and not idle, holds its endpoint's active count, and a drain
//! waits for it until the deadline. Real sockets, hyper's HTTP/2 client, a backend that speaks
//! the WebSocket handshake and frames.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
#[path = "websocket_h2/setup.rs"]
mod setup;
#[path = "websocket_h2/support.rs"]
mod support;

use common::eventually_metric;
use common::h2::{PREFACE, SETTINGS, frame, read_frame};
use common::tls::{Pki, Tls, within};
use http::StatusCode;
use setup::{Child, active_settled, assert_handshake, close, config_text, h2_tls, settled, start};
use std::time::{Duration, Instant};
use support::{Accept, backend, echo, field, h2_client, open, try_open};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_websocket_over_tls_h2_reaches_the_endpoint_as_an_http11_upgrade() {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (mut ws, headers) = open(&mut send, "https://ws.test/chat?room=1", "websocket")
        .await
        .tunnel();
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    assert!(headers.get("sec-websocket-accept").is_none(), "{headers:?}");
    echo(&mut ws, b"hello over h2").await;
    // A second WebSocket on the same connection, beside the first.
    let (mut second, _) = open(&mut send, "https://ws.test/other", "websocket")
        .await
        .tunnel();
    echo(&mut second, b"second").await;
    echo(&mut ws, b"first again").await;
    let heads = s.ws.heads();
    assert_eq!(heads.len(), 2);
    let first_key = assert_handshake(&heads[0], "/chat?room=1", "https");
    let second_key = assert_handshake(&heads[1], "/other", "https");
    assert_ne!(first_key, second_key, "a fresh key per request");
    close(&mut ws).await;
    echo(&mut second, b"still open").await;
    close(&mut second).await;
}

#[tokio::test]
async fn a_websocket_over_h2c_reaches_the_endpoint_too() {
    let s = start(Accept::Right).await;
    let mut send = h2_client(TcpStream::connect(s.web).await.unwrap()).await;
    let (mut ws, headers) = open(&mut send, "http://ws.test/chat", "websocket")
        .await
        .tunnel();
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    echo(&mut ws, b"hello over h2c").await;
    assert_handshake(&s.ws.heads()[0], "/chat", "http");
    close(&mut ws).await;
}

#[tokio::test]
async fn an_h2c_service_gets_the_extended_connect_as_it_is() {
    passes_the_extended_connect_on("h2c.test", "h2ws", |s| &s.h2c).await;
}

/// An `h2` service (HTTP/2 over TLS to the endpoint) takes the extended CONNECT as an `h2c`
/// one does: the same path, over the verified TLS client.
#[tokio::test]
async fn an_h2_over_tls_service_gets_the_extended_connect_too() {
    passes_the_extended_connect_on("h2tls.test", "h2tls", |s| &s.h2tls).await;
}

/// A WebSocket to `host`, routed to HTTP/2 `service` whose endpoint is `endpoint`, reaches it
/// as the extended CONNECT it is (no key, no `Upgrade`), and holds the endpoint's active count
/// while it lasts.
async fn passes_the_extended_connect_on(
    host: &str,
    service: &str,
    endpoint: fn(&setup::Setup) -> &support::Backend,
) {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (mut ws, headers) = open(&mut send, &format!("https://{host}/chat?x=1"), "websocket")
        .await
        .tunnel();
    assert_eq!(headers["sec-websocket-protocol"], "chat");
    echo(&mut ws, b"h2 on both sides").await;
    let head = &endpoint(&s).heads()[0];
    assert!(
        head.starts_with("CONNECT /chat?x=1 protocol=websocket\r\n"),
        "{head}"
    );
    assert_eq!(field(head, "sec-websocket-version"), Some("13"), "{head}");
    assert_eq!(
        field(head, "sec-websocket-protocol"),
        Some("chat, superchat"),
        "{head}"
    );
    assert_eq!(field(head, "sec-websocket-key"), None, "{head}");
    assert_eq!(field(head, "upgrade"), None, "{head}");
    assert_eq!(field(head, "x-forwarded-proto"), Some("https"), "{head}");
    echo(&mut ws, b"again").await;
    let admin = s.app.admin_addr();
    assert_eq!(active_settled(admin, service, 1).await, 1);
    close(&mut ws).await;
    assert_eq!(active_settled(admin, service, 0).await, 0);
    assert_eq!(endpoint(&s).ended(1).await, 1);
}

#[tokio::test]
async fn the_tls_listener_advertises_extended_connect_in_its_settings() {
    let s = start(Accept::Right).await;
    let mut tls = Tls::to(s.tls, &s.pki, "ws.test", &[b"h2"]).await.stream;
    let mut opening = PREFACE.to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    tls.write_all(&opening).await.unwrap();
    let settings = within("settings", read_frame(&mut tls)).await.unwrap();
    assert_eq!(
        (settings.kind, settings.flags, settings.stream),
        (SETTINGS, 0, 0)
    );
    let pairs: Vec<(u16, u32)> = settings
        .payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    // SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8) = 1 (RFC 8441 §3).
    assert!(pairs.contains(&(0x8, 1)), "{pairs:?}");
}

#[tokio::test]
async fn another_protocol_and_a_service_without_upgrades_are_refused_as_a_connect() {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (status, body) = open(&mut send, "https://ws.test/chat", "connect-udp")
        .await
        .refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
    );
    let (status, body) = open(&mut send, "https://plain.test/chat", "websocket")
        .await
        .refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
    );
    assert!(s.ws.heads().is_empty() && s.plain.heads().is_empty());
    // The connection still serves WebSockets where they are allowed.
    let (mut ws, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .tunnel();
    echo(&mut ws, b"allowed").await;
}

#[tokio::test]
async fn the_route_s_allow_sources_and_metrics_apply_to_a_websocket_over_h2() {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (status, body) = open(&mut send, "https://denied.test/chat", "websocket")
        .await
        .refused();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "forbidden\n")
    );
    assert!(s.ws.heads().is_empty());
    let (mut ws, _) = open(&mut send, "https://counted.test/chat", "websocket")
        .await
        .tunnel();
    echo(&mut ws, b"counted").await;
    let admin = s.app.admin_addr();
    for (route, code) in [("counted.test/", "2xx"), ("denied.test/", "4xx")] {
        let name = format!(
            r#"switchyard_http_requests_total{{service="ws",route="{route}",code="{code}"}}"#
        );
        assert_eq!(
            eventually_metric(admin, &name, 1.0).await,
            Some(1.0),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_endpoint_that_answers_another_key_gets_the_client_a_502() {
    let s = start(Accept::Wrong).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (status, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .refused();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(s.ws.heads().len(), 1);
}

#[tokio::test]
async fn h2_tunnels_hold_their_connection_and_their_endpoint_count_past_the_idle_timeout() {
    let s = start(Accept::Right).await;
    let admin = s.app.admin_addr();
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (mut one, _) = open(&mut send, "https://ws.test/one", "websocket")
        .await
        .tunnel();
    assert_eq!(settled(admin, (1, 1.0)).await, (1, 1.0));
    let (mut two, _) = open(&mut send, "https://ws.test/two", "websocket")
        .await
        .tunnel();
    // Two tunnels, one connection.
    assert_eq!(settled(admin, (2, 1.0)).await, (2, 1.0));
    // Well past h2_idle_timeout (300ms) and the header_read_timeout a GOAWAY'd connection
    // gets to go idle (400ms): the tunnels are requests in flight, so the connection got no
    // GOAWAY and still takes new streams.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    echo(&mut one, b"not idle").await;
    echo(&mut two, b"not idle either").await;
    let (mut three, _) = open(&mut send, "https://ws.test/three", "websocket")
        .await
        .tunnel();
    echo(&mut three, b"a new stream").await;
    assert_eq!(settled(admin, (3, 1.0)).await, (3, 1.0));
    close(&mut three).await;
    assert_eq!(settled(admin, (2, 1.0)).await, (2, 1.0));
    close(&mut two).await;
    assert_eq!(settled(admin, (1, 1.0)).await, (1, 1.0));
    echo(&mut one, b"alone").await;
    drop((one, send));
    assert_eq!(settled(admin, (0, 0.0)).await, (0, 0.0));
}

#[tokio::test]
async fn a_drain_waits_for_an_h2_tunnel_and_ends_when_it_closes() {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (mut ws, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .tunnel();
    let started = Instant::now();
    let shutdown = tokio::spawn(s.app.shutdown(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo(&mut ws, b"during the drain").await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the tunnel"
    );
    close(&mut ws).await;
    within("shutdown", shutdown).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "ended after {took:?}, not when the tunnel closed"
    );
}

#[tokio::test]
async fn a_drain_cuts_an_h2_tunnel_at_the_deadline() {
    let s = start(Accept::Right).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (mut ws, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .tunnel();
    let started = Instant::now();
    let shutdown = tokio::spawn(s.app.shutdown(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo(&mut ws, b"during the drain").await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the tunnel"
    );
    // The connection got its GOAWAY: no new stream, while the tunnel goes on.
    let late = try_open(&mut send, "https://ws.test/late").await;
    assert!(late.is_err(), "a new stream during the drain: {late:?}");
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

#[tokio::test]
async fn sigterm_with_only_an_h2_websocket_open_waits_for_it_and_cuts_it_at_drain_timeout() {
    use common::proc::{BIN, eventually, free_ports, get, write};
    let pki = Pki::new();
    let (ws, plain) = (backend(Accept::Right).await, backend(Accept::Right).await);
    let (admin, tls) = free_ports();
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &pki,
        ws.addr,
        plain.addr,
        &admin.to_string(),
        &tls.to_string(),
    );
    let path = write(&dir, "switchyard.toml", &text);
    let mut child = Child(
        std::process::Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let ready = || async move { matches!(get(admin, "/readyz").await, Some((200, _))) };
    assert!(
        eventually(Duration::from_secs(10), ready).await,
        "not ready"
    );
    let mut send = h2_tls(tls, &pki).await;
    let (mut ws, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .tunnel();
    echo(&mut ws, b"before").await;
    let term = tokio::process::Command::new("kill")
        .args(["-s", "TERM", &child.0.id().to_string()])
        .status()
        .await
        .unwrap();
    assert!(term.success());
    let started = Instant::now();
    // Draining (drain_timeout 1500ms): the WebSocket still carries frames.
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo(&mut ws, b"during the drain").await;
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "exited before the deadline"
    );
    // At the deadline it is cut, and the process exits.
    let mut rest = Vec::new();
    let read = within("cut", ws.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?} {rest:?}");
    let exited = within("exit", async {
        loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(exited.success(), "{exited}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "cut after {took:?}");
}

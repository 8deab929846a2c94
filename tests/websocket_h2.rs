//! WebSockets over HTTP/2 (RFC 8441): the HTTP/2 listener (TLS with ALPN h2, and h2c) offers
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and an extended CONNECT with `:protocol websocket` goes
//! to the endpoint as an HTTP/1.1 upgrade with a fresh key, whose accept is checked. The
//! tunnel, one stream of a shared connection, is accounted like an HTTP/1.1 one: it keeps its
//! connection (slot, gauge) open and not idle, holds its endpoint's active count, and a drain
//! waits for it until the deadline. Real sockets, hyper's HTTP/2 client, a backend that speaks
//! the WebSocket handshake and frames.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
#[path = "websocket_h2/support.rs"]
mod support;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::h2::{PREFACE, SETTINGS, frame, read_frame};
use common::tls::{Pki, Tls, certificates, within};
use common::{admin_get, metric};
use http::StatusCode;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{Accept, Backend, backend, echo, field, h2_client, open};
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The app with a TLS listener `tls` and a plain one `web`: `ws.test` goes to `ws` (which
/// passes WebSockets, the default), `plain.test` to `plain` (which passes no upgrade).
struct Setup {
    app: App,
    tls: SocketAddr,
    web: SocketAddr,
    pki: Pki,
    ws: Backend,
    plain: Backend,
}

/// The config text for `ws`'s and `plain`'s backends, listening where `tls`/`admin` say
/// (`127.0.0.1:0` in process).
fn config_text(pki: &Pki, ws: SocketAddr, plain: SocketAddr, admin: &str, tls: &str) -> String {
    let cert = pki.issue("ws", &["ws.test", "plain.test"]);
    format!(
        "[admin]\nlisten = \"{admin}\"\n[runtime]\ndrain_timeout = \"1500ms\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"{tls}\"\ntls = true\nh2_idle_timeout = \"300ms\"\nheader_read_timeout = \"400ms\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n\
         {}\
         [[services]]\nname = \"ws\"\nscheduler = \"lc\"\n[[services.endpoints]]\naddress = \"{ws}\"\n\
         [[services]]\nname = \"plain\"\nupgrades = []\n[[services.endpoints]]\naddress = \"{plain}\"\n\
         [[routes]]\nhost = \"ws.test\"\nservice = \"ws\"\n\
         [[routes]]\nhost = \"plain.test\"\nservice = \"plain\"\n",
        certificates(&[(&cert, true)])
    )
}

async fn start(accept: Accept) -> Setup {
    let pki = Pki::new();
    let (ws, plain) = (backend(accept).await, backend(Accept::Right).await);
    let text = config_text(&pki, ws.addr, plain.addr, "127.0.0.1:0", "127.0.0.1:0");
    let config = Config::parse(&text, "test").unwrap();
    let app = within("start", app::start(config)).await.unwrap();
    let tls = app.http_addr("tls").await.unwrap();
    let web = app.http_addr("web").await.unwrap();
    Setup {
        app,
        tls,
        web,
        pki,
        ws,
        plain,
    }
}

/// An HTTP/2 client over TLS (ALPN h2) to `addr`.
async fn h2_tls(
    addr: SocketAddr,
    pki: &Pki,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let tls = Tls::to(addr, pki, "ws.test", &[b"h2"]).await;
    assert_eq!(tls.alpn().as_deref(), Some(&b"h2"[..]));
    h2_client(tls.stream).await
}

/// Checks the handshake the endpoint got for `path` over `proto`, and returns its key.
fn assert_handshake(head: &str, path: &str, proto: &str) -> String {
    assert!(
        head.starts_with(&format!("GET {path} HTTP/1.1\r\n")),
        "{head}"
    );
    assert_eq!(field(head, "host"), Some("ws.test"), "{head}");
    assert_eq!(field(head, "connection"), Some("upgrade"), "{head}");
    assert_eq!(field(head, "upgrade"), Some("websocket"), "{head}");
    assert_eq!(field(head, "sec-websocket-version"), Some("13"), "{head}");
    assert_eq!(
        field(head, "sec-websocket-protocol"),
        Some("chat, superchat"),
        "{head}"
    );
    assert_eq!(field(head, "x-forwarded-proto"), Some(proto), "{head}");
    let key = field(head, "sec-websocket-key").unwrap();
    assert_eq!(STANDARD.decode(key).unwrap().len(), 16, "{head}");
    key.to_owned()
}

/// Closes a WebSocket: the close frame is echoed, the endpoint ends its side of the stream,
/// then the client ends its own (END_STREAM).
async fn close(ws: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin)) {
    ws.write_all(&support::client_frame_close()).await.unwrap();
    let mut rest = Vec::new();
    within("close", ws.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(rest, support::server_frame(0x8, b""));
    within("end of stream", ws.shutdown()).await.unwrap();
}

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
async fn an_endpoint_that_answers_another_key_gets_the_client_a_502() {
    let s = start(Accept::Wrong).await;
    let mut send = h2_tls(s.tls, &s.pki).await;
    let (status, _) = open(&mut send, "https://ws.test/chat", "websocket")
        .await
        .refused();
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(s.ws.heads().len(), 1);
}

/// The `ws` endpoint's active count and the `tls` listener's connection gauge.
async fn counts(admin: SocketAddr) -> (u64, f64) {
    let (_, table) = admin_get(admin, "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let service = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ws")
        .unwrap();
    let active = service["endpoints"][0]["active"].as_u64().unwrap();
    let (_, text) = admin_get(admin, "/metrics").await;
    let gauge = metric(
        &text,
        "switchyard_http_connections_active{listener=\"tls\"}",
    )
    .unwrap_or(-1.0);
    (active, gauge)
}

/// The counts once they reach `want`, or as they are after a few seconds.
async fn settled(admin: SocketAddr, want: (u64, f64)) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = counts(admin).await;
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let mut rest = Vec::new();
    let read = within("cut", ws.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?} {rest:?}");
    within("shutdown", shutdown).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "cut after {took:?}");
}

/// `switchyard run` as a child process, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

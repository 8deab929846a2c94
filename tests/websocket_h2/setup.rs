//! The app the WebSocket-over-HTTP/2 tests run against, and what they check on it: the
//! handshake the endpoint got, a WebSocket's close, the connection and endpoint counts.
#![allow(unreachable_pub)]

use crate::common::tls::{Pki, Tls, certificates, within};
use crate::common::{admin_get, metric};
use crate::support::{Accept, Backend, backend, field, h2_client, h2_tls_backend, h2c_backend};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The app with a TLS listener `tls` and a plain one `web`: `ws.test` goes to `ws` (which
/// passes WebSockets, the default), `plain.test` to `plain` (which passes no upgrade), and
/// `denied.test` to `ws` for clients in 10.0.0.0/8 only; `counted.test` to `ws`, for one test
/// (metrics are the process's); and, added by [`start`], `h2c.test` to `h2ws`, an `h2c`
/// service, and `h2tls.test` to `h2tls`, an `h2` one (HTTP/2 over TLS).
pub struct Setup {
    pub app: App,
    pub tls: SocketAddr,
    pub web: SocketAddr,
    pub pki: Pki,
    pub ws: Backend,
    pub plain: Backend,
    pub h2c: Backend,
    /// The `h2` (HTTP/2 over TLS) service's endpoint, for `h2tls.test`.
    pub h2tls: Backend,
}

/// The config text for `ws`'s and `plain`'s backends, listening where `tls`/`admin` say
/// (`127.0.0.1:0` in process).
pub fn config_text(pki: &Pki, ws: SocketAddr, plain: SocketAddr, admin: &str, tls: &str) -> String {
    let cert = pki.issue(
        "ws",
        &[
            "ws.test",
            "plain.test",
            "denied.test",
            "counted.test",
            "h2c.test",
            "h2tls.test",
        ],
    );
    format!(
        "[admin]\nlisten = \"{admin}\"\n[runtime]\ndrain_timeout = \"1500ms\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"{tls}\"\ntls = true\nh2_idle_timeout = \"300ms\"\nheader_read_timeout = \"400ms\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n\
         {}\
         [[services]]\nname = \"ws\"\nscheduler = \"lc\"\n[[services.endpoints]]\naddress = \"{ws}\"\n\
         [[services]]\nname = \"plain\"\nupgrades = []\n[[services.endpoints]]\naddress = \"{plain}\"\n\
         [[routes]]\nhost = \"ws.test\"\nservice = \"ws\"\n\
         [[routes]]\nhost = \"plain.test\"\nservice = \"plain\"\n\
         [[routes]]\nhost = \"denied.test\"\nservice = \"ws\"\nallow_sources = [\"10.0.0.0/8\"]\n\
         [[routes]]\nhost = \"counted.test\"\nservice = \"ws\"\n",
        certificates(&[(&cert, true)])
    )
}

pub async fn start(accept: Accept) -> Setup {
    start_with(accept, false).await
}

/// [`start`], with HTTP/3 on the `tls` listener too when `http3` is set.
pub async fn start_with(accept: Accept, http3: bool) -> Setup {
    let pki = Pki::new();
    let (ws, plain) = (backend(accept).await, backend(Accept::Right).await);
    let h2c = h2c_backend().await;
    let issued = pki.issue("h2-backend", &["h2.backend.internal"]);
    let h2tls = h2_tls_backend(&issued).await;
    let mut text = config_text(&pki, ws.addr, plain.addr, "127.0.0.1:0", "127.0.0.1:0");
    text.push_str(&format!(
        "[[services]]\nname = \"h2ws\"\nupstream_protocol = \"h2c\"\n\
         [[services.endpoints]]\naddress = \"{}\"\n\
         [[routes]]\nhost = \"h2c.test\"\nservice = \"h2ws\"\n\
         [[services]]\nname = \"h2tls\"\nupstream_protocol = \"h2\"\n\
         upstream_ca = \"{}\"\nupstream_sni = \"h2.backend.internal\"\n\
         [[services.endpoints]]\naddress = \"{}\"\n\
         [[routes]]\nhost = \"h2tls.test\"\nservice = \"h2tls\"\n",
        h2c.addr,
        issued.cert.display(),
        h2tls.addr
    ));
    if http3 {
        text = text.replacen("tls = true\n", "tls = true\nhttp3 = true\n", 1);
    }
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
        h2c,
        h2tls,
    }
}

/// An HTTP/2 client over TLS (ALPN h2) to `addr`.
pub async fn h2_tls(
    addr: SocketAddr,
    pki: &Pki,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let tls = Tls::to(addr, pki, "ws.test", &[b"h2"]).await;
    assert_eq!(tls.alpn().as_deref(), Some(&b"h2"[..]));
    h2_client(tls.stream).await
}

/// Checks the handshake the endpoint got for `path` over `proto`, and returns its key.
pub fn assert_handshake(head: &str, path: &str, proto: &str) -> String {
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
pub async fn close(ws: &mut (impl AsyncRead + AsyncWrite + Unpin)) {
    ws.write_all(&crate::support::client_frame_close())
        .await
        .unwrap();
    let mut rest = Vec::new();
    within("close", ws.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(rest, crate::support::server_frame(0x8, b""));
    within("end of stream", ws.shutdown()).await.unwrap();
}

/// The `ws` endpoint's active count and the `tls` listener's connection gauge.
pub async fn counts(admin: SocketAddr) -> (u64, f64) {
    let active = active(admin, "ws").await;
    let (_, text) = admin_get(admin, "/metrics").await;
    let gauge = metric(
        &text,
        "switchyard_http_connections_active{listener=\"tls\"}",
    )
    .unwrap_or(-1.0);
    (active, gauge)
}

/// The active count of `service`'s (first) endpoint.
pub async fn active(admin: SocketAddr, service: &str) -> u64 {
    let (_, table) = admin_get(admin, "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let service = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap();
    service["endpoints"][0]["active"].as_u64().unwrap()
}

/// `service`'s endpoint's active count once it is `want`, or as it is after a few seconds.
pub async fn active_settled(admin: SocketAddr, service: &str, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = active(admin, service).await;
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The counts once they reach `want`, or as they are after a few seconds.
pub async fn settled(admin: SocketAddr, want: (u64, f64)) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = counts(admin).await;
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `switchyard run` as a child process, killed on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

//! WebSockets over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220) in a real browser: headless
//! Chromium (Debian's `chromium`) loads a page from Switchyard's TLS listener (ALPN h2; or
//! HTTP/3, with QUIC forced to the origin), and the page's script opens a `wss://` WebSocket
//! to the same origin, sends a message and writes the echo into the DOM that `--dump-dom`
//! prints. The page comes from a small HTTP/1.1 backend, the WebSocket goes to the echo
//! backend of `tests/websocket_h2.rs`, both behind Switchyard.
//!
//! That the WebSocket went over the page's connection is read from Switchyard's side, in its
//! access log: the WebSocket's line has method `CONNECT` and status `200` (an extended CONNECT
//! and its answer; an HTTP/1.1 upgrade is logged as `GET` and `101`, as with
//! `--disable-http2`), the page's version, and the same client address, port included, as the
//! page's line, so it was a stream of the page's connection, not a second one. Chromium (148
//! here; on by default since 91) opens a WebSocket with RFC 8441 on an HTTP/2 connection it
//! already has whose SETTINGS allow extended CONNECT: no feature flag is needed. Over HTTP/3
//! it needs `--enable-features=EnableWebsocketsOverHttp3` (off by default in 148: without it the
//! page comes over HTTP/3 and the WebSocket over a new HTTP/1.1 connection). The certificate is trusted with
//! `--ignore-certificate-errors-spki-list` (the SHA-256 of the leaf's public key), which
//! Chromium treats as a valid certificate, so the session is reused as usual.
//!
//! A WebSocket needs real time, so no `--virtual-time-budget`: the page holds its `load`
//! event (after which `--dump-dom` prints) with an image the backend answers only once the
//! script has reported, by `POST /release`, that the echo (or an error) is in the DOM, or
//! after 30 s. Chromium is killed after 60 s. Skipped, saying why, without Chromium.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod skip;
#[path = "websocket_h2/support.rs"]
mod support;

use bytes::Bytes;
use common::chromium::spki_hash;
use common::log::captured;
use common::tls::{Pki, certificates, within};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use skip::skip;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Accept, backend, field};
use switchyard::config::Config;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the page sends, and must show echoed.
const MESSAGE: &str = "hello from chromium";

/// The page: opens `wss://<origin>/ws`, sends [`MESSAGE`], shows the echo in `#echo` and the
/// outcome in `#state`, then releases the image that holds the `load` event.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>ws over h2</title></head><body>
<p id="state">waiting</p><p id="echo"></p>
<img src="/hold" alt="">
<script>
const state = document.getElementById("state");
let done = false;
function finish(outcome) {
  if (done) return;
  done = true;
  state.textContent = outcome;
  fetch("/release", { method: "POST" });
}
const ws = new WebSocket("wss://" + location.host + "/ws");
ws.onopen = () => ws.send("MESSAGE");
ws.onmessage = (event) => {
  document.getElementById("echo").textContent = event.data;
  finish("echoed");
  ws.close();
};
ws.onerror = () => finish("error");
ws.onclose = (event) => finish("closed " + event.code);
</script>
</body></html>
"#;

/// How long the backend holds the image at most.
const HOLD: Duration = Duration::from_secs(30);

/// Starts the page's backend (HTTP/1.1): `/` is the page, `/hold` answers once `/release`
/// came (or after [`HOLD`]), anything else is a 404.
async fn page_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (release, released) = watch::channel(false);
    let release = Arc::new(release);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (release, released) = (Arc::clone(&release), released.clone());
            let service = service_fn(move |req| {
                let (release, released) = (Arc::clone(&release), released.clone());
                async move { Ok::<_, Infallible>(answer(&req, &release, released).await) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(
    req: &Request<Incoming>,
    release: &watch::Sender<bool>,
    mut released: watch::Receiver<bool>,
) -> Response<Full<Bytes>> {
    let (status, kind, body) = match req.uri().path() {
        "/" => (
            StatusCode::OK,
            "text/html; charset=utf-8",
            PAGE.replace("\"MESSAGE\"", &format!("{MESSAGE:?}")),
        ),
        "/release" => {
            release.send_replace(true);
            (StatusCode::NO_CONTENT, "text/plain", String::new())
        }
        "/hold" => {
            let _ = tokio::time::timeout(HOLD, released.wait_for(|r| *r)).await;
            (StatusCode::NO_CONTENT, "image/gif", String::new())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "not here\n".to_owned()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert("content-type", http::HeaderValue::from_static(kind));
    resp
}

/// Switchyard in process: a TLS listener for `ws.test` (HTTP/3 too with `http3`), `/ws` to
/// the WebSocket echo backend, the rest to the page's backend; the access log on (the
/// default). Also gives the hash of its certificate's key for Chromium.
async fn start(
    page: SocketAddr,
    ws: SocketAddr,
    http3: bool,
) -> (switchyard::app::App, SocketAddr, String) {
    let pki = Pki::new();
    let cert = pki.issue("ws", &["ws.test"]);
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\nwatch_interval = \"0s\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhttp3 = {http3}\n\
         {}\
         [[services]]\nname = \"ws\"\n[[services.endpoints]]\naddress = \"{ws}\"\n\
         [[services]]\nname = \"page\"\n[[services.endpoints]]\naddress = \"{page}\"\n\
         [[routes]]\nhost = \"ws.test\"\npath = \"/ws\"\nservice = \"ws\"\n\
         [[routes]]\nhost = \"ws.test\"\nservice = \"page\"\n",
        certificates(&[(&cert, true)])
    );
    let config = Config::parse(&text, "test").unwrap();
    let app = within("start", switchyard::app::start(config))
        .await
        .unwrap();
    let tls = app.http_addr("tls").await.unwrap();
    (app, tls, spki_hash(&cert.leaf))
}

/// `args` with the flags this test runs Chromium with (the DOM dumped).
fn chromium_args(args: &[String]) -> Vec<String> {
    let mut all = vec![
        "--disable-extensions".to_owned(),
        "--disable-background-networking".to_owned(),
        "--dump-dom".to_owned(),
    ];
    all.extend_from_slice(args);
    all
}

/// The fields of the access-log line for `path` on `host` (with the port: each test's own
/// listener, as the log is the process's), once it is written (a WebSocket's when it ends),
/// or `None` after 10 s.
async fn access_line(host: &str, path: &str) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| {
                l["target"] == "access"
                    && l["fields"]["path"] == path
                    && l["fields"]["host"] == host
            });
        if let Some(line) = line {
            return Some(line["fields"].clone());
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_echoes_a_websocket_over_the_pages_h2_connection() {
    echoes_over_the_pages_connection(
        "chromium_echoes_a_websocket_over_the_pages_h2_connection",
        Version::H2,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_echoes_a_websocket_over_the_pages_h3_connection() {
    echoes_over_the_pages_connection(
        "chromium_echoes_a_websocket_over_the_pages_h3_connection",
        Version::H3,
    )
    .await;
}

/// The version the page and its WebSocket go over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    H2,
    H3,
}

/// Chromium loads the page over `version`, and echoes its WebSocket on the same connection.
async fn echoes_over_the_pages_connection(test: &str, version: Version) {
    if !common::chromium::installed() {
        return skip(test, "chromium is not installed (apt-get install chromium)");
    }
    captured();
    let ws = backend(Accept::Right).await;
    let h3 = version == Version::H3;
    let (_app, tls, spki) = start(page_backend().await, ws.addr, h3).await;
    let profile = tempfile::tempdir().unwrap();
    let mut args = vec![
        "--host-resolver-rules=MAP ws.test 127.0.0.1".to_owned(),
        format!("--ignore-certificate-errors-spki-list={spki}"),
    ];
    if h3 {
        args.push(format!("--origin-to-force-quic-on=ws.test:{}", tls.port()));
        args.push("--enable-features=EnableWebsocketsOverHttp3".to_owned());
    }
    let url = format!("https://ws.test:{}/", tls.port());
    let started = Instant::now();
    let (dom, stderr) = common::chromium::page(profile.path(), &chromium_args(&args), &url).await;
    assert!(
        dom.contains(r#"<p id="state">echoed</p>"#),
        "the page got no echo after {:?}:\n{dom}\n{stderr}",
        started.elapsed()
    );
    assert!(
        dom.contains(&format!(r#"<p id="echo">{MESSAGE}</p>"#)),
        "{dom}"
    );
    // The endpoint got the HTTP/1.1 upgrade Switchyard made of it.
    let heads = ws.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(heads[0].starts_with("GET /ws HTTP/1.1\r\n"), "{heads:?}");
    assert_eq!(field(&heads[0], "x-forwarded-proto"), Some("https"));

    // Switchyard's side: the page and the WebSocket on one connection of the version asked
    // for, the WebSocket answered with an extended CONNECT's 200.
    let host = format!("ws.test:{}", tls.port());
    let page = access_line(&host, "/")
        .await
        .expect("the page's access-log line");
    let socket = access_line(&host, "/ws")
        .await
        .expect("the WebSocket's access-log line");
    assert_eq!(page["status"], 200, "{page}");
    let want = if h3 { "HTTP/3" } else { "HTTP/2" };
    assert_eq!(page["version"], want, "{page}");
    assert_eq!(
        (&socket["method"], &socket["status"], &socket["version"]),
        (&"CONNECT".into(), &200.into(), &want.into()),
        "an HTTP/1.1 upgrade logs GET and 101: {socket}"
    );
    assert_eq!(socket["service"], "ws", "{socket}");
    let client = page["client"].as_str().unwrap_or_default();
    assert!(client.starts_with("127.0.0.1:"), "{page}");
    assert_eq!(
        socket["client"], client,
        "the WebSocket came on another connection than the page: {socket} {page}"
    );
}

//! HTTP/2 deadlines: the client preface, header blocks, idle connections and keep-alive PINGs,
//! over raw sockets with hand-built frames (h2c by prior knowledge, and h2 over TLS by ALPN).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::h2::*;
use common::https::Certs;
use common::tls::{H2, Tls};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout};

/// The listeners' `header_read_timeout`.
const HEADER: Duration = Duration::from_millis(300);
/// The listeners' `h2_idle_timeout`.
const IDLE: Duration = Duration::from_millis(500);
/// How long the slow backend takes to answer.
const SLOW: Duration = Duration::from_millis(1500);
/// Deadlines are not met early: nothing closes before this share of a deadline.
fn early(deadline: Duration) -> Duration {
    deadline * 2 / 3
}

/// An HTTP/1.1 backend that answers every request after `delay`.
async fn backend(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |_req| async move {
                    tokio::time::sleep(delay).await;
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from("ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

/// Services `fast` and `slow` (at `/slow`) behind any host.
async fn services() -> String {
    let (fast, slow) = (backend(Duration::ZERO).await, backend(SLOW).await);
    format!(
        "[[services]]\nname = \"fast\"\n[[services.endpoints]]\naddress = \"{fast}\"\n\
         [[services]]\nname = \"slow\"\n[[services.endpoints]]\naddress = \"{slow}\"\n\
         [[routes]]\npath = \"/slow\"\nservice = \"slow\"\n\
         [[routes]]\npath = \"/\"\nservice = \"fast\"\n"
    )
}

/// The test deadlines ([`HEADER`], and [`IDLE`] unless `extra` sets its own), then `extra`.
fn deadlines(extra: &str) -> String {
    let idle = if extra.contains("h2_idle_timeout") {
        ""
    } else {
        "h2_idle_timeout = \"500ms\"\n"
    };
    format!("header_read_timeout = \"300ms\"\n{idle}{extra}")
}

/// An app with one plain listener `web`, with the test deadlines and `extra` keys.
async fn plain(extra: &str) -> (App, SocketAddr) {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"5s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n{}{}",
        deadlines(extra),
        services().await
    );
    let app = app::start(Config::parse(&text, "test").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("web").await.unwrap();
    (app, addr)
}

/// An app with one TLS listener `tls`, with the test deadlines.
async fn tls() -> (App, SocketAddr, Certs) {
    let certs = Certs::new();
    let body = format!(
        "{}{}{}",
        deadlines(""),
        certs.toml(),
        common::https::services_and_routes().await
    );
    let (app, addr) = common::https::start(&common::https::config_text(&body)).await;
    (app, addr, certs)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    timeout(WAIT, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap()
}

/// Asserts a connection closed at its deadline: not early, and (by [`Client::closed`])
/// within [`WAIT`].
fn assert_on_time(took: Duration, deadline: Duration) {
    assert!(
        took >= early(deadline),
        "closed after {took:?}, before the {deadline:?} deadline"
    );
}

#[tokio::test]
async fn a_plain_client_that_sends_nothing_is_closed_at_the_header_deadline() {
    let (_app, addr) = plain("").await;
    let (took, _) = until_closed(&mut connect(addr).await).await;
    assert_on_time(took, HEADER);
}

#[tokio::test]
async fn a_tls_h2_client_that_sends_nothing_is_closed_at_the_header_deadline() {
    let (_app, addr, certs) = tls().await;
    let tls = Tls::to(addr, &certs.pki, "a.test", &[H2]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let (took, _) = until_closed(&mut { tls.stream }).await;
    assert_on_time(took, HEADER);
}

#[tokio::test]
async fn a_client_that_sends_the_preface_but_no_settings_is_closed() {
    let (_app, addr) = plain("").await;
    let mut socket = connect(addr).await;
    socket.write_all(PREFACE).await.unwrap();
    // Nothing more: not even the ACK of the server's SETTINGS, which would be a first frame.
    let (took, goaway) = until_closed(&mut socket).await;
    assert_on_time(took, HEADER);
    assert!(
        took < IDLE,
        "closed by the idle timeout, not the preface deadline"
    );
    assert!(goaway.is_none_or(|code| code == NO_ERROR), "{goaway:?}");
}

#[tokio::test]
async fn a_header_block_trickled_in_continuations_is_closed_at_the_header_deadline() {
    let (_app, addr) = plain("").await;
    let mut client = Client::open(connect(addr).await).await;
    assert_eq!(client.get(1, "http", "x", "/").await, 0x88);
    let block = get("http", "x", "/");
    client
        .send(&frame(HEADERS, END_STREAM, 3, &block[..2]))
        .await
        .unwrap();
    let (mut read, mut write) = tokio::io::split(client.io);
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        // h2 itself ends a block at its 5th CONTINUATION; the deadline must come first.
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let f = frame(CONTINUATION, 0, 3, &block[2 + i % 2..3 + i % 2]);
            if write.write_all(&f).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let start = Instant::now();
    let (took, goaway) = until_closed(&mut read).await;
    assert_on_time(took, HEADER);
    assert!(goaway.is_none_or(|code| code == NO_ERROR), "{goaway:?}");
    trickle.abort();
    let sent = trickle.await.unwrap_or_default();
    assert!(
        start.elapsed() >= Duration::from_millis(200) && sent < 5,
        "{sent} continuations"
    );
}

#[tokio::test]
async fn a_headers_frame_trickled_byte_by_byte_is_closed_at_the_header_deadline() {
    let (_app, addr) = plain("").await;
    let mut client = Client::open(connect(addr).await).await;
    // A HEADERS frame announcing 100 bytes of header block, sent one byte every 50 ms.
    let mut announced = frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0; 100]);
    announced.truncate(9);
    client.send(&announced).await.unwrap();
    let (mut read, mut write) = tokio::io::split(client.io);
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if write.write_all(&[0x82]).await.is_err() {
                return;
            }
        }
    });
    let (took, _) = until_closed(&mut read).await;
    trickle.abort();
    assert_on_time(took, HEADER);
}

#[tokio::test]
async fn an_idle_connection_gets_a_goaway_and_is_closed_after_the_idle_timeout() {
    let (_app, addr) = plain("").await;
    let mut client = Client::open(connect(addr).await).await;
    assert_eq!(client.get(1, "http", "x", "/").await, 0x88);
    let took = client.closed().await;
    assert_eq!(client.goaway, Some(NO_ERROR));
    assert_on_time(took, IDLE);
}

#[tokio::test]
async fn a_long_request_keeps_its_connection_past_the_idle_timeout() {
    let (_app, addr) = plain("").await;
    let mut client = Client::open(connect(addr).await).await;
    let start = Instant::now();
    assert_eq!(client.get(1, "http", "x", "/slow").await, 0x88);
    assert!(start.elapsed() >= SLOW - Duration::from_millis(100));
    assert_eq!(client.goaway, None, "a GOAWAY came with the request open");
    // Idle from then on.
    assert_on_time(client.closed().await, IDLE);
    assert_eq!(client.goaway, Some(NO_ERROR));
}

#[tokio::test]
async fn a_client_that_never_answers_pings_is_closed_after_interval_and_timeout() {
    let keepalive = "h2_idle_timeout = \"10s\"\nh2_keepalive_interval = \"200ms\"\n\
                     h2_keepalive_timeout = \"300ms\"\n";
    let (_app, addr) = plain(keepalive).await;
    let mut client = Client::open(connect(addr).await).await;
    client.pong = false;
    let took = client.closed().await;
    assert!(client.pings >= 1, "no PING");
    assert_eq!(client.goaway, Some(NO_ERROR));
    assert_on_time(took, Duration::from_millis(500));
}

#[tokio::test]
async fn a_client_that_answers_pings_keeps_its_idle_connection() {
    let keepalive = "h2_idle_timeout = \"10s\"\nh2_keepalive_interval = \"200ms\"\n\
                     h2_keepalive_timeout = \"300ms\"\n";
    let (_app, addr) = plain(keepalive).await;
    let mut client = Client::open(connect(addr).await).await;
    let kept = timeout(Duration::from_millis(1500), async {
        while client.frame().await.is_some() {}
    })
    .await;
    assert!(kept.is_err(), "closed with every PING answered");
    assert!(client.pings >= 3, "{} PINGs in 1.5 s", client.pings);
    assert_eq!(client.goaway, None);
}

#[tokio::test]
async fn an_idle_tls_h2_connection_gets_a_goaway_and_is_closed_after_the_idle_timeout() {
    let (_app, addr, certs) = tls().await;
    let tls = Tls::to(addr, &certs.pki, "a.test", &[H2]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let mut client = Client::open(tls.stream).await;
    assert_eq!(client.get(1, "https", "a.test", "/").await, 0x88);
    let took = client.closed().await;
    assert_eq!(client.goaway, Some(NO_ERROR));
    assert_on_time(took, IDLE);
}

#[tokio::test]
async fn a_listener_stop_still_drains_h2_connections_and_closes_silent_ones() {
    let (app, addr) = plain("h2_idle_timeout = \"10s\"\n").await;
    let mut busy = Client::open(connect(addr).await).await;
    let mut silent = Client::open(connect(addr).await).await;
    silent.pong = false;
    assert_eq!(silent.get(1, "http", "x", "/").await, 0x88);
    let block = get("http", "x", "/slow");
    let request = frame(HEADERS, END_HEADERS | END_STREAM, 1, &block);
    busy.send(&request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    let shutdown = tokio::spawn(app.shutdown(WAIT));
    // The request in flight is answered, then the connection closes.
    let mut answered = false;
    timeout(WAIT, async {
        while let Some(f) = busy.frame().await {
            answered |= f.stream == 1 && f.flags & END_STREAM != 0;
        }
    })
    .await
    .expect("the busy connection was not closed");
    assert!(answered, "the request in flight was not answered");
    assert_eq!(busy.goaway, Some(NO_ERROR));
    // One that never answers the GOAWAY's PING is closed a header deadline later, not at
    // the drain deadline.
    silent.closed().await;
    assert_eq!(silent.goaway, Some(NO_ERROR));
    timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert!(
        start.elapsed() < SLOW + Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

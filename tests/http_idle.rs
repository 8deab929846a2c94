//! Idle plain HTTP/1.1 connections leave their task and wait in the listener's idle set
//! (src/router/http/listener/idle.rs) about half a second after their last request, or after they
//! came if they sent nothing. Parked, they must stay what they were: they serve their next
//! request, keep their header-read deadline and their PROXY-protocol client address, hold
//! their `max_connections` slot, count in `switchyard_http_connections_active`, and close
//! at once on shutdown. Each test (each with a listener of its own name: the metrics are the
//! process's) first waits until `switchyard_http_connections_idle` shows
//! the connections parked, over raw sockets, asserting the bytes the client gets.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::admin_get;
use common::http::{backend, config, service};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::app::{self, App};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A listener `name` with `extra` settings, in front of one backend named `a`.
async fn start(name: &str, extra: &str) -> (App, SocketAddr) {
    let backend = backend("a").await;
    let text = format!(
        "[[listeners]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\n{extra}\n{}[[routes]]\nservice = \"b\"\n",
        service("b", &[backend], "")
    );
    let app = app::start(config(&text)).await.unwrap();
    let addr = app.http_addr(name).await.unwrap();
    (app, addr)
}

/// The listener's gauge `metric`.
async fn gauge(app: &App, metric: &str, listener: &str) -> Option<f64> {
    let (_, text) = admin_get(app.admin_addr(), "/metrics").await;
    common::metric(&text, &format!("{metric}{{listener=\"{listener}\"}}"))
}

/// Waits until `want` connections of `listener` are parked.
async fn parked(app: &App, listener: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let now = gauge(app, "switchyard_http_connections_idle", listener).await;
        if now == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "parked: {now:?}, want {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a GET and reads its response (with a `content-length`), as text.
async fn get(s: &mut TcpStream) -> String {
    s.write_all(b"GET /x HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .unwrap();
    read_response(s, Duration::from_secs(5)).await.unwrap()
}

/// One response, or `None` if none came within `wait`.
async fn read_response(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&got).into_owned();
            let Some((head, body)) = text.split_once("\r\n\r\n") else {
                continue;
            };
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .unwrap()
                .parse()
                .unwrap();
            if body.len() >= length {
                return text;
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()
}

/// Reads until the proxy closes; returns what came and when it closed.
async fn until_closed(s: &mut TcpStream) -> (Vec<u8>, Instant) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    (rest, Instant::now())
}

/// Asserts that the proxy closes `s`, with nothing written, at its 4 s header deadline
/// counted from `opened`.
async fn closed_at_the_deadline(s: &mut TcpStream, opened: Instant) {
    let (rest, closed) = until_closed(s).await;
    assert_eq!(
        rest, b"",
        "a connection gets no answer at its header deadline"
    );
    let after = closed - opened;
    assert!(
        after >= Duration::from_millis(3800) && after < Duration::from_millis(5500),
        "closed {after:?} after it opened (header_read_timeout = 4s)"
    );
}

#[tokio::test]
async fn parked_connections_serve_their_next_request() {
    let (app, addr) = start("serve", "header_read_timeout = \"30s\"").await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut used = TcpStream::connect(addr).await.unwrap();
    let first = get(&mut used).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.ends_with("\r\n\r\na GET /x 0"), "{first}");
    parked(&app, "serve", 2.0).await;
    let active = gauge(&app, "switchyard_http_connections_active", "serve").await;
    assert_eq!(active, Some(2.0), "parked connections are open connections");
    for s in [&mut silent, &mut used] {
        let answer = get(s).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\na GET /x 0"), "{answer}");
    }
    // Served, they park again, and serve again.
    parked(&app, "serve", 2.0).await;
    for s in [&mut silent, &mut used] {
        assert!(get(s).await.ends_with("a GET /x 0"));
    }
    // A client that closes while parked leaves the set and its slot.
    drop(silent);
    drop(used);
    parked(&app, "serve", 0.0).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while gauge(&app, "switchyard_http_connections_active", "serve").await != Some(0.0) {
        assert!(Instant::now() < deadline, "slots not given back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_silent_parked_connection_closes_at_the_header_deadline() {
    let (app, addr) = start("silent", "header_read_timeout = \"4s\"").await;
    let opened = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    parked(&app, "silent", 1.0).await;
    closed_at_the_deadline(&mut s, opened).await;
    parked(&app, "silent", 0.0).await;
}

#[tokio::test]
async fn a_parked_connection_keeps_its_header_deadline() {
    let (app, addr) = start("half", "header_read_timeout = \"4s\"").await;
    let opened = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    parked(&app, "half", 1.0).await;
    tokio::time::sleep_until((opened + Duration::from_millis(2000)).into()).await;
    // Half a head wakes it; the rest never comes. Its deadline is still 4 s after it opened,
    // not 4 s after it woke.
    s.write_all(b"GET /x HTTP/1.1\r\nhost: app.test\r\n")
        .await
        .unwrap();
    closed_at_the_deadline(&mut s, opened).await;
}

#[tokio::test]
async fn parked_connections_hold_their_max_connections_slot() {
    let (app, addr) = start("few", "header_read_timeout = \"30s\"\nmax_connections = 2").await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut s).await.ends_with("a GET /x 0"));
        held.push(s);
    }
    parked(&app, "few", 2.0).await;
    // A third waits in the kernel's backlog while both are parked.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /x HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut third, Duration::from_millis(800)).await,
        None
    );
    // One parked client leaves: the third is served.
    drop(held.pop());
    let answer = read_response(&mut third, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(answer.ends_with("a GET /x 0"), "{answer}");
}

#[tokio::test]
async fn a_parked_connection_keeps_its_proxy_protocol_client() {
    let (app, addr) = start(
        "lb",
        "header_read_timeout = \"30s\"\naccept_proxy_protocol = true",
    )
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n")
        .await
        .unwrap();
    let first = get(&mut s).await;
    assert!(first.contains("x-seen-xff: 203.0.113.7\r\n"), "{first}");
    parked(&app, "lb", 1.0).await;
    let second = get(&mut s).await;
    assert!(second.contains("x-seen-xff: 203.0.113.7\r\n"), "{second}");
}

#[tokio::test]
async fn a_shutdown_closes_parked_connections_at_once() {
    let (app, addr) = start("drain", "header_read_timeout = \"30s\"").await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    assert!(get(&mut a).await.ends_with("a GET /x 0"));
    let mut b = TcpStream::connect(addr).await.unwrap();
    parked(&app, "drain", 2.0).await;
    let started = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        app.shutdown(Duration::from_secs(20)),
    )
    .await
    .expect("the shutdown waited for parked connections");
    for s in [&mut a, &mut b] {
        let (rest, _) = until_closed(s).await;
        assert_eq!(rest, b"");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

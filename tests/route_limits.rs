//! Route limits per client address over real sockets: the token bucket's burst boundary
//! (exact, on the fast path and on requests handed to hyper), the allow-list, the cap on a
//! client's requests in flight (held until the response body is over, HTTP/1.1 and HTTP/2),
//! and a client that cannot pick the address it is limited by.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{backend, service, start};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(5);

/// Connects from `from` (an address on the loopback network).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Sends `request` (which asks to close) from `from` and reads the whole answer.
async fn exchange(from: &str, to: SocketAddr, request: &str) -> String {
    let mut stream = connect_from(from, to).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn get(host: &str, extra: &str) -> String {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

fn status(answer: &str) -> &str {
    answer.get(9..12).unwrap_or("")
}

/// The 429 for the rate, with its `Retry-After` (checked to be 1..=60) written as `N`.
fn rate_refusal(answer: &str) -> String {
    let value = answer
        .split("retry-after: ")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .unwrap_or_else(|| panic!("no retry-after in {answer:?}"));
    let seconds: u64 = value.parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    answer.replacen(
        &format!("retry-after: {value}\r\n"),
        "retry-after: N\r\n",
        1,
    )
}

const REFUSED: &str = "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\n\
    retry-after: N\r\nconnection: close\r\ncontent-length: 18\r\n\r\ntoo many requests\n";

fn limited(host: &str, name: &str, settings: &str) -> String {
    format!("[[routes]]\nhost = \"{host}\"\nservice = \"a\"\nname = \"{name}\"\n{settings}\n")
}

#[tokio::test]
async fn a_burst_of_five_passes_and_the_sixth_request_gets_429_with_retry_after() {
    let a = backend("a").await;
    let routes = limited("l.test", "burst", "[routes.rate_limit]\nrpm = 1\nburst = 5");
    let (app, addr) = start(&format!("{}{routes}", service("a", &[a], ""))).await;
    for i in 0..5 {
        let answer = exchange("127.0.0.1", addr, &get("l.test", "")).await;
        assert_eq!(status(&answer), "200", "request {i}: {answer}");
    }
    let answer = exchange("127.0.0.1", addr, &get("l.test", "")).await;
    assert_eq!(rate_refusal(&answer), REFUSED);
    // Another client has its own bucket.
    let other = exchange("127.0.0.2", addr, &get("l.test", "")).await;
    assert_eq!(status(&other), "200", "{other}");
    let name = "switchyard_http_limited_total{route=\"burst\",reason=\"rate\"}";
    let counted = common::eventually_metric(app.admin_addr(), name, 1.0).await;
    assert_eq!(counted, Some(1.0));
}

#[tokio::test]
async fn requests_handed_to_hyper_take_one_token_each() {
    let a = backend("a").await;
    let routes = limited(
        "h.test",
        "handed",
        "[routes.rate_limit]\nrpm = 1\nburst = 3",
    );
    let (_app, addr) = start(&format!("{}{routes}", service("a", &[a], ""))).await;
    // HTTP/1.0 is routed by the fast path, then served by hyper, which routes it again.
    let request = "GET / HTTP/1.0\r\nHost: h.test\r\n\r\n";
    for i in 0..3 {
        let answer = exchange("127.0.0.1", addr, request).await;
        assert!(
            answer.starts_with("HTTP/1.0 200 ") || answer.starts_with("HTTP/1.1 200 "),
            "request {i}: {answer}"
        );
    }
    let answer = exchange("127.0.0.1", addr, request).await;
    assert_eq!(status(&answer), "429", "{answer}");
}

#[tokio::test]
async fn pipelined_requests_meet_the_same_boundary() {
    let a = backend("a").await;
    let routes = limited(
        "p.test",
        "pipelined",
        "[routes.rate_limit]\nrpm = 1\nburst = 5",
    );
    let (_app, addr) = start(&format!("{}{routes}", service("a", &[a], ""))).await;
    let one = "GET / HTTP/1.1\r\nHost: p.test\r\n\r\n";
    let all = format!("{}{}", one.repeat(6), get("p.test", ""));
    let answer = exchange("127.0.0.1", addr, &all).await;
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(
        statuses,
        ["200", "200", "200", "200", "200", "429", "429"],
        "{answer}"
    );
}

#[tokio::test]
async fn an_allow_listed_client_is_never_limited() {
    let a = backend("a").await;
    let settings = "max_connections_per_client = 1\n[routes.rate_limit]\nrpm = 1\nburst = 1\n\
        allow = [\"127.0.0.0/30\"]";
    let routes = limited("w.test", "allowed", settings);
    let (_app, addr) = start(&format!("{}{routes}", service("a", &[a], ""))).await;
    for i in 0..20 {
        let answer = exchange("127.0.0.1", addr, &get("w.test", "")).await;
        assert_eq!(status(&answer), "200", "request {i}: {answer}");
    }
    let outside = exchange("127.0.0.5", addr, &get("w.test", "")).await;
    assert_eq!(status(&outside), "200");
    let outside = exchange("127.0.0.5", addr, &get("w.test", "")).await;
    assert_eq!(status(&outside), "429", "{outside}");
}

#[tokio::test]
async fn a_spoofed_forwarded_address_does_not_change_the_limited_client() {
    let a = backend("a").await;
    let routes = limited(
        "x.test",
        "spoofed",
        "[routes.rate_limit]\nrpm = 1\nburst = 2",
    );
    let (_app, addr) = start(&format!("{}{routes}", service("a", &[a], ""))).await;
    let claims = [
        "X-Forwarded-For: 10.0.0.1\r\n",
        "X-Forwarded-For: 10.0.0.2\r\nX-Real-IP: 10.0.0.2\r\n",
        "Forwarded: for=10.0.0.3\r\nX-Forwarded-For: 10.0.0.3, 127.0.0.9\r\n",
        "X-Forwarded-For: 127.0.0.9\r\n",
    ];
    let statuses: Vec<String> = {
        let mut out = Vec::new();
        for claim in claims {
            let answer = exchange("127.0.0.1", addr, &get("x.test", claim)).await;
            out.push(status(&answer).to_owned());
        }
        out
    };
    assert_eq!(statuses, ["200", "200", "429", "429"]);
}

/// A backend that answers every request with its head and half its body at once, and the
/// rest once `release` turns true; `arrived` counts the requests it got.
async fn slow_backend(release: watch::Receiver<bool>) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrived = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&arrived);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (count, mut release) = (Arc::clone(&count), release.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                loop {
                    while !head.ends_with(b"\r\n\r\n") {
                        if sock.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    head.clear();
                    count.fetch_add(1, Ordering::SeqCst);
                    let first = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nab";
                    if sock.write_all(first).await.is_err()
                        || release.wait_for(|go| *go).await.is_err()
                        || sock.write_all(b"cd").await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, arrived)
}

async fn arrivals(arrived: &AtomicUsize, want: usize) {
    for _ in 0..250 {
        if arrived.load(Ordering::SeqCst) >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{want} requests never reached the backend");
}

/// Sends a keep-alive GET and reads until `want` (the head and half the body) has come.
async fn start_slow(from: &str, to: SocketAddr) -> TcpStream {
    let mut stream = connect_from(from, to).await;
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: c.test\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(b"\r\n\r\nab") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    stream
}

#[tokio::test]
async fn a_client_over_its_requests_in_flight_gets_429_while_others_pass() {
    let (release, waiting) = watch::channel(false);
    let (slow, arrived) = slow_backend(waiting).await;
    let routes = "[[routes]]\nhost = \"c.test\"\nservice = \"a\"\nname = \"inflight\"\n\
        max_connections_per_client = 2\n";
    let (app, addr) = start(&format!("{}{routes}", service("a", &[slow], ""))).await;
    let mut held = vec![
        start_slow("127.0.0.1", addr).await,
        start_slow("127.0.0.1", addr).await,
    ];
    arrivals(&arrived, 2).await;
    // Both responses are mid-body: the third request of this client is refused.
    let third = exchange("127.0.0.1", addr, &get("c.test", "")).await;
    assert_eq!(
        third,
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain; charset=utf-8\r\n\
         connection: close\r\ncontent-length: 18\r\n\r\ntoo many requests\n"
    );
    // Another client is not.
    held.push(start_slow("127.0.0.2", addr).await);
    assert_eq!(arrived.load(Ordering::SeqCst), 3);
    release.send(true).unwrap();
    for stream in &mut held {
        let mut rest = [0u8; 2];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"cd");
    }
    // Once the bodies are over, the client may send again.
    let mut passed = false;
    for _ in 0..50 {
        let again = exchange("127.0.0.1", addr, &get("c.test", "")).await;
        if status(&again) == "200" {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(passed, "the released requests were never uncounted");
    let name = "switchyard_http_limited_total{route=\"inflight\",reason=\"connections\"}";
    let counted = common::eventually_metric(app.admin_addr(), name, 1.0).await;
    assert!(counted.is_some_and(|n| n >= 1.0), "{counted:?}");
}

#[tokio::test]
async fn http2_streams_count_until_their_bodies_are_over() {
    let (release, waiting) = watch::channel(false);
    let (slow, arrived) = slow_backend(waiting).await;
    let routes = "[[routes]]\nhost = \"c.test\"\nservice = \"a\"\nmax_connections_per_client = 2\n";
    let (_app, addr) = start(&format!("{}{routes}", service("a", &[slow], ""))).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = || {
        hyper::Request::get("http://c.test/slow")
            .body(Empty::<Bytes>::new())
            .unwrap()
    };
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let resp = tokio::time::timeout(WAIT, send.send_request(request()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(resp.status(), 200);
        bodies.push(resp.into_body());
    }
    arrivals(&arrived, 2).await;
    let third = send.send_request(request()).await.unwrap();
    assert_eq!(third.status(), 429);
    assert!(third.headers().get("retry-after").is_none());
    release.send(true).unwrap();
    for body in bodies {
        let bytes = tokio::time::timeout(WAIT, body.collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        assert_eq!(&bytes[..], b"abcd");
    }
    let mut passed = false;
    for _ in 0..50 {
        let again = send.send_request(request()).await.unwrap();
        if again.status() == 200 {
            passed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(passed, "the finished streams were never uncounted");
}

#[tokio::test]
async fn behind_an_l4_balancer_the_proxy_protocol_address_is_the_limited_client() {
    let a = backend("a").await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"edge\"\nlisten = \"127.0.0.1:0\"\naccept_proxy_protocol = true\n\
         {}{}",
        service("a", &[a], ""),
        limited(
            "pp.test",
            "behind-lb",
            "[routes.rate_limit]\nrpm = 1\nburst = 1\nallow = [\"192.0.2.0/24\"]"
        )
    );
    let config = switchyard::config::Config::parse(&text, "test").unwrap();
    let app = switchyard::app::start(config).await.unwrap();
    let addr = app.http_addr("edge").await.unwrap();
    let from = |source: &str| {
        format!(
            "PROXY TCP4 {source} 127.0.0.1 4444 {}\r\n{}",
            addr.port(),
            get("pp.test", "")
        )
    };
    // Every connection comes from 127.0.0.1; the PROXY header names the client.
    let first = exchange("127.0.0.1", addr, &from("198.51.100.7")).await;
    assert_eq!(status(&first), "200", "{first}");
    let again = exchange("127.0.0.1", addr, &from("198.51.100.7")).await;
    assert_eq!(status(&again), "429", "{again}");
    let other = exchange("127.0.0.1", addr, &from("198.51.100.8")).await;
    assert_eq!(status(&other), "200", "{other}");
    for _ in 0..5 {
        let listed = exchange("127.0.0.1", addr, &from("192.0.2.9")).await;
        assert_eq!(status(&listed), "200", "{listed}");
    }
}

#[tokio::test]
async fn a_reload_keeps_the_buckets_of_unchanged_limits_and_resets_changed_ones() {
    let a = backend("a").await;
    let body = |burst: u32| {
        let settings = format!("[routes.rate_limit]\nrpm = 1\nburst = {burst}");
        format!(
            "{}{}",
            service("a", &[a], ""),
            limited("r.test", "reloaded", &settings)
        )
    };
    let (app, addr) = start(&body(1)).await;
    let answer = exchange("127.0.0.1", addr, &get("r.test", "")).await;
    assert_eq!(status(&answer), "200");
    app.apply(&common::http::config(&body(1))).await.unwrap();
    let kept = exchange("127.0.0.1", addr, &get("r.test", "")).await;
    assert_eq!(status(&kept), "429", "an unchanged route keeps its buckets");
    app.apply(&common::http::config(&body(2))).await.unwrap();
    let fresh = exchange("127.0.0.1", addr, &get("r.test", "")).await;
    assert_eq!(status(&fresh), "200", "new limits start afresh");
}

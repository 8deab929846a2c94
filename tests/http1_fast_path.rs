//! The HTTP/1.1 fast path over real sockets, byte by byte: chunked bodies both ways, trailers,
//! pipelining, framing that must be refused (request smuggling), early answers, responses
//! delimited by the close, keep-alive and its deadline, a pooled connection the endpoint had
//! closed, and the requests it hands to hyper (HTTP/1.0, HTTP/2 prior knowledge).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{backend, service, start};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A hyper backend: `/echo` answers the request body (and how it was framed, in
/// `x-seen-framing`), `/chunked` streams two chunks and a trailer, anything else "ok".
async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let framing = match (
                        req.headers().get("content-length"),
                        req.headers().get("transfer-encoding"),
                    ) {
                        (Some(n), None) => format!("length {}", n.to_str().unwrap()),
                        (None, Some(te)) => te.to_str().unwrap().to_owned(),
                        (None, None) => "none".to_owned(),
                        _ => "both".to_owned(),
                    };
                    let body = match req.uri().path() {
                        "/echo" => {
                            let data = req.into_body().collect().await.unwrap().to_bytes();
                            let frames = vec![Ok::<_, Infallible>(Frame::data(data))];
                            StreamBody::new(futures::stream::iter(frames)).boxed()
                        }
                        "/chunked" => {
                            let mut trailers = http::HeaderMap::new();
                            trailers.insert("x-trailer", "yes".parse().unwrap());
                            let frames = vec![
                                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"hello "))),
                                Ok(Frame::data(Bytes::from_static(b"world"))),
                                Ok(Frame::trailers(trailers)),
                            ];
                            StreamBody::new(futures::stream::iter(frames)).boxed()
                        }
                        _ => Full::new(Bytes::from_static(b"ok"))
                            .map_err(|never| match never {})
                            .boxed(),
                    };
                    // hyper sends trailers only when the head announces them.
                    let resp = Response::builder()
                        .header("x-seen-framing", framing)
                        .header("trailer", "x-trailer")
                        .body(body)
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

/// A raw backend that reads one request head and answers it with `reply`, then closes.
async fn raw_backend(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(reply).await;
                let _ = s.shutdown().await;
                // Keep reading whatever else comes, so the close is a clean FIN.
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

async fn app_for(backend: SocketAddr, extra: &str) -> (switchyard::app::App, SocketAddr) {
    start(&format!(
        "{}[[routes]]\nservice = \"b\"\n{extra}",
        service("b", &[backend], "")
    ))
    .await
}

/// A response read off a raw connection: head text and decoded body.
struct Raw {
    head: String,
    body: Vec<u8>,
    trailers: String,
}

/// Reads one response from `s`, keeping what follows it in `buf`; a HEAD response has no body.
async fn read_response<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
    head_request: bool,
) -> Raw {
    let deadline = Duration::from_secs(5);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(s, buf, deadline).await;
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    let lower = head.to_lowercase();
    let mut body = Vec::new();
    let mut trailers = String::new();
    if head_request || lower.starts_with("http/1.1 204") || lower.starts_with("http/1.1 304") {
    } else if lower.contains("transfer-encoding: chunked") {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                fill(s, buf, deadline).await;
            };
            let size =
                usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                let end = loop {
                    if buf.starts_with(b"\r\n") {
                        break 2;
                    }
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    fill(s, buf, deadline).await;
                };
                trailers = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end);
                break;
            }
            while buf.len() < size + 2 {
                fill(s, buf, deadline).await;
            }
            body.extend_from_slice(&buf[..size]);
            assert_eq!(&buf[size..size + 2], b"\r\n");
            buf.drain(..size + 2);
        }
    } else if let Some(len) = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
    {
        let len: usize = len.trim().parse().unwrap();
        while buf.len() < len {
            fill(s, buf, deadline).await;
        }
        body = buf.drain(..len).collect();
    } else {
        tokio::time::timeout(deadline, s.read_to_end(buf))
            .await
            .unwrap()
            .unwrap();
        body = std::mem::take(buf);
    }
    Raw {
        head,
        body,
        trailers,
    }
}

async fn fill<S: AsyncRead + Unpin>(s: &mut S, buf: &mut Vec<u8>, deadline: Duration) {
    let mut chunk = [0u8; 65536];
    let n = tokio::time::timeout(deadline, s.read(&mut chunk))
        .await
        .unwrap()
        .unwrap();
    assert!(
        n > 0,
        "closed early; have {:?}",
        String::from_utf8_lossy(buf)
    );
    buf.extend_from_slice(&chunk[..n]);
}

/// A new connection to `addr` that has sent `request`, and an empty read buffer.
async fn send(addr: SocketAddr, request: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    (s, Vec::new())
}

/// Whether the proxy closes `s` (EOF) within 5 s, after what was already read.
async fn closes(s: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

#[tokio::test]
async fn chunked_bodies_pass_both_ways_with_trailers() {
    let (_app, addr) = app_for(echo_backend().await, "").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut buf, false).await;
    assert!(r.head.starts_with("HTTP/1.1 200"), "{}", r.head);
    assert_eq!(r.body, b"hello world");
    assert!(r.head.contains("x-seen-framing: chunked"), "{}", r.head);
    s.write_all(b"GET /chunked HTTP/1.1\r\nhost: x\r\nte: trailers\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut buf, false).await;
    assert_eq!(r.body, b"hello world");
    assert!(
        r.trailers.to_lowercase().contains("x-trailer: yes"),
        "{:?}",
        r.trailers
    );
}

#[tokio::test]
async fn large_bodies_pass_both_ways() {
    let (_app, addr) = app_for(echo_backend().await, "").await;
    let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let (mut r, mut w) = s.split();
    let send = async {
        w.write_all(head.as_bytes()).await.unwrap();
        w.write_all(&body).await.unwrap();
    };
    let mut buf = Vec::new();
    let (_, response) = tokio::join!(send, read_response(&mut r, &mut buf, false));
    assert!(
        response
            .head
            .contains(&format!("x-seen-framing: length {}", body.len())),
        "{}",
        response.head
    );
    assert!(
        response.body == body,
        "the echo differs: {} bytes back",
        response.body.len()
    );
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_app, addr) = app_for(backend("a").await, "").await;
    let (mut s, mut buf) = send(
        addr,
        b"GET /one HTTP/1.1\r\nhost: x\r\n\r\nGET /two HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET /one 0"
    );
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET /two 0"
    );
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let (_app, addr) = app_for(echo_backend().await, "").await;
    for (request, status) in [
        (&b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"[..], "400"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!", "400"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked, gzip\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: +5\r\n\r\nhello", "400"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nhost: y\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "400"),
        (b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", "400"),
    ] {
        let (mut s, mut buf) = send(addr, request).await;
        let r = read_response(&mut s, &mut buf, false).await;
        assert!(r.head.starts_with(&format!("HTTP/1.1 {status}")), "{:?}: {}", String::from_utf8_lossy(request), r.head);
        assert!(closes(&mut s).await, "{:?}", String::from_utf8_lossy(request));
    }
    // A neighbour is unaffected.
    let (mut s, _) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(
        read_response(&mut s, &mut Vec::new(), false).await.body,
        b"ok"
    );
}

#[tokio::test]
async fn a_chunked_body_over_the_route_limit_is_413() {
    let (_app, addr) = app_for(echo_backend().await, "max_body_bytes = 10\n").await;
    let (mut s, _) = send(addr, b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n6\r\n012345\r\n6\r\n6789AB\r\n0\r\n\r\n").await;
    let r = read_response(&mut s, &mut Vec::new(), false).await;
    assert!(r.head.starts_with("HTTP/1.1 413"), "{}", r.head);
}

#[tokio::test]
async fn an_early_answer_is_passed_on_and_the_connection_closed() {
    let early =
        raw_backend(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\n\r\nbig!").await;
    let (_app, addr) = app_for(early, "").await;
    let (mut s, _) = send(
        addr,
        b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\n\r\nsome of it",
    )
    .await;
    let r = read_response(&mut s, &mut Vec::new(), false).await;
    assert!(r.head.starts_with("HTTP/1.1 413"), "{}", r.head);
    assert!(
        r.head.to_lowercase().contains("connection: close"),
        "{}",
        r.head
    );
    assert_eq!(r.body, b"big!");
    assert!(closes(&mut s).await);
}

#[tokio::test]
async fn a_response_delimited_by_the_close_closes_the_client_connection() {
    let until_close =
        raw_backend(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the close").await;
    let (_app, addr) = app_for(until_close, "").await;
    let (mut s, _) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let r = read_response(&mut s, &mut Vec::new(), false).await;
    assert!(
        r.head.to_lowercase().contains("connection: close"),
        "{}",
        r.head
    );
    assert_eq!(r.body, b"until the close");
}

#[tokio::test]
async fn a_response_in_a_transfer_coding_other_than_chunked_is_502() {
    // Passed on, gzip-coded bytes would reach the client as if they were the content.
    let gzip = raw_backend(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    )
    .await;
    let (_app, addr) = app_for(gzip, "").await;
    let (mut s, _) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    for _ in 0..2 {
        let r = read_response(&mut s, &mut buf, false).await;
        assert!(r.head.starts_with("HTTP/1.1 502 "), "{}", r.head);
        // The client's connection is not the endpoint's fault: it stays open.
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn head_requests_keep_the_connection_and_close_requests_end_it() {
    let (_app, addr) = app_for(backend("a").await, "").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut buf, true).await;
    assert!(
        r.head.to_lowercase().contains("content-length: 10"),
        "{}",
        r.head
    );
    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let r = read_response(&mut s, &mut buf, false).await;
    assert_eq!(r.body, b"a GET / 0", "the HEAD response had no body");
    assert!(
        r.head.to_lowercase().contains("connection: close"),
        "{}",
        r.head
    );
    assert!(closes(&mut s).await);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_at_the_header_deadline() {
    let (_app, addr) = app_for(backend("a").await, "").await;
    let (mut s, mut buf) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET / 0"
    );
    let idle = tokio::time::Instant::now();
    assert!(closes(&mut s).await);
    let waited = idle.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

/// An app with a second listener, `slow`, whose header deadline (10 s) is well past the
/// moment an idle connection gives back its buffers (0.25 to 0.5 s).
async fn app_with_slow_listener(backend: SocketAddr) -> (switchyard::app::App, SocketAddr) {
    let (app, _) = app_for(
        backend,
        "[[listeners]]\nname = \"slow\"\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"10s\"\n",
    )
    .await;
    let addr = app.http_addr("slow").await.unwrap();
    (app, addr)
}

#[tokio::test]
async fn a_keep_alive_connection_serves_on_after_going_idle() {
    let (_app, addr) = app_with_slow_listener(backend("a").await).await;
    let (mut s, mut buf) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET / 0"
    );
    // Idle long enough to have freed its buffers and its request state; then two
    // pipelined requests, the second one's head split.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.write_all(b"GET /x HTTP/1.1\r\nhost: x\r\n\r\nGET /y HTTP/1.1\r\nho")
        .await
        .unwrap();
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET /x 0"
    );
    s.write_all(b"st: x\r\n\r\n").await.unwrap();
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET /y 0"
    );
}

#[tokio::test]
async fn a_request_head_split_across_an_idle_look_is_kept() {
    let (_app, addr) = app_with_slow_listener(backend("a").await).await;
    let (mut s, mut buf) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\nGET /late HT").await;
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET / 0"
    );
    // The connection looks for idleness while half a head waits in its buffer.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.write_all(b"TP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    assert_eq!(
        read_response(&mut s, &mut buf, false).await.body,
        b"a GET /late 0"
    );
}

/// A backend that answers the first request of each connection and closes at the second
/// without answering, as an endpoint does whose idle timeout struck just as it came.
async fn close_on_second_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                let mut answered = false;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        if answered {
                            return;
                        }
                        answered = true;
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                            .await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_get_on_a_pooled_connection_the_endpoint_closed_is_sent_again() {
    let (_app, addr) = app_for(close_on_second_backend().await, "").await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    for _ in 0..3 {
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let r = read_response(&mut s, &mut buf, false).await;
        assert!(r.head.starts_with("HTTP/1.1 200"), "{}", r.head);
    }
}

#[tokio::test]
async fn http_1_0_requests_are_served_by_hyper() {
    let (_app, addr) = app_for(backend("a").await, "").await;
    let (mut s, _) = send(addr, b"GET /old HTTP/1.0\r\nhost: x\r\n\r\n").await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.") && text.contains(" 200 "),
        "{text}"
    );
    assert!(text.ends_with("a GET /old 0"), "{text}");
}

#[tokio::test]
async fn http_2_with_prior_knowledge_on_a_plain_listener_is_served_by_hyper() {
    let (_app, addr) = app_for(backend("a").await, "").await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://x/h2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"a GET /h2 0");
}

#[tokio::test]
async fn a_client_whose_body_breaks_does_not_count_against_the_endpoint() {
    let (app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"b\"\n",
        service("b", &[echo_backend().await], "max_failures = 1")
    ))
    .await;
    for _ in 0..3 {
        let (mut s, _) = send(addr, b"POST /echo HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nnot a chunk\r\n").await;
        let r = read_response(&mut s, &mut Vec::new(), false).await;
        assert!(r.head.starts_with("HTTP/1.1 400"), "{}", r.head);
    }
    let (_, table) = common::admin_get(app.admin_addr(), "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let endpoint = &table["services"][0]["endpoints"][0];
    assert_eq!(endpoint["failures"], 0, "{table}");
    assert_eq!(endpoint["benched"], false, "{table}");
}

#[tokio::test]
async fn informational_answers_reach_the_client_before_the_final_one() {
    let hints = raw_backend(
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n\
          HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nbody",
    )
    .await;
    let (_app, addr) = app_for(hints, "").await;
    let (mut s, mut buf) = send(addr, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let early = read_response(&mut s, &mut buf, true).await;
    assert!(early.head.starts_with("HTTP/1.1 103"), "{}", early.head);
    assert!(
        early.head.contains("link: </style.css>; rel=preload"),
        "{}",
        early.head
    );
    let last = read_response(&mut s, &mut buf, false).await;
    assert!(last.head.starts_with("HTTP/1.1 200"), "{}", last.head);
    assert_eq!(last.body, b"body");
}

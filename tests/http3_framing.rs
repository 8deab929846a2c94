//! How an HTTP/3 request is framed to an HTTP/1.1 endpoint, seen as raw bytes by the endpoint:
//! a GET the client ended with its HEADERS goes with no framing field and no body (not an
//! empty chunked one), a declared `content-length` goes as `content-length`, and a request
//! whose `content-length` is not a number is refused without reaching the endpoint.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "http3_support/client.rs"]
mod client;
mod common;
#[path = "http3_support/setup.rs"]
mod setup;

use bytes::Bytes;
use common::https::{Certs, config_text, start};
use common::tls::within;
use http::Request;
use setup::h3;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every request's bytes as the endpoint read them.
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// An HTTP/1.1 endpoint that keeps each request's bytes (its head, then as many body bytes as
/// `content-length` says, or up to the last chunk) and answers `200 ok`.
async fn recording_backend() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = Arc::clone(&record);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(len) = complete(&buf) else {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    record.lock().unwrap().push(buf.drain(..len).collect());
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if sock.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// The length of the first whole request in `buf`, if it holds one.
fn complete(buf: &[u8]) -> Option<usize> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let last = buf[end..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(end + last + 5);
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    (buf.len() >= end + length).then_some(end + length)
}

async fn start_with(backend: SocketAddr) -> (switchyard::app::App, SocketAddr, Certs) {
    let certs = Certs::new();
    let text = config_text(&format!(
        "http3 = true\n{}[[services]]\nname = \"a\"\n[[services.endpoints]]\naddress = \"{backend}\"\n\
         [[routes]]\nhost = \"a.test\"\nservice = \"a\"\n",
        certs.toml()
    ));
    let (app, addr) = start(&text).await;
    (app, addr, certs)
}

/// The head of a recorded request (lowercase) and its body.
fn split(request: &[u8]) -> (String, Vec<u8>) {
    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    (head, request[end..].to_vec())
}

#[tokio::test]
async fn a_get_goes_without_a_body_and_a_declared_length_as_content_length() {
    let (backend, seen) = recording_backend().await;
    let (_app, addr, certs) = start_with(backend).await;
    let mut c = h3(addr, &certs, "a.test").await;

    let r = within("get", c.get("a.test", "/plain")).await.unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));
    let post = Request::post("https://a.test/upload")
        .header("content-length", "5")
        .body(())
        .unwrap();
    let r = within("post", c.send(post, Bytes::from_static(b"hello"), None))
        .await
        .unwrap();
    assert_eq!((r.status.as_u16(), &r.body[..]), (200, &b"ok"[..]));

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (head, body) = split(&seen[0]);
    assert!(head.starts_with("get /plain http/1.1\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert!(!head.contains("content-length"), "{head}");
    assert!(body.is_empty());
    let (head, body) = split(&seen[1]);
    assert!(head.starts_with("post /upload http/1.1\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-length: 5\r\n"), "{head}");
    assert!(!head.contains("transfer-encoding"), "{head}");
    assert_eq!(body, b"hello");
}

#[tokio::test]
async fn a_content_length_that_is_not_a_number_is_refused() {
    let (backend, seen) = recording_backend().await;
    let (_app, addr, certs) = start_with(backend).await;
    let mut c = h3(addr, &certs, "a.test").await;
    for value in ["abc", "5, 6", "-1"] {
        let post = Request::post("https://a.test/upload")
            .header("content-length", value)
            .body(())
            .unwrap();
        let r = within("post", c.send(post, Bytes::from_static(b"hello"), None)).await;
        assert!(r.is_err(), "content-length {value}: {r:?}");
    }
    assert!(seen.lock().unwrap().is_empty(), "reached the endpoint");
    // The connection is still good.
    let r = within("get", c.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status.as_u16(), 200);
}

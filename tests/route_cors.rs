//! CORS at the proxy over real sockets: preflights answered here (exact bytes, the endpoint
//! never asked), the fields of actual responses (the endpoint's own CORS fields replaced),
//! disallowed origins, the credentials rule, subdomain patterns, HTTP/2, and a 429 that a
//! script can read.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{service, start};
use http_body_util::{Empty, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const WAIT: Duration = Duration::from_secs(5);

/// A backend with CORS fields of its own, counting the requests it gets.
async fn backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    count.fetch_add(1, Ordering::SeqCst);
                    let resp = Response::builder()
                        .header("access-control-allow-origin", "*")
                        .header("access-control-allow-methods", "DELETE")
                        .header("vary", "Accept-Encoding")
                        .header("x-total", "3")
                        .body(Full::new(Bytes::from(format!("backend {}", req.method()))))
                        .unwrap();
                    async move { Ok::<_, Infallible>(resp) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    (addr, seen)
}

const CORS: &str = "[routes.cors]\nallow_origins = [\"https://app.test\", \"https://*.tenant.test\"]\n\
    allow_methods = [\"GET\", \"PUT\"]\nallow_headers = [\"Content-Type\", \"X-Token\"]\n\
    expose_headers = [\"X-Total\"]\nallow_credentials = true\nmax_age = 600\n";

async fn start_cors(extra: &str) -> (switchyard::app::App, SocketAddr, Arc<AtomicUsize>) {
    let (b, seen) = backend().await;
    let routes = format!("[[routes]]\nhost = \"c.test\"\nservice = \"b\"\n{extra}");
    let (app, addr) = start(&format!("{}{routes}", service("b", &[b], ""))).await;
    (app, addr, seen)
}

/// Writes `requests` on one connection and reads until the server closes it.
async fn raw(addr: SocketAddr, requests: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn request(method: &str, origin: &str, extra: &str) -> String {
    format!("{method} /api HTTP/1.1\r\nHost: c.test\r\nOrigin: {origin}\r\n{extra}")
}

/// The fields of the head of the first response in `answer`, lower-case names.
fn fields(answer: &str) -> Vec<(String, String)> {
    let head = answer.split("\r\n\r\n").next().unwrap();
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_owned()))
        .collect()
}

fn values<'a>(fields: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    fields
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn a_preflight_is_answered_at_the_proxy_and_the_connection_serves_on() {
    let (_app, addr, seen) = start_cors(CORS).await;
    let preflight = request(
        "OPTIONS",
        "https://app.test",
        "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-token\r\n\r\n",
    );
    let then = request("GET", "https://app.test", "Connection: close\r\n\r\n");
    let answer = raw(addr, &format!("{preflight}{then}")).await;
    let (first, second) = answer.split_at(answer.find("HTTP/1.1 200").unwrap());
    assert_eq!(
        first,
        "HTTP/1.1 204 No Content\r\naccess-control-allow-origin: https://app.test\r\n\
         access-control-allow-credentials: true\r\naccess-control-allow-methods: GET, PUT\r\n\
         access-control-allow-headers: Content-Type, X-Token\r\naccess-control-max-age: 600\r\n\
         vary: Origin\r\n\r\n"
    );
    assert!(second.ends_with("backend GET"), "{second}");
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "only the GET reached the backend"
    );
}

#[tokio::test]
async fn an_allowed_origin_gets_the_routes_fields_in_place_of_the_endpoints() {
    let (_app, addr, _) = start_cors(CORS).await;
    let answer = raw(
        addr,
        &request("GET", "https://app.test", "Connection: close\r\n\r\n"),
    )
    .await;
    let f = fields(&answer);
    assert_eq!(
        values(&f, "access-control-allow-origin"),
        ["https://app.test"]
    );
    assert_eq!(values(&f, "access-control-allow-credentials"), ["true"]);
    assert_eq!(values(&f, "access-control-expose-headers"), ["X-Total"]);
    assert_eq!(
        values(&f, "access-control-allow-methods"),
        Vec::<&str>::new()
    );
    assert_eq!(values(&f, "vary"), ["Accept-Encoding", "Origin"]);
    assert_eq!(values(&f, "x-total"), ["3"]);
    // A subdomain of a `*.` pattern, echoed.
    let answer = raw(
        addr,
        &request("GET", "https://a.tenant.test", "Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(
        values(&fields(&answer), "access-control-allow-origin"),
        ["https://a.tenant.test"]
    );
}

#[tokio::test]
async fn a_disallowed_origin_gets_no_cors_field_and_its_preflight_goes_to_the_endpoint() {
    let (_app, addr, seen) = start_cors(CORS).await;
    for origin in [
        "https://evil.test",
        "https://tenant.test",
        "http://app.test",
        "null",
    ] {
        let answer = raw(addr, &request("GET", origin, "Connection: close\r\n\r\n")).await;
        let f = fields(&answer);
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(
            !f.iter().any(|(n, _)| n.starts_with("access-control-")),
            "{origin}: {answer}"
        );
        assert_eq!(values(&f, "vary"), ["Accept-Encoding", "Origin"]);
    }
    let before = seen.load(Ordering::SeqCst);
    let preflight = request(
        "OPTIONS",
        "https://evil.test",
        "Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    let answer = raw(addr, &preflight).await;
    assert!(answer.ends_with("backend OPTIONS"), "{answer}");
    assert!(
        !fields(&answer)
            .iter()
            .any(|(n, _)| n.starts_with("access-control-")),
        "{answer}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn star_is_sent_without_credentials_and_the_origin_echoed_with_them() {
    let (_app, addr, _) = start_cors("[routes.cors]\nallow_origins = [\"*\"]\n").await;
    let answer = raw(
        addr,
        &request("GET", "https://any.test", "Connection: close\r\n\r\n"),
    )
    .await;
    let f = fields(&answer);
    assert_eq!(values(&f, "access-control-allow-origin"), ["*"]);
    assert_eq!(
        values(&f, "access-control-allow-credentials"),
        Vec::<&str>::new()
    );

    let (_app, addr, _) =
        start_cors("[routes.cors]\nallow_origins = [\"*\"]\nallow_credentials = true\n").await;
    let answer = raw(
        addr,
        &request("GET", "https://any.test", "Connection: close\r\n\r\n"),
    )
    .await;
    let f = fields(&answer);
    assert_eq!(
        values(&f, "access-control-allow-origin"),
        ["https://any.test"]
    );
    assert_eq!(values(&f, "access-control-allow-credentials"), ["true"]);
}

#[tokio::test]
async fn preflights_over_http2_are_answered_the_same_way() {
    let (_app, addr, seen) = start_cors(CORS).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let preflight = Request::options("http://c.test/api")
        .header("origin", "https://b.tenant.test")
        .header("access-control-request-method", "PUT")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(WAIT, send.send_request(preflight))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 204);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "https://b.tenant.test");
    assert_eq!(h["access-control-allow-methods"], "GET, PUT");
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(h["vary"], "Origin");
    assert!(h.get("content-type").is_none() && h.get("content-length").is_none());
    let get = Request::get("http://c.test/api")
        .header("origin", "https://app.test")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(get).await.unwrap();
    let all: Vec<_> = resp
        .headers()
        .get_all("access-control-allow-origin")
        .iter()
        .collect();
    assert_eq!(all, ["https://app.test"]);
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_rate_limited_answer_carries_the_cors_fields_of_an_allowed_origin() {
    let limits = format!("{CORS}[routes.rate_limit]\nrpm = 1\nburst = 1\n");
    let (_app, addr, _) = start_cors(&limits).await;
    let get = request("GET", "https://app.test", "Connection: close\r\n\r\n");
    assert!(raw(addr, &get).await.starts_with("HTTP/1.1 200 "));
    let answer = raw(addr, &get).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    let f = fields(&answer);
    assert_eq!(
        values(&f, "access-control-allow-origin"),
        ["https://app.test"]
    );
    assert_eq!(values(&f, "vary"), ["Origin"]);
    // A preflight is never limited.
    let preflight = request(
        "OPTIONS",
        "https://app.test",
        "Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
    );
    assert!(raw(addr, &preflight).await.starts_with("HTTP/1.1 204 "));
}

#[tokio::test]
async fn two_origin_fields_count_as_none() {
    let (_app, addr, seen) = start_cors(CORS).await;
    let preflight = "OPTIONS /api HTTP/1.1\r\nHost: c.test\r\nOrigin: https://evil.test\r\n\
        Origin: https://app.test\r\nAccess-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n";
    let answer = raw(addr, preflight).await;
    assert!(answer.ends_with("backend OPTIONS"), "{answer}");
    assert!(
        !fields(&answer)
            .iter()
            .any(|(n, _)| n.starts_with("access-control-")),
        "{answer}"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}

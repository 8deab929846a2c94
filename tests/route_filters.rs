//! Route filters over real sockets: header edits (request and response, on the HTTP/1.1 fast
//! path and through hyper for an HTTP/2 client), redirects with their exact `Location`, URL
//! rewrites (prefix, full, regex, host), and the config refusing edits that could split a
//! message. The backend answers with the exact request head it received.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, service, start};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A raw HTTP/1.1 backend: each request (no body) is answered with its own head, byte for
/// byte, as the body, and response fields for the edits to work on.
async fn head_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head: Vec<u8> = buf.drain(..end + 4).collect();
                    let mut out = format!(
                        "HTTP/1.1 200 OK\r\nserver: echo\r\nx-drop: 1\r\nx-keep: 1\r\n\
                         content-length: {}\r\n\r\n",
                        head.len()
                    )
                    .into_bytes();
                    out.extend_from_slice(&head);
                    if s.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

const EDITS: &str = r#"
[routes.request_headers]
set = { "X-A" = "1" }
add = { "x-b" = "2" }
remove = ["x-c"]
[routes.response_headers]
set = { "server" = "switchyard" }
add = { "x-added" = "yes" }
remove = ["X-Drop"]
"#;

async fn app_with(routes: &str) -> (switchyard::app::App, SocketAddr) {
    start(&format!(
        "{}{routes}",
        service("b", &[head_echo().await], "")
    ))
    .await
}

/// Sends raw bytes and reads one response with a `content-length`: (head, body).
async fn exchange(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |n| n.parse().unwrap());
                if body.len() >= len {
                    return (format!("{head}\r\n\r\n"), body.to_owned());
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap()
}

fn port_of(addr: SocketAddr) -> u16 {
    addr.port()
}

#[tokio::test]
async fn header_edits_on_the_fast_path_are_exact_both_ways() {
    let (_app, addr) = app_with(&format!("[[routes]]\nservice = \"b\"\n{EDITS}")).await;
    let (head, body) = exchange(
        addr,
        b"GET /hdr?q=1 HTTP/1.1\r\nHost: a.test\r\nX-A: client\r\nx-b: client\r\n\
          X-C: gone\r\nx-keep: k\r\nx-request-id: r1\r\n\r\n",
    )
    .await;
    let port = port_of(addr);
    assert_eq!(
        body,
        format!(
            "GET /hdr?q=1 HTTP/1.1\r\nhost: a.test\r\nx-b: client\r\nx-keep: k\r\nx-a: 1\r\n\
             x-b: 2\r\nx-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: a.test\r\nx-forwarded-port: {port}\r\nx-request-id: r1\r\n\r\n"
        )
    );
    assert_eq!(
        head,
        format!(
            "HTTP/1.1 200 OK\r\nx-keep: 1\r\nserver: switchyard\r\nx-added: yes\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        )
    );
}

#[tokio::test]
async fn header_edits_apply_to_an_http_2_client_through_hyper() {
    let (_app, addr) = app_with(&format!("[[routes]]\nservice = \"b\"\n{EDITS}")).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://a.test/h2")
        .header("x-a", "client")
        .header("x-b", "client")
        .header("x-c", "gone")
        .header("x-request-id", "r2")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let port = port_of(addr);
    assert_eq!(
        String::from_utf8_lossy(&body),
        format!(
            "GET /h2 HTTP/1.1\r\nhost: a.test\r\nx-b: client\r\nx-a: 1\r\nx-b: 2\r\n\
             x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: a.test\r\nx-forwarded-port: {port}\r\nx-request-id: r2\r\n\r\n"
        )
    );
    let all = |n: &str| -> Vec<&str> {
        headers
            .get_all(n)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    };
    assert_eq!(all("server"), ["switchyard"]);
    assert_eq!(all("x-added"), ["yes"]);
    assert_eq!(all("x-keep"), ["1"]);
    assert!(all("x-drop").is_empty());
}

const REDIRECTS: &str = r#"
[[routes]]
path = "/s301"
redirect = { scheme = "https", status = 301 }
[[routes]]
path = "/s302"
redirect = { host = "b.test" }
[[routes]]
path = "/s303"
redirect = { path = "/new", status = 303 }
[[routes]]
path = "/s307"
redirect = { prefix = "/kept", status = 307 }
[[routes]]
path = "/s308"
redirect = { scheme = "https", port = 8443, prefix = "/", status = 308 }
"#;

#[tokio::test]
async fn each_redirect_status_answers_with_the_exact_location() {
    let (_app, addr) = app_with(REDIRECTS).await;
    let mut c = Client::connect(addr).await;
    let cases = [
        ("/s301/x?a=1", 301, "https://a.test/s301/x?a=1"),
        ("/s302/x", 302, "http://b.test:8080/s302/x"),
        ("/s303/x?a=1", 303, "http://a.test:8080/new?a=1"),
        ("/s307/x", 307, "http://a.test:8080/kept/x"),
        ("/s308", 308, "https://a.test:8443/"),
        ("/s308/y/../z", 308, "https://a.test:8443/z"),
    ];
    for (path, status, location) in cases {
        let (got, headers, body) = c.get("a.test:8080", path).await;
        assert_eq!(got, status, "{path}");
        assert_eq!(headers["location"], location, "{path}");
        assert_eq!(body, "", "{path}");
    }
    // The fast path writes the same answer itself.
    let (head, _) = exchange(addr, b"GET /s302?x=1 HTTP/1.1\r\nhost: a.test\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 302 Found\r\n")
            && head.contains("\r\nlocation: http://b.test/s302?x=1\r\n"),
        "{head}"
    );
}

const REWRITES: &str = r#"
[[routes]]
path = "/foo"
service = "b"
rewrite = { prefix = "/bar" }
[[routes]]
path = "/strip"
service = "b"
rewrite = { prefix = "/" }
[[routes]]
path = "/full"
service = "b"
rewrite = { path = "/replaced", host = "inner.svc:8080" }
[[routes]]
path = "/api"
service = "b"
rewrite = { regex = "^/api/v(\\d+)/(.*)", replacement = "/$2/version$1" }
"#;

#[tokio::test]
async fn rewrites_change_what_the_endpoint_gets() {
    let (_app, addr) = app_with(REWRITES).await;
    let mut c = Client::connect(addr).await;
    let cases = [
        ("/foo", "GET /bar HTTP/1.1\r\nhost: a.test\r\n"),
        ("/foo/x?q=1", "GET /bar/x?q=1 HTTP/1.1\r\nhost: a.test\r\n"),
        ("/strip", "GET / HTTP/1.1\r\nhost: a.test\r\n"),
        ("/strip/y", "GET /y HTTP/1.1\r\nhost: a.test\r\n"),
        (
            "/full/any",
            "GET /replaced HTTP/1.1\r\nhost: inner.svc:8080\r\n",
        ),
        (
            "/api/v2/users",
            "GET /users/version2 HTTP/1.1\r\nhost: a.test\r\n",
        ),
    ];
    for (path, start) in cases {
        let (status, _, body) = c.get("a.test", path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.starts_with(start), "{path}: {body}");
        // The forwarding fields keep the host the client asked for.
        assert!(body.contains("\r\nx-forwarded-host: a.test\r\n"), "{body}");
    }
}

fn issues(routes: &str) -> String {
    let text = format!(
        "{}{routes}",
        service("b", &["127.0.0.1:1".parse().unwrap()], "")
    );
    match switchyard::config::Config::parse(&text, "t") {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted: {routes}"),
    }
}

#[test]
fn edits_that_could_split_a_message_and_bad_filters_are_refused_with_their_path() {
    let crlf = issues(
        "[[routes]]\nservice = \"b\"\n[routes.request_headers]\nset = { \"x-a\" = \"1\\r\\nx-evil: 1\" }\n",
    );
    assert!(
        crlf.contains("routes[0].request_headers: invalid value for header \"x-a\""),
        "{crlf}"
    );
    let lf = issues(
        "[[routes]]\nservice = \"b\"\nresponse_headers = { add = { \"x-a\" = \"a\\nb\" } }\n",
    );
    assert!(
        lf.contains("routes[0].response_headers: invalid value"),
        "{lf}"
    );
    let framing = issues(
        "[[routes]]\nservice = \"b\"\nresponse_headers = { remove = [\"Content-Length\"] }\n",
    );
    assert!(
        framing.contains("routes[0].response_headers: header \"content-length\" cannot be edited"),
        "{framing}"
    );
    let host =
        issues("[[routes]]\nservice = \"b\"\nrequest_headers = { set = { host = \"x\" } }\n");
    assert!(host.contains("header \"host\" cannot be edited"), "{host}");
    let status = issues("[[routes]]\nredirect = { status = 300 }\n");
    assert!(
        status.contains("routes[0].redirect.status: invalid redirect status 300"),
        "{status}"
    );
    let regex =
        issues("[[routes]]\nservice = \"b\"\nrewrite = { regex = \"(\", replacement = \"/\" }\n");
    assert!(
        regex.contains("routes[0].rewrite.regex: invalid regex"),
        "{regex}"
    );
    let twice = issues(
        "[[routes]]\nservice = \"b\"\nrequest_headers = { set = { \"X-A\" = \"1\", \"x-a\" = \"2\" } }\n",
    );
    assert!(
        twice.contains("routes[0].request_headers.set: header"),
        "{twice}"
    );
    let no_service = issues("[[routes]]\npath = \"/x\"\n");
    assert!(
        no_service.contains("routes[0].service: required (or backends, or a redirect)"),
        "{no_service}"
    );
    let exact = issues(
        "[[routes]]\npath = \"/x\"\npath_type = \"Exact\"\nservice = \"b\"\nrewrite = { prefix = \"/y\" }\n",
    );
    assert!(
        exact.contains("routes[0].rewrite.prefix: prefix replacement needs a Prefix route"),
        "{exact}"
    );
}

/// Collects what the `fmt` subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_access_log_keeps_the_path_the_client_sent() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"2s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"text\"\n[[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n{}\
         [[routes]]\npath = \"/foo\"\nservice = \"b\"\nrewrite = {{ prefix = \"/bar\" }}\n",
        service("b", &[head_echo().await], "")
    );
    let app = switchyard::app::start(switchyard::config::Config::parse(&text, "t").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("web").await.unwrap();
    // Both the fast path and hyper's (HTTP/1.0 is handed over).
    let (_, body) = exchange(addr, b"GET /foo/x HTTP/1.1\r\nhost: a.test\r\n\r\n").await;
    assert!(body.starts_with("GET /bar/x HTTP/1.1\r\n"), "{body}");
    let (_, body) = exchange(addr, b"GET /foo/y HTTP/1.0\r\nhost: a.test\r\n\r\n").await;
    assert!(body.starts_with("GET /bar/y HTTP/1.1\r\n"), "{body}");
    let logged = || String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    for _ in 0..100 {
        if logged().matches("path=/foo/").count() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = logged();
    assert!(
        log.contains("path=/foo/x") && log.contains("path=/foo/y"),
        "{log}"
    );
    assert!(!log.contains("path=/bar"), "{log}");
}

//! Route conditions over real sockets: method, header (exact and regex), query parameter and
//! regular-expression path rules send requests to different backends, on the HTTP/1.1 fast path
//! and on hyper's path (HTTP/1.0 is handed to hyper), with the Gateway API's precedence.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, service, start};
use http_body_util::Full;
use hyper::Request;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROUTES: &str = r#"
[[routes]]
host = "m.test"
service = "stable"

[[routes]]
host = "m.test"
service = "writes"
method = "POST"

[[routes]]
host = "m.test"
service = "canary"
headers = [{ name = "X-Env", value = "canary" }, { name = "x-id", regex = "[0-9]+" }]

[[routes]]
host = "m.test"
service = "v2"
query = [{ name = "v", value = "2" }]

[[routes]]
host = "m.test"
path = "/items/[0-9]+"
path_type = "RegularExpression"
service = "items"
"#;

async fn start_all() -> (switchyard::app::App, SocketAddr) {
    let mut services = String::new();
    for name in ["stable", "writes", "canary", "v2", "items"] {
        services.push_str(&service(name, &[backend(name).await], ""));
    }
    start(&format!("{services}{ROUTES}")).await
}

async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(target)
        .header("host", "m.test");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let (code, _, body) = Client::connect(addr).await.send(req).await;
    (code, body)
}

/// Method, target, headers and the exact body expected.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn method_header_query_and_regex_rules_pick_their_backends() {
    let (_app, addr) = start_all().await;
    const CANARY: &[(&str, &str)] = &[("x-env", "canary"), ("X-ID", "42")];
    let cases: &[Case] = &[
        ("GET", "/", &[], "stable GET / 0"),
        ("POST", "/", &[], "writes POST / 0"),
        ("GET", "/a/b", CANARY, "canary GET /a/b 0"),
        // The regex must match the whole value; exact values are case-sensitive.
        (
            "GET",
            "/a/b",
            &[("x-env", "canary"), ("x-id", "4x")],
            "stable GET /a/b 0",
        ),
        (
            "GET",
            "/",
            &[("x-env", "Canary"), ("x-id", "42")],
            "stable GET / 0",
        ),
        ("GET", "/?v=2", &[], "v2 GET /?v=2 0"),
        ("GET", "/?v=3&v=2", &[], "stable GET /?v=3&v=2 0"),
        // A method match beats header matches, which beat query matches.
        ("POST", "/?v=2", CANARY, "writes POST /?v=2 0"),
        ("GET", "/?v=2", CANARY, "canary GET /?v=2 0"),
        // The regex path comes before the prefix `/` and must match the whole path.
        ("GET", "/items/17", &[], "items GET /items/17 0"),
        ("POST", "/items/17", &[], "items POST /items/17 0"),
        ("GET", "/items/17/x", &[], "stable GET /items/17/x 0"),
        ("GET", "/items/1a", &[], "stable GET /items/1a 0"),
    ];
    for &(method, target, headers, want) in cases {
        let got = send(addr, method, target, headers).await;
        assert_eq!(got, (200, want.to_owned()), "{method} {target} {headers:?}");
    }
}

#[tokio::test]
async fn hyper_path_sees_the_same_headers() {
    let (_app, addr) = start_all().await;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = "GET /x HTTP/1.0\r\nHost: m.test\r\nX-Env: canary\r\nx-id: 1\r\nx-id: 7\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut reply = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut reply))
        .await
        .unwrap()
        .unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.0 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\ncanary GET /x 0"), "{reply}");
}

#[tokio::test]
async fn a_rule_whose_conditions_fail_leaves_the_request_to_the_next_match_or_404() {
    let a = backend("app").await;
    let routes = r#"
[[routes]]
host = "n.test"
path = "/app"
service = "app"
method = "GET"
"#;
    let (_app, addr) = start(&format!("{}{routes}", service("app", &[a], ""))).await;
    let req = |method: &str| {
        Request::builder()
            .method(method)
            .uri("/app/x")
            .header("host", "n.test")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let mut client = Client::connect(addr).await;
    let (code, _, body) = client.send(req("GET")).await;
    assert_eq!((code, body.as_str()), (200, "app GET /app/x 0"));
    let (code, _, body) = client.send(req("DELETE")).await;
    assert_eq!(
        (code, body.as_str()),
        (404, "no route for this host and path\n")
    );
}

#[test]
fn check_names_each_bad_condition_with_its_path() {
    use common::proc::{EXIT_CONFIG, check, stderr, write};
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
[[services]]
name = "web"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[routes]]
service = "web"
path = "/a/(unclosed"
path_type = "RegularExpression"

[[routes]]
service = "web"
method = "GE T"
headers = [{ name = "x-ok", value = "1" }, { name = "x-id", regex = "[0-9" }]

[[routes]]
service = "web"
headers = [{ name = "x-a", value = "1", regex = "1" }, { name = "X-A", value = "2" }]
query = [{ name = "q", regex = "\\w{1000}" }]
"#;
    let out = check(&write(&dir, "bad.toml", text));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert_eq!(err.lines().count(), 7, "one line per problem:\n{err}");
    for line in [
        "routes[0].path: invalid regular expression: unclosed group (at byte 3)",
        r#"routes[1].method: invalid method "GE T""#,
        "routes[1].headers[1].regex: invalid regular expression: unclosed character class (at byte 0)",
        "routes[2].headers[0]: set exactly one of `value` and `regex`",
        "routes[2].headers[1].name: repeats headers[0]",
        "routes[2].query[0].regex: invalid regular expression: Compiled regex exceeds size limit",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

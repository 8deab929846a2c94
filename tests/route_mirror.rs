//! Request mirroring over real sockets: the mirror service gets the very head (and body, up
//! to the cap, on the fast path and hyper's) the primary endpoint gets, and a mirror that never answers neither slows nor fails the real requests,
//! its copies bounded in flight (the rest dropped and counted).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod policy;

use common::http::{Client, service, start};
use policy::{Answer, raw_backend};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Waits until `seen` has read `n` requests (copies arrive on their own time).
async fn until_requests(seen: &policy::Seen, n: usize) {
    for _ in 0..100 {
        if seen.requests() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{} requests seen, {n} expected", seen.requests());
}

#[tokio::test]
async fn the_mirror_gets_the_head_the_primary_gets() {
    let (primary, primary_seen) = raw_backend("primary", Answer::Status(200)).await;
    let (mirror, mirror_seen) = raw_backend("mirror", Answer::Status(500)).await;
    let (app, addr) = start(&format!(
        "{}{}[[routes]]\nhost = \"m.test\"\nservice = \"p\"\nname = \"copied\"\n\
         [routes.mirror]\nservice = \"m\"\n",
        service("p", &[primary], ""),
        service("m", &[mirror], "")
    ))
    .await;
    let (code, _, body) = common::http::get(addr, "m.test", "/a/b?q=1").await;
    assert_eq!((code, body.as_str()), (200, "primary 200"));
    until_requests(&mirror_seen, 1).await;
    let sent = primary_seen.heads.lock().unwrap()[0].clone();
    let copy = mirror_seen.heads.lock().unwrap()[0].clone();
    assert!(
        sent.starts_with("GET /a/b?q=1 HTTP/1.1\r\nhost: m.test\r\n"),
        "{sent}"
    );
    assert_eq!(copy, sent);
    let sent = common::eventually_metric(
        app.admin_addr(),
        "switchyard_http_mirrored_total{route=\"copied\",result=\"sent\"}",
        1.0,
    )
    .await;
    assert_eq!(sent, Some(1.0));
}

/// The `i`th request `primary` and `mirror` read: heads and bodies.
fn nth(seen: &policy::Seen, i: usize) -> (String, Vec<u8>) {
    let head = seen.heads.lock().unwrap()[i].clone();
    (head, seen.bodies.lock().unwrap()[i].clone())
}

#[tokio::test]
async fn a_body_within_the_cap_is_copied_on_both_paths_and_a_larger_one_is_not() {
    let (primary, primary_seen) = raw_backend("primary", Answer::Status(200)).await;
    let (mirror, mirror_seen) = raw_backend("mirror", Answer::Status(200)).await;
    let (app, addr) = start(&format!(
        "{}{}[[routes]]\nhost = \"b.test\"\nservice = \"p\"\nname = \"bodies\"\n\
         [routes.mirror]\nservice = \"m\"\nmax_body_bytes = 16\n",
        service("p", &[primary], ""),
        service("m", &[mirror], "")
    ))
    .await;
    // The fast path: the body as written to the primary.
    let mut client = Client::connect(addr).await;
    let post = |body: &'static [u8]| {
        hyper::Request::post("/up")
            .header("host", "b.test")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(body)))
            .unwrap()
    };
    assert_eq!(client.send(post(b"hello")).await.0, 200);
    until_requests(&mirror_seen, 1).await;
    assert_eq!(nth(&mirror_seen, 0), nth(&primary_seen, 0));
    assert_eq!(nth(&mirror_seen, 0).1, b"hello");
    // Over the cap: the primary gets it, the mirror does not.
    assert_eq!(client.send(post(b"0123456789abcdefg")).await.0, 200);
    // hyper's path (HTTP/1.0): the copy is framed as the primary's request is.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(b"POST /old HTTP/1.0\r\nHost: b.test\r\nContent-Length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    until_requests(&mirror_seen, 2).await;
    assert_eq!(primary_seen.requests(), 3);
    assert_eq!(nth(&mirror_seen, 1), nth(&primary_seen, 2));
    assert_eq!(nth(&mirror_seen, 1).1, b"abc");
    let sent = common::eventually_metric(
        app.admin_addr(),
        "switchyard_http_mirrored_total{route=\"bodies\",result=\"sent\"}",
        2.0,
    )
    .await;
    assert_eq!(sent, Some(2.0));
    let (_, metrics) = common::admin_get(app.admin_addr(), "/metrics").await;
    let dropped = "switchyard_http_mirrored_total{route=\"bodies\",result=\"dropped\"}";
    assert_eq!(common::metric(&metrics, dropped), Some(1.0));
    assert_eq!(mirror_seen.requests(), 2);
}

/// Sends `n` GETs for `host` on one connection; each must be answered 200. Returns the time.
async fn requests(client: &mut Client, host: &str, n: usize) -> Duration {
    let started = Instant::now();
    for _ in 0..n {
        let (code, _, body) = client.get(host, "/").await;
        assert_eq!((code, body.as_str()), (200, "primary 200"));
    }
    started.elapsed()
}

#[tokio::test]
async fn a_mirror_that_never_answers_neither_slows_nor_fails_the_primary() {
    let (primary, _) = raw_backend("primary", Answer::Status(200)).await;
    let (hang, hang_seen) = raw_backend("hang", Answer::Never).await;
    let routes = "[[routes]]\nhost = \"plain.test\"\nservice = \"p\"\n\
         [[routes]]\nhost = \"hang.test\"\nservice = \"p\"\nname = \"hang\"\n\
         [routes.mirror]\nservice = \"h\"\nmax_in_flight = 8\n";
    let (app, addr) = start(&format!(
        "{}{}{routes}",
        service("p", &[primary], ""),
        service("h", &[hang], "response_timeout = \"30s\"")
    ))
    .await;
    let mut client = Client::connect(addr).await;
    requests(&mut client, "plain.test", 20).await; // warm the pool
    let without = requests(&mut client, "plain.test", 200).await;
    let with = requests(&mut client, "hang.test", 200).await;
    assert!(
        with <= without * 3 + Duration::from_millis(500),
        "with a hanging mirror {with:?}, without {without:?}"
    );
    until_requests(&hang_seen, 8).await;
    // Eight copies hang; none was answered, the other 192 were dropped.
    assert_eq!(hang_seen.connections.load(Ordering::SeqCst), 8);
    let (_, metrics) = common::admin_get(app.admin_addr(), "/metrics").await;
    let count = |result: &str| {
        common::metric(
            &metrics,
            &format!("switchyard_http_mirrored_total{{route=\"hang\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(count("dropped"), Some(192.0), "{metrics}");
    assert_eq!(count("sent"), Some(0.0));
    eprintln!("200 requests: {without:?} without a mirror, {with:?} with a hanging one");
}

#[tokio::test]
async fn a_mirror_that_refuses_connections_fails_copies_not_requests() {
    let (primary, primary_seen) = raw_backend("primary", Answer::Status(200)).await;
    let dead = common::dead_address().await;
    let (app, addr) = start(&format!(
        "{}{}[[routes]]\nhost = \"d.test\"\nservice = \"p\"\nname = \"dead\"\n\
         [routes.mirror]\nservice = \"d\"\n",
        service("p", &[primary], ""),
        service("d", &[dead], "")
    ))
    .await;
    let mut client = Client::connect(addr).await;
    requests(&mut client, "d.test", 20).await;
    assert_eq!(primary_seen.requests(), 20);
    let failed = common::eventually_metric(
        app.admin_addr(),
        "switchyard_http_mirrored_total{route=\"dead\",result=\"failed\"}",
        20.0,
    )
    .await;
    assert_eq!(failed, Some(20.0));
}

#[tokio::test]
async fn an_http2_request_to_an_h2c_service_is_mirrored_as_http1_with_its_body() {
    let (primary, primary_seen) = policy::h2c_backend("primary", 200).await;
    let (mirror, mirror_seen) = raw_backend("mirror", Answer::Status(200)).await;
    let (_app, addr) = start(&format!(
        "{}{}[[routes]]\nservice = \"p\"\n[routes.mirror]\nservice = \"m\"\n",
        service("p", &[primary], "upstream_protocol = \"h2c\""),
        service("m", &[mirror], "")
    ))
    .await;
    let mut client = policy::h2_client(addr).await;
    let req = hyper::Request::post("http://g.test/pkg.Svc/Call?x=1")
        .header("content-type", "application/grpc")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"grpc!",
        )))
        .unwrap();
    let resp = client.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    until_requests(&mirror_seen, 1).await;
    assert_eq!(primary_seen.requests(), 1);
    let (head, body) = nth(&mirror_seen, 0);
    assert!(
        head.starts_with("POST /pkg.Svc/Call?x=1 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("host: g.test\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/grpc\r\n"),
        "{head}"
    );
    assert!(head.ends_with("content-length: 5\r\n\r\n"), "{head}");
    assert_eq!(body, b"grpc!");
}

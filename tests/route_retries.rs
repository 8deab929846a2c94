//! Per-route retries and timeouts over real sockets: which answers and failures are retried
//! (a 503 for GET, never for POST), the budget that caps retries when everything fails, a
//! slow attempt moving on to the next endpoint, and the whole-request deadline (504).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod policy;

use bytes::Bytes;
use common::http::{Client, service, start};
use http_body_util::Full;
use hyper::Request;
use policy::{Answer, raw_backend};
use std::time::{Duration, Instant};

fn request(method: &str, host: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri("/r")
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::test]
async fn a_503_is_retried_on_the_next_endpoint_for_get_but_not_for_post() {
    let (bad, bad_seen) = raw_backend("bad", Answer::Status(503)).await;
    let (good, good_seen) = raw_backend("good", Answer::Status(200)).await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"r.test\"\nservice = \"s\"\n\
         [routes.retry]\nattempts = 2\non = [\"503\"]\nbudget = 100\n",
        service("s", &[bad, good], "")
    ))
    .await;
    let mut client = Client::connect(addr).await;
    for _ in 0..4 {
        let (code, _, body) = client.send(request("GET", "r.test")).await;
        assert_eq!((code, body.as_str()), (200, "good 200"));
    }
    // Every GET the bad endpoint answered went on to the good one.
    assert_eq!(good_seen.requests(), 4);
    let bad_gets = bad_seen.requests();
    assert!(bad_gets >= 1, "the scheduler reached the bad endpoint");

    let mut answered_503 = 0;
    for _ in 0..4 {
        let (code, _, _) = client.send(request("POST", "r.test")).await;
        answered_503 += usize::from(code == 503);
    }
    // Each POST went to one endpoint only, and the 503s reached the client.
    assert_eq!(bad_seen.requests() + good_seen.requests(), bad_gets + 4 + 4);
    assert_eq!(answered_503, bad_seen.requests() - bad_gets);
    assert!(answered_503 >= 1);
}

#[tokio::test]
async fn the_budget_caps_retries_when_every_endpoint_fails() {
    let mut seen = Vec::new();
    let mut endpoints = Vec::new();
    for name in ["a", "b", "c"] {
        let (addr, s) = raw_backend(name, Answer::Status(503)).await;
        endpoints.push(addr);
        seen.push(s);
    }
    let (app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"b.test\"\nservice = \"s\"\nname = \"budget\"\n\
         [routes.retry]\nattempts = 3\non = [\"503\"]\nbudget = 20\nmin_retries = 3\n",
        service("s", &endpoints, "")
    ))
    .await;
    let requests = 100;
    let mut client = Client::connect(addr).await;
    for _ in 0..requests {
        assert_eq!(client.send(request("GET", "b.test")).await.0, 503);
    }
    let total: usize = seen.iter().map(|s| s.requests()).sum();
    // Without a budget: 300. With it: each request, 20 % of one retry, and 3 in reserve.
    assert!(total <= requests + requests * 20 / 100 + 3, "{total}");
    assert!(total >= requests + requests * 20 / 100, "{total}");
    let (_, metrics) = common::admin_get(app.admin_addr(), "/metrics").await;
    let denied = common::metric(
        &metrics,
        "switchyard_http_retries_total{route=\"budget\",result=\"budget_exhausted\"}",
    );
    assert!(denied.unwrap_or(0.0) > 0.0, "{metrics}");
}

#[tokio::test]
async fn a_slow_attempt_moves_on_to_the_next_endpoint() {
    let (slow, slow_seen) = raw_backend("slow", Answer::After(Duration::from_secs(3))).await;
    let (fast, _) = raw_backend("fast", Answer::Status(200)).await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"t.test\"\nservice = \"s\"\n\
         [routes.timeouts]\nbackend_request = \"200ms\"\n\
         [routes.retry]\nattempts = 2\non = [\"timeout\"]\n",
        service("s", &[slow, fast], "response_timeout = \"10s\"")
    ))
    .await;
    for _ in 0..4 {
        let started = Instant::now();
        let (code, _, body) = common::http::get(addr, "t.test", "/").await;
        assert_eq!((code, body.as_str()), (200, "fast 200"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    assert!(slow_seen.requests() >= 1, "the slow endpoint was tried");
}

#[tokio::test]
async fn the_whole_request_deadline_answers_504_retries_included() {
    let (slow, _) = raw_backend("slow", Answer::After(Duration::from_secs(3))).await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"d.test\"\nservice = \"s\"\n\
         [routes.timeouts]\nrequest = \"300ms\"\n",
        service("s", &[slow], "response_timeout = \"10s\"")
    ))
    .await;
    let started = Instant::now();
    let (code, _, body) = common::http::get(addr, "d.test", "/").await;
    let took = started.elapsed();
    assert_eq!((code, body.as_str()), (504, "upstream timed out\n"));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_put_with_a_body_is_not_retried_and_hypers_path_retries_like_the_fast_path() {
    let (bad, bad_seen) = raw_backend("bad", Answer::Status(503)).await;
    let (good, good_seen) = raw_backend("good", Answer::Status(200)).await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"p.test\"\nservice = \"s\"\n\
         [routes.retry]\nattempts = 2\non = [\"503\"]\nbudget = 100\n",
        service("s", &[bad, good], "")
    ))
    .await;
    // An idempotent method, but its body was streamed to the first endpoint.
    let mut client = Client::connect(addr).await;
    let mut answered_503 = 0;
    for _ in 0..4 {
        let put = Request::put("/r")
            .header("host", "p.test")
            .body(Full::new(Bytes::from_static(b"data")))
            .unwrap();
        answered_503 += usize::from(client.send(put).await.0 == 503);
    }
    assert_eq!(bad_seen.requests() + good_seen.requests(), 4);
    assert_eq!(answered_503, bad_seen.requests());
    assert!(answered_503 >= 1);
    // HTTP/1.0 requests are served by hyper: a bodiless GET is retried there too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let before = bad_seen.requests();
    for _ in 0..4 {
        let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        raw.write_all(b"GET /old HTTP/1.0\r\nHost: p.test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        raw.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        assert!(answer.ends_with("good 200"), "{answer}");
    }
    assert!(bad_seen.requests() > before, "the 503 endpoint was tried");
}

#[tokio::test]
async fn an_h2c_service_gets_the_same_retries_over_http2() {
    let (bad, bad_seen) = policy::h2c_backend("bad", 503).await;
    let (good, good_seen) = policy::h2c_backend("good", 200).await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"s\"\n[routes.retry]\nattempts = 2\non = [\"503\"]\nbudget = 100\n",
        service("s", &[bad, good], "upstream_protocol = \"h2c\"")
    ))
    .await;
    let mut client = policy::h2_client(addr).await;
    for _ in 0..4 {
        let req = Request::get("http://h2.test/r")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = client.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"good 200");
    }
    assert_eq!(good_seen.requests(), 4);
    assert!(bad_seen.requests() >= 1, "the 503 endpoint was tried");
}

//! Section 6: What endpoints answer: bodies where a status allows none (the bytes must not be
//! taken for the next answer on a reused connection), informational answers, ambiguous framing
//! (502), and pipelining.

use crate::backend::on;
use crate::*;

/// `GET /r` answered by the backend with `raw`; the client must get `expect`, and the next
/// request on the connection (and B's) its own answer.
async fn answered(raw: &str, expect: &str) {
    Case::send(get("/r"), expect)
        .script(on("/r", raw.as_bytes()))
        .up(fwd("GET /r", "a.test", ""))
        .then_next()
        .run()
        .await;
}

/// A 204 has no body (RFC 9110 §15.3.5) and no Content-Length (§8.6); the five bytes after
/// it are the endpoint's error, not the start of the next answer.
#[tokio::test]
async fn no_content_with_a_body() {
    answered(
        "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello",
        "HTTP/1.1 204 No Content\r\n\r\n",
    )
    .await;
}

/// A 304 has no body; its Content-Length describes the selected representation.
#[tokio::test]
async fn not_modified_with_a_body() {
    answered(
        "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ncontent-length: 5\r\n\r\nhello",
        "HTTP/1.1 304 Not Modified\r\netag: \"x\"\r\ncontent-length: 5\r\n\r\n",
    )
    .await;
}

/// 1xx answers go on to the client before the final one (RFC 9110 §15.2).
#[tokio::test]
async fn continue_then_ok() {
    answered(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
}

#[tokio::test]
async fn continue_for_a_request_that_expects_it() {
    let raw = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    Case::send(
        cat(
            req(
                "POST /r",
                "a.test",
                "Expect: 100-continue\r\nContent-Length: 5\r\n",
            ),
            "hello",
        ),
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .script(on("/r", raw))
    .up(fwd_full(
        "POST /r",
        "a.test",
        "Expect: 100-continue\r\n",
        "t1",
        "content-length: 5\r\n",
        "hello",
    ))
    .then_next()
    .run()
    .await;
}

/// Both framings: Transfer-Encoding wins and Content-Length is not passed on (RFC 9112
/// §6.3 item 3).
#[tokio::test]
async fn content_length_and_chunked() {
    answered(
        "HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn two_different_content_lengths_is_502() {
    answered(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
        &String::from_utf8(local(502, UPSTREAM_FAILED, false)).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn gzip_then_chunked_is_502() {
    answered(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        &String::from_utf8(local(502, UPSTREAM_FAILED, false)).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn content_length_with_plus_sign_is_502() {
    answered(
        "HTTP/1.1 200 OK\r\ncontent-length: +2\r\n\r\nok",
        &String::from_utf8(local(502, UPSTREAM_FAILED, false)).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn obs_fold_in_an_answer_is_502() {
    answered(
        "HTTP/1.1 200 OK\r\nx-a: 1\r\n continued\r\ncontent-length: 2\r\n\r\nok",
        &String::from_utf8(local(502, UPSTREAM_FAILED, false)).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn three_pipelined_requests_in_one_write() {
    Case::send(
        cat(cat(get("/1"), get("/2")), get("/3")),
        cat(cat(ok("GET /1"), ok("GET /2")), ok("GET /3")),
    )
    .up(fwd("GET /1", "a.test", ""))
    .up(fwd("GET /2", "a.test", ""))
    .up(fwd("GET /3", "a.test", ""))
    .run()
    .await;
}

/// Pipelined requests to different hosts and a local answer among them keep their order.
#[tokio::test]
async fn pipelined_mix_of_forwarded_and_local_answers() {
    Case::send(
        cat(cat(get("/1"), get("/admin")), req("GET /3", "b.test", "")),
        cat(
            cat(ok("GET /1"), local(403, FORBIDDEN, false)),
            ok("GET /3"),
        ),
    )
    .up(fwd("GET /1", "a.test", ""))
    .up(fwd("GET /3", "b.test", ""))
    .run()
    .await;
}

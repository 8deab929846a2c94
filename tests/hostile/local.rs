//! Section 1: The proxy's own answers: exact bytes, and on HEAD the same head (the length the
//! GET body would have) with no body, the connection staying usable for the next request.

use crate::backend::on;
use crate::*;

fn head(host: &str) -> Vec<u8> {
    req("HEAD /", host, "")
}

fn get_on(host: &str) -> Vec<u8> {
    req("GET /", host, "")
}

/// The brief's example: HEAD answered here and a GET pipelined behind it in one write.
#[tokio::test]
async fn head_404_pipelined_with_a_get_gives_the_head_then_the_backend_answer() {
    Case::send(
        cat(head("nowhere.test"), get("/")),
        cat(local_head(404, NOT_FOUND, false), ok("GET /")),
    )
    .up(fwd("GET /", "a.test", ""))
    .run()
    .await;
}

#[tokio::test]
async fn head_404_has_no_body() {
    Case::send(head("nowhere.test"), local_head(404, NOT_FOUND, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn head_403_has_no_body() {
    Case::send(
        req("HEAD /admin", "a.test", ""),
        local_head(403, FORBIDDEN, false),
    )
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn head_400_missing_host_has_no_body() {
    Case::send(
        "HEAD / HTTP/1.1\r\nx-request-id: t1\r\n\r\n",
        local_head(400, NO_HOST, false),
    )
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn head_502_dead_endpoint_has_no_body() {
    Case::send(head("dead.test"), local_head(502, UPSTREAM_FAILED, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn head_413_declared_body_has_no_body_and_closes() {
    Case::send(
        cat(
            req("HEAD /", "small.test", "Content-Length: 10\r\n"),
            "0123456789",
        ),
        local_head(413, TOO_LARGE, true),
    )
    .closed()
    .run()
    .await;
}

#[tokio::test]
async fn get_404_body() {
    Case::send(get_on("nowhere.test"), local(404, NOT_FOUND, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn get_403_body() {
    Case::send(get("/admin"), local(403, FORBIDDEN, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn get_400_missing_host_body() {
    Case::send(
        "GET / HTTP/1.1\r\nx-request-id: t1\r\n\r\n",
        local(400, NO_HOST, false),
    )
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn get_502_dead_endpoint_body() {
    Case::send(get_on("dead.test"), local(502, UPSTREAM_FAILED, false))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn post_413_declared_body_closes() {
    Case::send(
        cat(
            req("POST /", "small.test", "Content-Length: 10\r\n"),
            "0123456789",
        ),
        local(413, TOO_LARGE, true),
    )
    .closed()
    .run()
    .await;
}

/// hyper serves HTTP/1.0 and answers in HTTP/1.0.
#[tokio::test]
async fn head_404_on_http_1_0_has_no_body() {
    // Answered by the fast path (in HTTP/1.1, as nginx does), closing: no keep-alive asked.
    let head = local_head(404, NOT_FOUND, true);
    Case::send("HEAD / HTTP/1.0\r\nHost: nowhere.test\r\n\r\n", head)
        .closed()
        .run()
        .await;
}

/// An endpoint's bodiless answer to HEAD (`content-length: 5`, no body): the next pipelined
/// answer follows its head at once.
#[tokio::test]
async fn backend_head_answer_with_a_length_is_followed_by_the_next_answer() {
    let head_answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
    Case::send(
        cat(req("HEAD /h", "a.test", ""), get("/g")),
        cat(head_answer, ok("GET /g")),
    )
    .script(on("/h", head_answer))
    .up(fwd("HEAD /h", "a.test", ""))
    .up(fwd("GET /g", "a.test", ""))
    .then_next()
    .run()
    .await;
}

/// Two HEADs answered here back to back, then one forwarded: no stray body between them.
#[tokio::test]
async fn two_local_heads_pipelined_then_a_get() {
    Case::send(
        cat(
            cat(head("nowhere.test"), req("HEAD /admin", "a.test", "")),
            get("/"),
        ),
        cat(
            cat(
                local_head(404, NOT_FOUND, false),
                local_head(403, FORBIDDEN, false),
            ),
            ok("GET /"),
        ),
    )
    .up(fwd("GET /", "a.test", ""))
    .run()
    .await;
}

//! Section 5b: Trailer fields, both ways: the ones that would change framing, routing or the
//! connection (`Content-Length`, `Transfer-Encoding`, `Host`, `Connection`, `TE`, `Trailer`,
//! `Upgrade`, `Keep-Alive`, `Proxy-Authorization`) are dropped, an ordinary one (`x-checksum`)
//! is passed on.

use crate::backend::on;
use crate::*;

const TE: &str = "Transfer-Encoding: chunked\r\n";
const UP_TE: &str = "transfer-encoding: chunked\r\n";

/// A chunked POST whose trailer section holds `field` and `x-checksum: 1`: the backend gets
/// only `x-checksum: 1`.
async fn request_trailer(field: &str) {
    let body = format!("5\r\nhello\r\n0\r\n{field}x-checksum: 1\r\n\r\n");
    Case::send(cat(req("POST /t", "a.test", TE), body), ok("POST /t"))
        .up(fwd_full(
            "POST /t",
            "a.test",
            "",
            "t1",
            UP_TE,
            "5\r\nhello\r\n0\r\nx-checksum: 1\r\n\r\n",
        ))
        .then_next()
        .run()
        .await;
}

/// A chunked answer whose trailer section holds `field` and `x-checksum: 1`: the client gets
/// only `x-checksum: 1`.
async fn response_trailer(field: &str) {
    let raw = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n{field}x-checksum: 1\r\n\r\n"
    );
    Case::send(
        get("/t"),
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: 1\r\n\r\n",
    )
    .script(on("/t", raw.as_bytes()))
    .up(fwd("GET /t", "a.test", ""))
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn request_ordinary_trailer_is_passed_on() {
    request_trailer("").await;
}

#[tokio::test]
async fn request_trailer_content_length_is_dropped() {
    request_trailer("Content-Length: 5\r\n").await;
}

#[tokio::test]
async fn request_trailer_transfer_encoding_is_dropped() {
    request_trailer("Transfer-Encoding: chunked\r\n").await;
}

#[tokio::test]
async fn request_trailer_host_is_dropped() {
    request_trailer("Host: evil.test\r\n").await;
}

#[tokio::test]
async fn request_trailer_connection_is_dropped() {
    request_trailer("Connection: close\r\n").await;
}

#[tokio::test]
async fn request_trailer_te_is_dropped() {
    request_trailer("TE: trailers\r\n").await;
}

#[tokio::test]
async fn request_trailer_trailer_is_dropped() {
    request_trailer("Trailer: x-checksum\r\n").await;
}

#[tokio::test]
async fn request_trailer_upgrade_is_dropped() {
    request_trailer("Upgrade: h2c\r\n").await;
}

#[tokio::test]
async fn request_trailer_keep_alive_is_dropped() {
    request_trailer("Keep-Alive: timeout=5\r\n").await;
}

#[tokio::test]
async fn request_trailer_proxy_authorization_is_dropped() {
    request_trailer("Proxy-Authorization: Basic Zm9vOmJhcg==\r\n").await;
}

#[tokio::test]
async fn response_ordinary_trailer_is_passed_on() {
    response_trailer("").await;
}

#[tokio::test]
async fn response_trailer_content_length_is_dropped() {
    response_trailer("Content-Length: 5\r\n").await;
}

#[tokio::test]
async fn response_trailer_transfer_encoding_is_dropped() {
    response_trailer("Transfer-Encoding: chunked\r\n").await;
}

#[tokio::test]
async fn response_trailer_host_is_dropped() {
    response_trailer("Host: evil.test\r\n").await;
}

#[tokio::test]
async fn response_trailer_connection_is_dropped() {
    response_trailer("Connection: close\r\n").await;
}

#[tokio::test]
async fn response_trailer_te_is_dropped() {
    response_trailer("TE: trailers\r\n").await;
}

#[tokio::test]
async fn response_trailer_trailer_is_dropped() {
    response_trailer("Trailer: x-checksum\r\n").await;
}

#[tokio::test]
async fn response_trailer_upgrade_is_dropped() {
    response_trailer("Upgrade: h2c\r\n").await;
}

#[tokio::test]
async fn response_trailer_keep_alive_is_dropped() {
    response_trailer("Keep-Alive: timeout=5\r\n").await;
}

#[tokio::test]
async fn response_trailer_proxy_authorization_is_dropped() {
    response_trailer("Proxy-Authorization: Basic Zm9vOmJhcg==\r\n").await;
}

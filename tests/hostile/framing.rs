//! Section 3: Framing a proxy must not guess at (request smuggling): refused with 400
//! `malformed request` (a head) or `invalid request body` (a chunked body) and the close,
//! nothing forwarded, B unaffected. Framing that is unusual but unambiguous is forwarded
//! re-framed canonically.

use crate::*;

/// A POST to a.test with `fields` and `body` is refused and nothing reaches the backend.
async fn refused(fields: &str, body: &str) {
    Case::send(cat(req("POST /", "a.test", fields), body), malformed())
        .closed()
        .run()
        .await;
}

/// A chunked POST to a.test whose body is broken is refused and nothing reaches the backend.
async fn refused_body(body: &str) {
    Case::send(
        cat(req("POST /", "a.test", TE), body),
        local(400, BAD_BODY, true),
    )
    .closed()
    .run()
    .await;
}

/// Raw bytes are refused and nothing reaches the backend.
async fn refused_raw(bytes: &str) {
    Case::send(bytes, malformed()).closed().run().await;
}

const TE: &str = "Transfer-Encoding: chunked\r\n";
/// The framing field as the proxy writes it.
const UP_TE: &str = "transfer-encoding: chunked\r\n";

#[tokio::test]
async fn content_length_then_transfer_encoding() {
    refused(
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "0\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn transfer_encoding_then_content_length() {
    refused(
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
        "0\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn two_different_content_lengths() {
    refused("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!").await;
}

#[tokio::test]
async fn content_length_list_of_different_values() {
    refused("Content-Length: 5, 6\r\n", "hello!").await;
}

#[tokio::test]
async fn content_length_with_plus_sign() {
    refused("Content-Length: +5\r\n", "hello").await;
}

#[tokio::test]
async fn content_length_in_hex() {
    refused("Content-Length: 0x5\r\n", "hello").await;
}

#[tokio::test]
async fn chunked_twice_in_one_field() {
    refused("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n").await;
}

#[tokio::test]
async fn chunked_twice_as_two_fields() {
    refused(&format!("{TE}{TE}"), "0\r\n\r\n").await;
}

#[tokio::test]
async fn chunked_then_identity() {
    refused("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n").await;
}

#[tokio::test]
async fn xchunked() {
    refused("Transfer-Encoding: xchunked\r\n", "0\r\n\r\n").await;
}

#[tokio::test]
async fn two_host_fields() {
    refused_raw("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\nx-request-id: t1\r\n\r\n").await;
}

#[tokio::test]
async fn space_before_colon() {
    refused_raw("GET / HTTP/1.1\r\nHost : a.test\r\nx-request-id: t1\r\n\r\n").await;
}

#[tokio::test]
async fn tab_before_colon_in_transfer_encoding() {
    refused("Transfer-Encoding\t: chunked\r\n", "0\r\n\r\n").await;
}

#[tokio::test]
async fn obs_fold_continuation_line() {
    refused_raw(
        "GET / HTTP/1.1\r\nHost: a.test\r\nX-A: 1\r\n  continued\r\nx-request-id: t1\r\n\r\n",
    )
    .await;
}

#[tokio::test]
async fn bare_cr_line_ending() {
    refused_raw("GET / HTTP/1.1\r\nHost: a.test\rX-A: 1\r\nx-request-id: t1\r\n\r\n").await;
}

#[tokio::test]
async fn nul_in_a_field_value() {
    refused_raw("GET / HTTP/1.1\r\nHost: a.test\r\nX-A: a\0b\r\nx-request-id: t1\r\n\r\n").await;
}

/// httparse takes a bare LF as a line end; the head then goes on re-written with CRLF, so
/// the endpoint cannot read it otherwise than the proxy did.
#[tokio::test]
async fn bare_lf_line_endings_are_forwarded_canonically() {
    Case::send(
        "GET /lf HTTP/1.1\nHost: a.test\nx-request-id: t1\n\n",
        ok("GET /lf"),
    )
    .up(fwd("GET /lf", "a.test", ""))
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn chunk_size_overflow() {
    refused_body("ffffffffffffffffff\r\nhello\r\n0\r\n\r\n").await;
}

#[tokio::test]
async fn chunk_size_negative() {
    refused_body("-5\r\nhello\r\n0\r\n\r\n").await;
}

#[tokio::test]
async fn chunk_size_with_0x_prefix() {
    refused_body("0x5\r\nhello\r\n0\r\n\r\n").await;
}

#[tokio::test]
async fn chunk_extension_with_bare_lf() {
    refused_body("5;ext\nhello\r\n0\r\n\r\n").await;
}

#[tokio::test]
async fn chunk_data_without_crlf() {
    refused_body("5\r\nhelloXX0\r\n\r\n").await;
}

#[tokio::test]
async fn chunk_size_line_with_bare_lf() {
    refused_body("5\nhello\r\n0\r\n\r\n").await;
}

#[tokio::test]
async fn http_1_0_with_transfer_encoding() {
    refused_raw(
        "POST / HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nx-request-id: t1\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
}

/// A coding the proxy does not implement (nginx answers 501 too).
#[tokio::test]
async fn gzip_then_chunked_is_not_implemented() {
    Case::send(
        cat(
            req("POST /", "a.test", "Transfer-Encoding: gzip, chunked\r\n"),
            "0\r\n\r\n",
        ),
        local(501, NOT_IMPLEMENTED, true),
    )
    .closed()
    .run()
    .await;
}

/// Chunk extensions are legal (RFC 9112 §7.1.1) and dropped: the body is re-framed.
#[tokio::test]
async fn chunk_extension_is_dropped_in_the_reframed_body() {
    Case::send(
        cat(
            req("POST /", "a.test", TE),
            "5;name=\"v\"\r\nhello\r\n0\r\n\r\n",
        ),
        ok("POST /"),
    )
    .up(fwd_full(
        "POST /",
        "a.test",
        "",
        "t1",
        UP_TE,
        "5\r\nhello\r\n0\r\n\r\n",
    ))
    .then_next()
    .run()
    .await;
}

/// A request hidden in a body its Content-Length covers is only body.
#[tokio::test]
async fn request_inside_a_declared_body_is_body() {
    let inner = "GET /admin HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let length = format!("content-length: {}\r\n", inner.len());
    Case::send(
        cat(
            req(
                "POST /",
                "a.test",
                &format!("Content-Length: {}\r\n", inner.len()),
            ),
            inner,
        ),
        ok("POST /"),
    )
    .up(fwd_full("POST /", "a.test", "", "t1", &length, inner))
    .then_next()
    .run()
    .await;
}

/// The same length twice is one length (RFC 9110 §8.6).
#[tokio::test]
async fn equal_content_lengths_are_one() {
    Case::send(
        cat(
            req(
                "POST /",
                "a.test",
                "Content-Length: 5\r\nContent-Length: 5\r\n",
            ),
            "hello",
        ),
        ok("POST /"),
    )
    .up(fwd_full(
        "POST /",
        "a.test",
        "",
        "t1",
        "content-length: 5\r\n",
        "hello",
    ))
    .then_next()
    .run()
    .await;
}

#[tokio::test]
async fn chunked_in_upper_case_is_chunked() {
    Case::send(
        cat(
            req("POST /", "a.test", "Transfer-Encoding: CHUNKED\r\n"),
            "5\r\nhello\r\n0\r\n\r\n",
        ),
        ok("POST /"),
    )
    .up(fwd_full(
        "POST /",
        "a.test",
        "",
        "t1",
        UP_TE,
        "5\r\nhello\r\n0\r\n\r\n",
    ))
    .then_next()
    .run()
    .await;
}

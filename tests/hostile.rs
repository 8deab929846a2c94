//! Hostile input over raw sockets, byte by byte: the HTTP/1.1 edge (local answers on HEAD,
//! path normalisation, request framing and smuggling, the hand-over to hyper, hop-by-hop and
//! trailer fields, what endpoints answer) and hand-built HTTP/2 frames.
//!
//! Every case starts its own recording backend ([`backend`]) and app, then (see
//! [`harness`]): client A sends the hostile bytes; client B sends an ordinary
//! `GET /b` in between and must get exactly its own answer; A must get exactly the bytes the
//! case names (hyper's `date:` lines removed), and be closed or kept as it says; and the
//! backend must have seen exactly the requests the clients sent, each connection's bytes
//! cut into whole requests with nothing merged, split or extra.
//!
//! The sections: [`local`] (1), [`paths`] (2), [`framing`] (3), [`handover`] (4),
//! [`headers`] and [`trailers`] (5), [`responses`] (6), [`h2`] (7).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report
#![allow(unreachable_pub)] // helpers shared by the modules of this test crate

#[path = "hostile/backend.rs"]
mod backend;
#[path = "hostile/framing.rs"]
mod framing;
#[path = "hostile/h2.rs"]
mod h2;
#[path = "hostile/h2frames.rs"]
mod h2frames;
#[path = "hostile/handover.rs"]
mod handover;
#[path = "hostile/harness.rs"]
mod harness;
#[path = "hostile/headers.rs"]
mod headers;
#[path = "hostile/local.rs"]
mod local;
#[path = "hostile/paths.rs"]
mod paths;
#[path = "hostile/responses.rs"]
mod responses;
#[path = "hostile/trailers.rs"]
mod trailers;

pub use harness::{Case, PORT};

/// 404: no route.
pub const NOT_FOUND: &str = "no route for this host and path\n";
/// 403: `allow_sources`.
pub const FORBIDDEN: &str = "forbidden\n";
/// 400: no usable Host.
pub const NO_HOST: &str = "missing or invalid Host\n";
/// 502: the endpoint failed.
pub const UPSTREAM_FAILED: &str = "upstream failed\n";
/// 413: over `max_body_bytes`.
pub const TOO_LARGE: &str = "request body too large\n";
/// 400: a target that cannot be normalised safely.
pub const BAD_TARGET: &str = "invalid request target\n";
/// 400: framing or syntax the proxy must not guess at.
pub const MALFORMED: &str = "malformed request\n";
/// Our body for a request whose chunked body is broken.
pub const BAD_BODY: &str = "invalid request body\n";
/// 501: a transfer coding other than chunked.
pub const NOT_IMPLEMENTED: &str = "transfer coding not implemented\n";
/// 405: CONNECT.
pub const NOT_ALLOWED: &str = "method not allowed\n";

/// A request head: `{line} HTTP/1.1`, `Host`, `x-request-id: t1`, then `fields` (whole
/// `name: value\r\n` lines).
pub fn req(line: &str, host: &str, fields: &str) -> Vec<u8> {
    format!("{line} HTTP/1.1\r\nHost: {host}\r\nx-request-id: t1\r\n{fields}\r\n").into_bytes()
}

/// `GET target` for `a.test`.
pub fn get(target: &str) -> Vec<u8> {
    req(&format!("GET {target}"), "a.test", "")
}

/// `GET target` for `a.test` with request id `id`.
pub fn get_id(target: &str, id: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nx-request-id: {id}\r\n\r\n",
        host = "a.test"
    )
    .into_bytes()
}

/// `a` then `b`.
pub fn cat(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> Vec<u8> {
    [a.as_ref(), b.as_ref()].concat()
}

/// A request as the backend must see it: `{line} HTTP/1.1`, `host`, the client's end-to-end
/// `fields`, the forwarding fields, `x-request-id: id`, the `framing` lines, then `body`.
pub fn fwd_full(
    line: &str,
    host: &str,
    fields: &str,
    id: &str,
    framing: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "{line} HTTP/1.1\r\nhost: {host}\r\n{fields}x-forwarded-for: 127.0.0.1\r\n\
         x-forwarded-proto: http\r\nx-forwarded-host: {host}\r\nx-forwarded-port: {PORT}\r\n\
         x-request-id: {id}\r\n{framing}\r\n{body}"
    )
    .into_bytes()
}

/// A bodiless request with id `t1` as the backend must see it.
pub fn fwd(line: &str, host: &str, fields: &str) -> Vec<u8> {
    fwd_full(line, host, fields, "t1", "", "")
}

/// A bodiless request with id `id` as the backend must see it.
pub fn fwd_id(line: &str, host: &str, fields: &str, id: &str) -> Vec<u8> {
    fwd_full(line, host, fields, id, "", "")
}

/// The backend's echo answer to `line` (`METHOD target`), as it reaches the client.
pub fn ok(line: &str) -> Vec<u8> {
    let (method, target) = line.split_once(' ').unwrap();
    backend::echo_response(method, target)
}

/// One of the proxy's own answers, on the wire.
pub fn local(code: u16, body: &str, close: bool) -> Vec<u8> {
    let mut out = local_head(code, body, close);
    out.extend_from_slice(body.as_bytes());
    out
}

/// The head of one of the proxy's own answers (a HEAD request's answer).
pub fn local_head(code: u16, body: &str, close: bool) -> Vec<u8> {
    let status = http::StatusCode::from_u16(code).unwrap();
    let reason = status.canonical_reason().unwrap_or("");
    let close = if close { "connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n{close}content-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes()
}

/// `400 malformed request` and the close.
pub fn malformed() -> Vec<u8> {
    local(400, MALFORMED, true)
}

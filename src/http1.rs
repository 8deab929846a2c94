//! HTTP/1.1 on the wire, as the proxy needs it: heads parsed by `httparse` straight from the
//! read buffer, body framing, and the header fields that decide what a message is.
//!
//! The router's fast path ([`crate::router::http`]) and the upstream pool
//! ([`crate::upstream::pool`]) speak HTTP/1.1 through this module instead of hyper's. A proxy
//! that parses a message into a `HeaderMap` and writes it out again does most of its work on
//! headers it only passes along; here fields stay the bytes they arrived as and are written
//! on by name, the way nginx and HAProxy (and Pingora, on `httparse` too) do. hyper stays for
//! HTTP/2 and for the rare HTTP/1.x requests the fast path hands it.
//!
//! - [`head`]: request and response heads, and their framing (RFC 9112 §6.3);
//! - [`framing`]: where a body ends and which bytes are data (`Content-Length`, chunked);
//! - [`fields`]: the fields the proxy acts on, recognised by name;
//! - [`io`]: a stream with its read buffer, and the relay that passes a body on.

pub mod fields;
pub mod framing;
pub mod head;
pub mod io;

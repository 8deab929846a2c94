//! Request and response header rewriting for the HTTP proxy (RFC 9110 §7.6.1, RFC 7239).
//!
//! Hop-by-hop fields describe one connection, not the message, so they are left out in both
//! directions: the fixed list from RFC 9110 plus every field the `Connection` field names.
//! Upgrades (WebSocket) are the exception the caller asks for: `Connection: upgrade` and
//! `Upgrade` are then written back.
//!
//! Client identity goes to the endpoint in `X-Forwarded-For/-Proto/-Host/-Port` (and optionally
//! RFC 7239 `Forwarded`). Incoming values are kept and appended to only when the peer is a
//! trusted proxy (an L4 balancer or another router in front of us); from anyone else they are
//! replaced, since a client could otherwise claim any address.
//!
//! One rewrite serves every path a message takes: it reads fields as (name, value) bytes (from
//! a head parsed off the wire, or from a hyper `HeaderMap`) and writes them into a [`Fields`]
//! sink (a head being written, or a new `HeaderMap`). So the HTTP/1.1 fast path never builds a
//! `HeaderMap`, and every path applies the same rules.

pub mod edits;

use crate::http1::fields::{self, ConnectionOptions, Kind};
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::body::Frame;
use std::net::IpAddr;

/// Where rewritten fields go.
pub trait Fields {
    /// Adds one field (an invalid one may be dropped).
    fn field(&mut self, name: &[u8], value: &[u8]);
}

/// A head being written: `name: value` lines.
impl Fields for Vec<u8> {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        crate::http1::io::write_field(self, name, value);
    }
}

/// Fields for hyper. Values came from a valid message or our own formatting; one that still
/// cannot be a header value (control characters in a Host) is dropped, not sent.
impl Fields for HeaderMap {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            self.append(name, value);
        }
    }
}

/// The fields of a `HeaderMap` as (name, value) bytes.
pub fn map_pairs(map: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    map.iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
}

/// A client connection's address and port, rendered once for all the requests it sends.
#[derive(Debug, Clone)]
pub struct ClientHeaders {
    /// The client's address (after any PROXY protocol header), IPv4-mapped ones unmapped.
    pub client: IpAddr,
    /// `client` as text.
    client_text: String,
    /// The port the client connected to, as text.
    port_text: String,
}

impl ClientHeaders {
    /// Renders `client` and the local `port` it connected to.
    pub fn new(client: IpAddr, port: u16) -> Self {
        let client = client.to_canonical();
        ClientHeaders {
            client,
            client_text: client.to_string(),
            port_text: port.to_string(),
        }
    }
}

/// What the proxy knows about the client side of a request.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The client connection.
    pub conn: &'a ClientHeaders,
    /// Whether the client's connection may vouch for `X-Forwarded-*` it sends.
    pub trusted: bool,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The authority the request was routed by (with port, as sent): the endpoint's `Host`.
    pub host: &'a [u8],
}

/// How a request's fields are rewritten for the endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    /// Who is asking.
    pub origin: Origin<'a>,
    /// Also send RFC 7239 `Forwarded`.
    pub rfc7239: bool,
    /// Keep `Content-Length` (hyper frames the body by it); on the wire the caller writes
    /// the framing field itself.
    pub keep_length: bool,
    /// An upgrade to pass on: its `Upgrade` value, sent with `Connection: upgrade`.
    pub upgrade: Option<&'a [u8]>,
    /// What the request's `Connection` fields say (see [`connection_options`]).
    pub connection: ConnectionOptions,
    /// Pass on fields whose names contain `_`; dropped otherwise (as nginx does), since an
    /// application that reads `X_Forwarded_For` as `X-Forwarded-For` (CGI-style names)
    /// would take a client's claim for ours.
    pub underscores: bool,
    /// The route's request header edits ([`edits`]).
    pub headers: Option<&'a edits::HeaderEdits>,
    /// A route's `Host` rewrite (else `origin.host`, which the forwarding fields keep).
    pub endpoint_host: Option<&'a [u8]>,
}

/// The `X-Request-Id` a request goes on with: the client's, or a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestId<'a> {
    /// The client's (non-empty, at most 200 bytes).
    Kept(&'a [u8]),
    /// Generated here: 128 random bits in hex.
    New([u8; 32]),
}

impl RequestId<'_> {
    /// A new random id.
    pub fn generate() -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 32];
        let mut bits = fastrand::u128(..);
        for digit in text.iter_mut().rev() {
            *digit = HEX[(bits & 0xf) as usize];
            bits >>= 4;
        }
        RequestId::New(text)
    }

    /// The id as sent.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            RequestId::Kept(id) => id,
            RequestId::New(id) => id,
        }
    }

    /// The id as a header value (for the access log).
    pub fn to_value(&self) -> HeaderValue {
        HeaderValue::from_bytes(self.as_bytes()).unwrap_or(HeaderValue::from_static("-"))
    }
}

/// Writes the fields of a request as they go to an endpoint: `Host` (the routed authority)
/// first, then the client's end-to-end fields, then the forwarding fields. `fields` gives the
/// client's fields afresh each time it is called. Returns the `X-Request-Id` sent.
pub fn request<'f, I, S>(fields: impl Fn() -> I, rw: &Rewrite<'_>, sink: &mut S) -> RequestId<'f>
where
    I: Iterator<Item = (&'f [u8], &'f [u8])>,
    S: Fields,
{
    let connection = connection_options(fields());
    let named =
        |name: &[u8]| connection.names_fields && fields::named_by_connection(name, fields());
    let trusted = rw.origin.trusted;
    sink.field(b"host", rw.endpoint_host.unwrap_or(rw.origin.host));
    let mut te_trailers = false;
    let mut request_id = None;
    let mut prior_xff: Option<String> = None;
    let mut prior_forwarded: Option<String> = None;
    let mut kept = Kept::default();
    let mut cookies = Cookies::default();
    for (name, value) in fields() {
        let kind = fields::classify(name);
        if kind == Kind::Te {
            te_trailers |= value.trim_ascii().eq_ignore_ascii_case(b"trailers");
        }
        if kind.is_hop_by_hop() || named(name) || !rw.underscores && name.contains(&b'_') {
            continue;
        }
        if rw.headers.is_some_and(|e| e.drops(name)) {
            continue;
        }
        match kind {
            Kind::Host => {}
            Kind::Cookie => cookies.add(value),
            Kind::ContentLength if !rw.keep_length => {}
            Kind::XRequestId => {
                if request_id.is_none() && !value.is_empty() && value.len() <= 200 {
                    request_id = Some(RequestId::Kept(value));
                }
            }
            Kind::XForwardedFor => {
                if trusted {
                    append_list(&mut prior_xff, value);
                }
            }
            Kind::Forwarded if rw.rfc7239 => {
                if trusted {
                    append_list(&mut prior_forwarded, value);
                }
            }
            Kind::XForwardedProto
            | Kind::XForwardedHost
            | Kind::XForwardedPort
            | Kind::Forwarded
                if !trusted => {}
            _ => {
                kept.note(kind);
                sink.field(name, value);
            }
        }
    }
    cookies.write(sink);
    edits::write(rw.headers, sink);
    if te_trailers {
        sink.field(b"te", b"trailers");
    }
    if let Some(upgrade) = rw.upgrade {
        sink.field(b"connection", b"upgrade");
        sink.field(b"upgrade", upgrade);
    }
    let client = rw.origin.conn.client_text.as_bytes();
    match prior_xff.filter(|p| !p.trim().is_empty()) {
        Some(prior) => sink.field(
            b"x-forwarded-for",
            format!("{prior}, {}", rw.origin.conn.client_text).as_bytes(),
        ),
        None => sink.field(b"x-forwarded-for", client),
    }
    if !kept.proto {
        sink.field(b"x-forwarded-proto", rw.origin.proto.as_bytes());
    }
    if !kept.host {
        sink.field(b"x-forwarded-host", rw.origin.host);
    }
    if !kept.port {
        sink.field(b"x-forwarded-port", rw.origin.conn.port_text.as_bytes());
    }
    let id = request_id.unwrap_or_else(RequestId::generate);
    sink.field(b"x-request-id", id.as_bytes());
    if rw.rfc7239 {
        let element = forwarded_element(&rw.origin);
        let value = match prior_forwarded {
            Some(prior) => format!("{prior}, {element}"),
            None => element,
        };
        sink.field(b"forwarded", value.as_bytes());
    }
    id
}

/// A request's `Cookie` fields, sent on as one (RFC 9113 §8.2.3: HTTP/2 clients send each
/// cookie as a field of its own, and an HTTP/1.1 endpoint expects one line, `; `-joined).
#[derive(Debug, Default)]
struct Cookies<'f> {
    first: Option<&'f [u8]>,
    joined: Vec<u8>,
}

impl<'f> Cookies<'f> {
    fn add(&mut self, value: &'f [u8]) {
        match self.first {
            None => self.first = Some(value),
            Some(first) => {
                if self.joined.is_empty() {
                    self.joined.extend_from_slice(first);
                }
                self.joined.extend_from_slice(b"; ");
                self.joined.extend_from_slice(value);
            }
        }
    }

    fn write<S: Fields>(&self, sink: &mut S) {
        match (self.first, self.joined.is_empty()) {
            (Some(one), true) => sink.field(b"cookie", one),
            (Some(_), false) => sink.field(b"cookie", &self.joined),
            (None, _) => {}
        }
    }
}

/// Which forwarding fields a trusted client's request already carries.
#[derive(Debug, Default)]
struct Kept {
    proto: bool,
    host: bool,
    port: bool,
}

impl Kept {
    fn note(&mut self, kind: Kind) {
        match kind {
            Kind::XForwardedProto => self.proto = true,
            Kind::XForwardedHost => self.host = true,
            Kind::XForwardedPort => self.port = true,
            _ => {}
        }
    }
}

/// Appends a list-valued field's value to what was gathered of it so far.
fn append_list(gathered: &mut Option<String>, value: &[u8]) {
    let value = String::from_utf8_lossy(value);
    match gathered {
        Some(list) => {
            list.push_str(", ");
            list.push_str(value.trim());
        }
        None => *gathered = Some(value.trim().to_owned()),
    }
}

/// This hop's RFC 7239 element.
fn forwarded_element(origin: &Origin<'_>) -> String {
    let node = match origin.conn.client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    };
    let host = String::from_utf8_lossy(origin.host).replace('"', "");
    format!("for={node};host=\"{host}\";proto={}", origin.proto)
}

/// Writes the fields of a response as they go to the client: all but the hop-by-hop ones
/// (`connection` is what its `Connection` fields say), and `Content-Length` only when
/// `keep_length` (the caller writes framing fields on the wire); then the route's [`edits`]. A
/// route with CORS (`cors`) has its own `Access-Control-*` fields in place of the endpoint's,
/// and `Vary: Origin`.
pub fn response<'f, I, S>(
    fields: impl Fn() -> I,
    connection: ConnectionOptions,
    keep_length: bool,
    edits: Option<&edits::HeaderEdits>,
    cors: Option<&crate::policy::cors::CorsReply>,
    sink: &mut S,
) where
    I: Iterator<Item = (&'f [u8], &'f [u8])>,
    S: Fields,
{
    for (name, value) in fields() {
        let kind = fields::classify(name);
        let drop = kind.is_hop_by_hop()
            || kind == Kind::ContentLength && !keep_length
            || connection.names_fields && fields::named_by_connection(name, fields())
            || edits.is_some_and(|e| e.drops(name))
            || cors.is_some_and(|c| c.drops(name));
        if !drop {
            sink.field(name, value);
        }
    }
    edits::write(edits, sink);
    if let Some(cors) = cors {
        cors.response(sink);
    }
}

/// Writes the trailer fields of a body as they go on, in either direction: all but those a
/// trailer must not carry (see [`fields::allowed_in_trailers`]), which are dropped.
pub fn trailers<'f, I, S>(fields: I, sink: &mut S)
where
    I: Iterator<Item = (&'f [u8], &'f [u8])>,
    S: Fields,
{
    for (name, value) in fields {
        if fields::allowed_in_trailers(name) {
            sink.field(name, value);
        }
    }
}

/// A body frame as it goes on: trailers as [`trailers`] passes them, anything else as it is.
pub fn trailer_frame(frame: Frame<Bytes>) -> Frame<Bytes> {
    match frame.into_trailers() {
        Ok(map)
            if map
                .keys()
                .all(|n| fields::allowed_in_trailers(n.as_str().as_bytes())) =>
        {
            Frame::trailers(map)
        }
        Ok(map) => {
            let mut kept = HeaderMap::new();
            trailers(map_pairs(&map), &mut kept);
            Frame::trailers(kept)
        }
        Err(frame) => frame,
    }
}

/// What the `Connection` fields among `fields` say (a parsed head knows already).
pub fn connection_options<'f>(
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
) -> ConnectionOptions {
    let mut options = ConnectionOptions::default();
    for (name, value) in fields {
        if fields::classify(name) == Kind::Connection {
            options.add(value);
        }
    }
    options
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;

//! Request and response heads: parsed by `httparse` straight from the read buffer, the fields
//! borrowed from it, and the facts the proxy acts on (framing, Host, `Connection`) gathered
//! in one pass. Framing follows RFC 9112 §6.3, with the strict choices a proxy needs so that
//! it and the endpoint never disagree on where a message ends: a request with both
//! `Content-Length` and `Transfer-Encoding`, several different lengths, or more than one
//! Host is refused.

use super::fields::{self, ConnectionOptions, Kind};
use super::framing::Framing;
use std::mem::MaybeUninit;

/// Most header fields in a head (as hyper's default).
pub const MAX_FIELDS: usize = 100;

/// Room for a head's fields, filled by the parser.
pub type FieldBuf<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_FIELDS];

/// An empty [`FieldBuf`].
pub fn field_buf<'b>() -> FieldBuf<'b> {
    [MaybeUninit::uninit(); MAX_FIELDS]
}

/// Why a head was refused; the status to answer a client with is [`HeadError::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// Not an HTTP/1.x head.
    #[error("malformed head: {0}")]
    Syntax(httparse::Error),
    /// More than the allowed bytes without the end of the head.
    #[error("head larger than {0} bytes")]
    TooLarge(usize),
    /// More than [`MAX_FIELDS`] fields.
    #[error("more than {MAX_FIELDS} header fields")]
    TooManyFields,
    /// Two or more `Host` fields.
    #[error("more than one Host field")]
    DuplicateHost,
    /// A `Content-Length` that is not one number.
    #[error("invalid Content-Length")]
    ContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` on a request.
    #[error("both Content-Length and Transfer-Encoding")]
    LengthAndChunked,
    /// An HTTP/1.0 request with `Transfer-Encoding`, whose framing RFC 9112 §6.1 says to
    /// treat as faulty (1.0 has no transfer codings; a 1.0 recipient would read the body by
    /// its length or the close).
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    Http10Coding,
    /// A request whose last transfer coding is not `chunked`.
    #[error("transfer coding other than chunked last")]
    TransferCoding,
    /// A response whose transfer coding is not `chunked` alone, which cannot be passed on as
    /// it came; nginx answers 502 too.
    #[error("response transfer coding other than chunked")]
    ResponseCoding,
}

impl HeadError {
    /// The status a client gets for a request head refused this way.
    pub fn status(self) -> http::StatusCode {
        match self {
            HeadError::TooLarge(_) | HeadError::TooManyFields => {
                http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct Request<'b> {
    /// The method, as sent.
    pub method: &'b str,
    /// The request target, as sent.
    pub target: &'b str,
    /// 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub minor_version: u8,
    /// The fields, in order.
    pub fields: &'b [httparse::Header<'b>],
    /// Bytes of the head, final empty line included.
    pub len: usize,
    /// The one `Host` value, if any.
    pub host: Option<&'b [u8]>,
    /// How the body is framed.
    pub framing: Framing,
    /// What `Connection` says.
    pub connection: ConnectionOptions,
    /// Whether an `Upgrade` field is present.
    pub upgrade: bool,
    /// Whether `Transfer-Encoding` names a coding besides `chunked`.
    pub other_coding: bool,
}

impl Request<'_> {
    /// Whether the client wants the connection kept after this request.
    pub fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.connection.keep_alive && !self.connection.close
        } else {
            !self.connection.close
        }
    }

    /// The fields as (name, value) byte pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        pairs(self.fields)
    }
}

/// The fields of a parsed head as (name, value) byte pairs.
pub fn pairs<'h>(
    fields: &'h [httparse::Header<'_>],
) -> impl Iterator<Item = (&'h [u8], &'h [u8])> + Clone {
    fields.iter().map(|f| (f.name.as_bytes(), f.value))
}

/// Parses the request head at the start of `buf`: `Ok(None)` while incomplete (and not over
/// `max_len` bytes).
pub fn request<'b>(
    buf: &'b [u8],
    fields: &'b mut FieldBuf<'b>,
    max_len: usize,
) -> Result<Option<Request<'b>>, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, fields) {
        Ok(httparse::Status::Complete(len)) if len <= max_len => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_len => return Ok(None),
        Ok(_) => return Err(HeadError::TooLarge(max_len)),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
    else {
        return Err(HeadError::Syntax(httparse::Error::Token));
    };
    let fields = req.headers;
    let mut head = Request {
        method,
        target,
        minor_version,
        fields,
        len,
        host: None,
        framing: Framing::Empty,
        connection: ConnectionOptions::default(),
        upgrade: false,
        other_coding: false,
    };
    let mut length = None;
    let mut chunked = None;
    let mut codings = fields::Codings::default();
    for f in head.fields {
        match fields::classify(f.name.as_bytes()) {
            Kind::Host if head.host.is_some() => return Err(HeadError::DuplicateHost),
            Kind::Host => head.host = Some(f.value),
            Kind::ContentLength => {
                let n = fields::content_length(f.value).ok_or(HeadError::ContentLength)?;
                if length.is_some_and(|m| m != n) {
                    return Err(HeadError::ContentLength);
                }
                length = Some(n);
            }
            Kind::TransferEncoding => {
                // Only the last field's last coding counts (RFC 9112 §6.1).
                chunked = Some(fields::ends_chunked(f.value));
                codings.add(f.value);
            }
            Kind::Connection => head.connection.add(f.value),
            Kind::Upgrade => head.upgrade = true,
            _ => {}
        }
    }
    head.other_coding = codings.other;
    if minor_version == 0 && chunked.is_some() {
        return Err(HeadError::Http10Coding);
    }
    head.framing = match (length, chunked) {
        (Some(_), Some(_)) => return Err(HeadError::LengthAndChunked),
        (_, Some(false)) => return Err(HeadError::TransferCoding),
        // Chunked twice cannot be right, and the endpoint would not read it as we do.
        (_, Some(true)) if codings.chunked > 1 => return Err(HeadError::TransferCoding),
        (_, Some(true)) => Framing::Chunked,
        (Some(n), None) => Framing::Length(n),
        (None, None) => Framing::Empty,
    };
    Ok(Some(head))
}

/// A parsed response head.
#[derive(Debug)]
pub struct Response<'b> {
    /// The status code.
    pub status: u16,
    /// The reason phrase, as sent.
    pub reason: &'b str,
    /// The fields, in order.
    pub fields: &'b [httparse::Header<'b>],
    /// Bytes of the head, final empty line included.
    pub len: usize,
    /// How the body is framed (for the request it answers).
    pub framing: Framing,
    /// Whether the endpoint keeps the connection open after this response.
    pub keep_alive: bool,
    /// What `Connection` says.
    pub connection: ConnectionOptions,
    /// Whether `Transfer-Encoding` is present (then `Content-Length` must not be passed on).
    pub transfer_encoding: bool,
}

impl Response<'_> {
    /// Whether the response's `Content-Length` may go on as it came: not beside
    /// `Transfer-Encoding` (which wins), nor on a `1xx` or `204`, which must not have one
    /// (RFC 9110 §8.6). A `304`'s or a `HEAD` answer's describes the representation and stays.
    pub fn length_passes(&self) -> bool {
        !self.transfer_encoding && self.status != 204 && !(100..200).contains(&self.status)
    }

    /// The fields as (name, value) byte pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        pairs(self.fields)
    }
}

/// Parses the response head at the start of `buf`, which answers a request that was a HEAD
/// request or not: `Ok(None)` while incomplete (and not over `max_len` bytes).
pub fn response<'b>(
    buf: &'b [u8],
    fields: &'b mut FieldBuf<'b>,
    max_len: usize,
    head_request: bool,
) -> Result<Option<Response<'b>>, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, fields)
    {
        Ok(httparse::Status::Complete(len)) if len <= max_len => len,
        Ok(httparse::Status::Partial) if buf.len() <= max_len => return Ok(None),
        Ok(_) => return Err(HeadError::TooLarge(max_len)),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyFields),
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    // httparse takes any three digits; a status below 100 is no HTTP status (RFC 9110 §15).
    let (Some(status @ 100..), Some(version)) = (resp.code, resp.version) else {
        return Err(HeadError::Syntax(httparse::Error::Status));
    };
    let mut length = None;
    let mut codings = fields::Codings::default();
    let mut connection = ConnectionOptions::default();
    for f in resp.headers.iter() {
        match fields::classify(f.name.as_bytes()) {
            Kind::ContentLength => {
                let n = fields::content_length(f.value).ok_or(HeadError::ContentLength)?;
                if length.is_some_and(|m| m != n) {
                    return Err(HeadError::ContentLength);
                }
                length = Some(n);
            }
            Kind::TransferEncoding => codings.add(f.value),
            Kind::Connection => connection.add(f.value),
            _ => {}
        }
    }
    // Only `chunked`, once, can be passed on as it came: other codings would reach the client
    // undeclared (Transfer-Encoding is hop by hop, and HTTP/2 has none), and chunked twice
    // would be undone only once.
    let chunked = codings.present;
    if chunked && !codings.is_chunked_only() {
        return Err(HeadError::ResponseCoding);
    }
    let bodiless = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    // Transfer-Encoding wins over Content-Length (RFC 9112 §6.3).
    let framing = match (bodiless, chunked, length) {
        (true, _, _) => Framing::Empty,
        (_, true, _) => Framing::Chunked,
        (_, false, Some(n)) => Framing::Length(n),
        (_, false, None) => Framing::Close,
    };
    let keep_alive =
        framing != Framing::Close && !connection.close && (version == 1 || connection.keep_alive);
    Ok(Some(Response {
        status,
        reason: resp.reason.unwrap_or(""),
        fields: resp.headers,
        len,
        framing,
        keep_alive,
        connection,
        transfer_encoding: chunked,
    }))
}

#[cfg(test)]
#[path = "head_tests.rs"]
mod tests;

//! Responses of our own: plain-text errors, the HTTPS redirect, and the status an upstream
//! failure maps to (502, 504; 413 or 400 when the client's body was at fault; 503 when this
//! proxy ran out of descriptors or memory). Each is a
//! [`Local`], which hyper serves as a `Response` and the HTTP/1.1 fast path writes itself.

use super::record::ResponseBody;
use crate::upstream::blame::Blame;
use crate::upstream::http::UpstreamError;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode};

/// A small plain-text response of our own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Local {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: &'static str,
    /// `Location`, for a redirect.
    pub location: Option<String>,
    /// More fields (`Retry-After`, CORS), written after the others.
    pub fields: Option<Box<http::HeaderMap>>,
}

const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

impl Local {
    /// `status` with `body`.
    pub(super) fn new(status: StatusCode, body: &'static str) -> Self {
        Local {
            status,
            body,
            location: None,
            fields: None,
        }
    }

    /// As a response for hyper.
    pub(super) fn into_response(self) -> Response<ResponseBody> {
        let mut resp = Response::new(ResponseBody::local(Bytes::from_static(
            self.body.as_bytes(),
        )));
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN));
        if let Some(location) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            headers.insert(LOCATION, location);
        }
        if self.status == StatusCode::NO_CONTENT {
            headers.remove(CONTENT_TYPE);
        }
        if let Some(fields) = self.fields {
            headers.extend(*fields);
        }
        resp
    }

    /// As an HTTP/1.1 response on the wire, announcing the close when `close`. The answer to
    /// a `HEAD` request (`head`) has the same head, with the length a `GET` would get, and no
    /// body (RFC 9110 §9.3.2): a body there would be read as the start of the next response,
    /// shifting every later answer on the connection. A 204 of our own (a CORS preflight's
    /// answer) has neither body nor `Content-Length` (RFC 9110 §8.6); our own statuses are
    /// never 1xx or 304, the other bodiless ones.
    pub(super) fn write(&self, out: &mut Vec<u8>, close: bool, head: bool) {
        use std::io::Write;
        let reason = self.status.canonical_reason().unwrap_or("");
        let _ = write!(out, "HTTP/1.1 {} {reason}\r\n", self.status.as_u16());
        let empty = self.status == StatusCode::NO_CONTENT;
        if !empty {
            let _ = write!(out, "content-type: {TEXT_PLAIN}\r\n");
        }
        if let Some(location) = &self.location {
            let _ = write!(out, "location: {location}\r\n");
        }
        for (name, value) in self.fields.iter().flat_map(|f| f.iter()) {
            crate::http1::io::write_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        if empty {
            out.extend_from_slice(b"\r\n");
            return;
        }
        let _ = write!(out, "content-length: {}\r\n\r\n", self.body.len());
        if !head {
            out.extend_from_slice(self.body.as_bytes());
        }
    }

    /// The body bytes [`Local::write`] sends.
    pub(super) fn body_len(&self, head: bool) -> u64 {
        if head { 0 } else { self.body.len() as u64 }
    }
}

/// 308 to `target` (the request's path and query) on `https://host`; 400 when that cannot be
/// a `Location`.
pub(super) fn redirect_https(host: &str, target: &str) -> Local {
    let location = format!("https://{host}{target}");
    if HeaderValue::try_from(location.as_str()).is_err() {
        return Local::new(StatusCode::BAD_REQUEST, "invalid request target\n");
    }
    Local {
        location: Some(location),
        ..Local::new(StatusCode::PERMANENT_REDIRECT, "")
    }
}

/// What the client gets when the exchange with an endpoint failed.
pub(super) fn upstream_error(error: &UpstreamError) -> Local {
    if error.blame() == Blame::Ours {
        return Local::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "proxy out of resources, try again\n",
        );
    }
    match error {
        UpstreamError::Timeout(_) => {
            Local::new(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
        }
        UpstreamError::Body(e) if body_too_large(&**e) => {
            Local::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        }
        UpstreamError::Body(_) => Local::new(StatusCode::BAD_REQUEST, "invalid request body\n"),
        _ => Local::new(StatusCode::BAD_GATEWAY, "upstream failed\n"),
    }
}

fn body_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>()
            || matches!(
                e.downcast_ref(),
                Some(crate::http1::io::RelayError::TooLarge(_))
            )
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_responses_on_the_wire_are_complete_http_1_1_messages() {
        let mut out = Vec::new();
        Local::new(StatusCode::NOT_FOUND, "no route\n").write(&mut out, true, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\n\
             connection: close\r\ncontent-length: 9\r\n\r\nno route\n"
        );
        let mut out = Vec::new();
        redirect_https("a.test", "/x?y=1").write(&mut out, false, false);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
            "{text}"
        );
        assert!(
            text.contains("location: https://a.test/x?y=1\r\n"),
            "{text}"
        );
    }

    #[test]
    fn the_answer_to_a_head_request_has_the_head_of_a_get_and_no_body() {
        let mut out = Vec::new();
        Local::new(StatusCode::NOT_FOUND, "no route\n").write(&mut out, false, true);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: 9\r\n\r\n"
        );
    }

    #[test]
    fn a_target_that_cannot_be_a_location_is_a_bad_request() {
        assert_eq!(
            redirect_https("a.test", "/\n").status,
            StatusCode::BAD_REQUEST
        );
    }
}

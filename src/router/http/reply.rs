//! Responses of our own: plain-text errors, the HTTPS redirect, and the status an upstream
//! failure maps to (502, 504, or 413 when the client's body went over the route's limit).

use super::record::ResponseBody;
use crate::upstream::http::UpstreamError;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Response, StatusCode, Uri};

/// A small plain-text response of our own.
pub(super) fn status(code: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::local(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 308 to the same path on `https://host`.
pub(super) fn redirect_https(host: &str, uri: &Uri) -> Response<ResponseBody> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut resp = status(StatusCode::PERMANENT_REDIRECT, "");
    match HeaderValue::from_str(&format!("https://{host}{path}")) {
        Ok(location) => {
            resp.headers_mut().insert(LOCATION, location);
            resp
        }
        Err(_) => status(StatusCode::BAD_REQUEST, "invalid request target\n"),
    }
}

/// What the client gets when the exchange with an endpoint failed.
pub(super) fn upstream_error(error: &UpstreamError) -> Response<ResponseBody> {
    match error {
        UpstreamError::Timeout(_) => status(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
        UpstreamError::Request(e) if body_too_large(&**e) => {
            status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
        }
        _ => status(StatusCode::BAD_GATEWAY, "upstream failed\n"),
    }
}

fn body_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

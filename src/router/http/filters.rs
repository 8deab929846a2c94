//! Where a route's filters ([`crate::ingress::filters`]) meet a request: the redirect answered
//! here, before any endpoint, and the target the endpoint gets after a rewrite. Routing
//! ([`super::route`]) calls these once each; the header edits and the `Host` rewrite are
//! applied where fields are rewritten ([`super::prepare::rewrite`], [`crate::forward`]).
//!
//! Both take the normalised target routing produced, so the redirect's `Location` and the
//! rewritten path are built from the path the route matched, while the access log keeps the
//! client's own.

use super::conn::Conn;
use super::reply::Local;
use crate::forward::edits::HeaderEdits;
use crate::ingress::RouteTarget;
use crate::ingress::filters::{Asked, Scheme};
use http::{HeaderValue, StatusCode};
use std::borrow::Cow;

/// The route's redirect for this request, if it has one: `authority` as the client sent it,
/// `normalised` the path and query routing produced.
pub(super) fn redirect(
    target: &RouteTarget,
    conn: &Conn,
    authority: &str,
    normalised: &str,
) -> Option<Local> {
    let redirect = target.filters.as_deref()?.redirect.as_ref()?;
    let (path, query) = match normalised.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        // `OPTIONS *` was routed as `/`, and is redirected as `/`.
        None if normalised == "*" => ("/", None),
        None => (normalised, None),
    };
    let asked = Asked {
        scheme: if conn.tls {
            Scheme::Https
        } else {
            Scheme::Http
        },
        authority,
        path,
        query,
    };
    let location = redirect.location(&asked);
    let status = StatusCode::from_u16(redirect.status).unwrap_or(StatusCode::FOUND);
    if HeaderValue::try_from(location.as_str()).is_err() {
        return Some(Local::new(
            StatusCode::BAD_REQUEST,
            "invalid request target\n",
        ));
    }
    Some(Local {
        location: Some(location),
        ..Local::new(status, "")
    })
}

/// The target the endpoint gets: `normalised`, rewritten when the route says so.
pub(super) fn rewritten<'r>(target: &RouteTarget, normalised: Cow<'r, str>) -> Cow<'r, str> {
    let Some(rewrite) = target.filters.as_deref().and_then(|f| f.rewrite.as_ref()) else {
        return normalised;
    };
    match rewrite.target(&normalised) {
        Cow::Borrowed(_) => normalised,
        Cow::Owned(changed) => Cow::Owned(changed),
    }
}

/// The route's request header edits and the `Host` its rewrite gives the endpoint.
pub(super) fn request_edits(target: &RouteTarget) -> (Option<&HeaderEdits>, Option<&[u8]>) {
    let Some(filters) = target.filters.as_deref() else {
        return (None, None);
    };
    let host = filters
        .rewrite
        .as_ref()
        .and_then(|r| r.host.as_deref())
        .map(str::as_bytes);
    (filters.request_headers.as_ref(), host)
}

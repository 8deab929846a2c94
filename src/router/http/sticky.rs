//! Cookie affinity (`sticky_cookie` on a route): a client that got an endpoint keeps it.
//!
//! Like nginx's `sticky cookie` and ingress-nginx's `affinity: cookie`, the first response
//! sets a session cookie naming the endpoint, and later requests carrying it go to the same
//! endpoint while it is usable (in the table, weight > 0, not benched); otherwise the
//! scheduler picks as usual and the cookie is replaced. The value is a hash of the endpoint's
//! address, so the cookie does not reveal internal addresses, and it survives reloads and
//! endpoint reordering.

use crate::forward::Fields;
use crate::service_table::{Endpoint, Service};

/// The hash of the endpoint's address (its `ip:port` text) that its cookie value names.
fn hash(endpoint: &Endpoint) -> u64 {
    xxhash_rust::xxh3::xxh3_64(endpoint.authority.as_str().as_bytes())
}

/// The cookie value that names `endpoint`.
pub(super) fn endpoint_id(endpoint: &Endpoint) -> String {
    format!("{:016x}", hash(endpoint))
}

/// The value of cookie `name` among the request's `Cookie` field values, if any.
pub(super) fn cookie<'h>(values: impl Iterator<Item = &'h [u8]>, name: &str) -> Option<&'h str> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The endpoint the cookie value `id` names, if it can take the request.
pub(super) fn endpoint(service: &Service, id: &str, tried: &[usize]) -> Option<usize> {
    let wanted = u64::from_str_radix(id, 16).ok()?;
    service.endpoints.iter().enumerate().position(|(i, e)| {
        !tried.contains(&i) && e.weight > 0 && !e.state.is_benched() && hash(e) == wanted
    })
}

/// Adds the `Set-Cookie` that pins the client to `endpoint`.
pub(super) fn set(fields: &mut impl Fields, name: &str, endpoint: &Endpoint) {
    let value = format!("{name}={}; Path=/; HttpOnly", endpoint_id(endpoint));
    fields.field(b"set-cookie", value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::COOKIE;
    use http::{HeaderMap, HeaderValue};

    fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
        super::cookie(
            headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes),
            name,
        )
    }

    #[test]
    fn cookie_is_found_among_others_and_in_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; route=x"));
        headers.append(COOKIE, HeaderValue::from_static("sy=\"abc\""));
        assert_eq!(cookie(&headers, "sy"), Some("abc"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn endpoint_ids_are_stable_and_distinct() {
        let endpoint = |text: &str| Endpoint::new(text.parse().unwrap(), 1, Default::default());
        let (a, b) = (&endpoint("10.0.0.1:80"), &endpoint("10.0.0.2:80"));
        assert_eq!(endpoint_id(a), endpoint_id(a));
        assert_ne!(endpoint_id(a), endpoint_id(b));
        assert_eq!(endpoint_id(a).len(), 16);
    }
}

//! Cookie affinity (`sticky_cookie` on a route): a client that got an endpoint keeps it.
//!
//! Like nginx's `sticky cookie` and ingress-nginx's `affinity: cookie`, the first response
//! sets a session cookie naming the endpoint, and later requests carrying it go to the same
//! endpoint while it is usable (in the table, weight > 0, not benched); otherwise the
//! scheduler picks as usual and the cookie is replaced. The value is a hash of the endpoint's
//! address, so the cookie does not reveal internal addresses, and it survives reloads and
//! endpoint reordering.

use crate::service_table::Service;
use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// The cookie value that names the endpoint at `address`.
pub(super) fn endpoint_id(address: std::net::SocketAddr) -> String {
    let hash = xxhash_rust::xxh3::xxh3_64(address.to_string().as_bytes());
    format!("{hash:016x}")
}

/// The value of cookie `name` in the request, if any.
pub(super) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The endpoint the cookie value `id` names, if it can take the request.
pub(super) fn endpoint(service: &Service, id: &str, tried: &[usize]) -> Option<usize> {
    service.endpoints.iter().enumerate().position(|(i, e)| {
        !tried.contains(&i) && e.weight > 0 && !e.state.is_benched() && endpoint_id(e.address) == id
    })
}

/// Adds the `Set-Cookie` that pins the client to `address`.
pub(super) fn set(headers: &mut HeaderMap, name: &str, address: std::net::SocketAddr) {
    let value = format!("{name}={}; Path=/; HttpOnly", endpoint_id(address));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let a: std::net::SocketAddr = "10.0.0.1:80".parse().unwrap();
        let b: std::net::SocketAddr = "10.0.0.2:80".parse().unwrap();
        assert_eq!(endpoint_id(a), endpoint_id(a));
        assert_ne!(endpoint_id(a), endpoint_id(b));
        assert_eq!(endpoint_id(a).len(), 16);
    }
}

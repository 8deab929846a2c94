//! Request and response header rewriting for the HTTP proxy (RFC 9110 §7.6.1, RFC 7239).
//!
//! Hop-by-hop headers describe one connection, not the message, so they are removed in both
//! directions: the fixed list from RFC 9110 plus every header the `Connection` header names.
//! Upgrades (WebSocket) are the exception the caller handles: it keeps `Connection: upgrade`
//! and `Upgrade` when it forwards an upgrade request.
//!
//! Client identity goes to the endpoint in `X-Forwarded-For/-Proto/-Host/-Port` (and optionally
//! RFC 7239 `Forwarded`). Incoming values are kept and appended to only when the peer is a
//! trusted proxy (an L4 balancer or another router in front of us); from anyone else they are
//! replaced, since a client could otherwise claim any address.

use http::header::{
    CONNECTION, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRANSFER_ENCODING, UPGRADE,
};
use std::net::IpAddr;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Port`.
pub const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
/// `X-Request-Id`.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `Forwarded` (RFC 7239).
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy `proxy-connection` and `keep-alive`).
/// `Connection` comes first: [`remove_hop_by_hop`] relies on it.
const HOP_BY_HOP: [HeaderName; 8] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
];
/// Where `TE` is in [`HOP_BY_HOP`].
const TE_INDEX: usize = 5;

/// Removes hop-by-hop headers, including those named in `Connection`. `TE: trailers` stays:
/// it is the one `TE` HTTP/2 allows, and gRPC endpoints require it.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names finds which of the list are present (most messages carry none,
    // or only `Connection`), so only those are looked up and removed by name.
    let mut present = 0u8;
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|hop| hop == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        remove_connection_options(headers);
    }
    let trailers = present & (1 << TE_INDEX) != 0
        && headers
            .get(TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
    if trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
}

/// Removes the headers the `Connection` header names (RFC 9110 §7.6.1). The usual options
/// (`close`, `keep-alive`, `upgrade`) are recognised on the bytes, without building a name.
fn remove_connection_options(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|option| {
            !option.eq_ignore_ascii_case(b"close")
                && !HOP_BY_HOP
                    .iter()
                    .any(|hop| option.eq_ignore_ascii_case(hop.as_str().as_bytes()))
        })
        .filter_map(|option| HeaderName::from_bytes(option).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
}

/// A client connection's address and port, rendered as header values once for all the
/// requests it sends.
#[derive(Debug, Clone)]
pub struct ClientHeaders {
    /// The client's address (after any PROXY protocol header), IPv4-mapped ones unmapped.
    pub client: IpAddr,
    /// `client` as a header value.
    client_value: HeaderValue,
    /// The port the client connected to, as a header value.
    port_value: HeaderValue,
}

impl ClientHeaders {
    /// Renders `client` and the local `port` it connected to.
    pub fn new(client: IpAddr, port: u16) -> Self {
        let client = client.to_canonical();
        let render = |text: String| {
            HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("-"))
        };
        ClientHeaders {
            client,
            client_value: render(client.to_string()),
            port_value: render(port.to_string()),
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
    /// The Host the client asked for (with port, as sent).
    pub host: &'a HeaderValue,
}

/// Sets the forwarding headers on a request about to go upstream.
pub fn set_forwarding(headers: &mut HeaderMap, origin: &Origin<'_>, rfc7239: bool) {
    let client = origin.conn.client;
    let prior = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|prior| origin.trusted && !prior.trim().is_empty());
    match prior {
        Some(prior) => {
            let xff = format!("{prior}, {client}");
            insert(headers, X_FORWARDED_FOR, &xff);
        }
        None => {
            headers.insert(X_FORWARDED_FOR, origin.conn.client_value.clone());
        }
    }
    if !origin.trusted || !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(origin.proto));
    }
    if !origin.trusted || !headers.contains_key(&X_FORWARDED_HOST) {
        headers.insert(X_FORWARDED_HOST, origin.host.clone());
    }
    if !origin.trusted || !headers.contains_key(&X_FORWARDED_PORT) {
        headers.insert(X_FORWARDED_PORT, origin.conn.port_value.clone());
    }
    if rfc7239 {
        let node = match client {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("\"[{v6}]\""),
        };
        let host = origin.host.to_str().unwrap_or_default();
        let element = format!(
            "for={node};host=\"{}\";proto={}",
            host.replace('"', ""),
            origin.proto
        );
        let value = match headers.get(&FORWARDED).and_then(|v| v.to_str().ok()) {
            Some(prior) if origin.trusted => format!("{prior}, {element}"),
            _ => element,
        };
        insert(headers, FORWARDED, &value);
    } else if !origin.trusted {
        headers.remove(&FORWARDED);
    }
}

/// Makes sure the request has an `X-Request-Id`, generating one when absent; returns it.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers
        .get(&X_REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 200)
    {
        return id.clone();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 32];
    let mut bits = fastrand::u128(..);
    for digit in text.iter_mut().rev() {
        *digit = HEX[(bits & 0xf) as usize];
        bits >>= 4;
    }
    let id = HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("0"));
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    // Values come from our own formatting or from a header that was already valid; a value
    // that still cannot be a header (control characters in a Host) is dropped, not sent.
    match HeaderValue::from_str(value) {
        Ok(v) => {
            headers.insert(name, v);
        }
        Err(_) => {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(trusted: bool) -> Origin<'static> {
        let conn = Box::leak(Box::new(ClientHeaders::new(
            "192.0.2.7".parse().unwrap(),
            443,
        )));
        Origin {
            conn,
            trusted,
            proto: "https",
            host: Box::leak(Box::new(HeaderValue::from_static("app.example.com"))),
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers, deflate"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn connection_options_are_removed_in_any_case_and_from_every_connection_header() {
        let mut h = HeaderMap::new();
        h.append("connection", HeaderValue::from_static("Close , X-Secret"));
        h.append("connection", HeaderValue::from_static("Keep-Alive,x-other"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("x-other", HeaderValue::from_static("2"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        h.insert("close", HeaderValue::from_static("an end-to-end header"));
        h.insert("accept", HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(|n| n.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "close"]);
    }

    #[test]
    fn the_list_order_the_scan_relies_on() {
        assert_eq!(HOP_BY_HOP[0], CONNECTION);
        assert_eq!(HOP_BY_HOP[TE_INDEX], TE);
    }

    #[test]
    fn te_other_than_trailers_is_removed() {
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("gzip"));
        remove_hop_by_hop(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn te_trailers_survives_for_grpc() {
        let mut h = HeaderMap::new();
        h.insert("te", HeaderValue::from_static("trailers"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn untrusted_clients_cannot_spoof_forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        h.insert(FORWARDED, HeaderValue::from_static("for=10.0.0.1"));
        set_forwarding(&mut h, &origin(false), false);
        assert_eq!(h[&X_FORWARDED_FOR], "192.0.2.7");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "app.example.com");
        assert_eq!(h[&X_FORWARDED_PORT], "443");
        assert!(!h.contains_key(&FORWARDED));
    }

    #[test]
    fn trusted_proxies_are_appended_to() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.1"));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        set_forwarding(&mut h, &origin(true), true);
        assert_eq!(h[&X_FORWARDED_FOR], "198.51.100.1, 192.0.2.7");
        assert_eq!(
            h[&X_FORWARDED_PROTO], "http",
            "the first hop knows the real scheme"
        );
        assert_eq!(
            h[&FORWARDED],
            "for=192.0.2.7;host=\"app.example.com\";proto=https"
        );
    }

    #[test]
    fn ipv6_clients_are_quoted_in_forwarded() {
        let mut h = HeaderMap::new();
        let conn = ClientHeaders::new("2001:db8::1".parse().unwrap(), 443);
        let o = Origin {
            conn: &conn,
            ..origin(false)
        };
        set_forwarding(&mut h, &o, true);
        assert_eq!(
            h[&FORWARDED],
            "for=\"[2001:db8::1]\";host=\"app.example.com\";proto=https"
        );
        assert_eq!(h[&X_FORWARDED_FOR], "2001:db8::1");
    }

    #[test]
    fn request_ids_are_kept_or_generated() {
        let mut h = HeaderMap::new();
        let id = ensure_request_id(&mut h);
        assert_eq!(id.len(), 32);
        assert_eq!(h[&X_REQUEST_ID], id);
        let mut given = HeaderMap::new();
        given.insert(X_REQUEST_ID, HeaderValue::from_static("abc"));
        assert_eq!(ensure_request_id(&mut given), "abc");
    }
}

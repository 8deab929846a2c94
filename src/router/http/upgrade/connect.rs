//! WebSockets over HTTP/2 (RFC 8441) and HTTP/3 (RFC 9220, the same mechanism): an extended
//! CONNECT with `:protocol websocket` goes to the endpoint as the HTTP/1.1 upgrade it stands
//! for (as itself to an `h2c` service). What follows is said of HTTP/2; an HTTP/3 request is
//! prepared the same way, and only where its tunnel runs differs
//! ([`crate::router::http3`]'s `tunnel`: in the request's task).
//!
//! Browsers open a WebSocket on the HTTP/2 connection they already have when the server
//! offers `SETTINGS_ENABLE_CONNECT_PROTOCOL` (the listener does, see `listener::serve_with`);
//! without it they open a second connection, over HTTP/1.1, for each origin.
//!
//! The request is routed as the `GET` its handshake stands for (so routes, `allow_sources`,
//! limits, header rewrite, access log and metrics are those of an HTTP/1.1 WebSocket), and
//! prepared by the same code as an HTTP/1.1 upgrade ([`super::requested`], then
//! `proxy::prepare`): here only the method becomes `GET`, and the request gets the two fields
//! an HTTP/2 client does not send (RFC 8441 §5): a fresh `Sec-WebSocket-Key` and
//! `Sec-WebSocket-Version: 13`. The endpoint's `101` must carry the `Sec-WebSocket-Accept` of
//! that key (else 502: the endpoint did not speak WebSocket to us); the client then gets a
//! `200` with the endpoint's other fields (`Sec-WebSocket-Protocol`, `-Extensions`). An
//! endpoint that answers with another `2xx` did not switch, and the client gets a 502 (a `2xx`
//! would open the tunnel on its side); any other answer goes back as it is.
//!
//! An `h2c` service (hyper-util's HTTP/2 client, which cannot carry an HTTP/1.1 upgrade) gets
//! the extended CONNECT as it is instead ([`to_connect`]: `:protocol websocket`, no key), and
//! its `2xx` is the switch, passed on as it is. We need not wait for the endpoint's SETTINGS
//! to send one: only the receiver checks `SETTINGS_ENABLE_CONNECT_PROTOCOL`.
//!
//! The tunnel is a stream of the client's connection, not the connection: hyper serves every
//! stream in a task of its own and keeps serving the others, so the HTTP/1.1 hand-over (the
//! copy runs in the connection's task once hyper lets go of it) does not apply. The copy runs
//! in a task of its own ([`Pending::start`]), started when the `200` is handed to hyper, and
//! keeps the request counted in flight on its connection ([`crate::router::http::h2_watch`])
//! while it lasts: the connection is not idle while a tunnel lives (`h2_idle_timeout`), and a drain's
//! GOAWAY leaves it open until the tunnel ends. The connection's task, which holds the
//! listener's slot (`max_connections`) and its place in `switchyard_http_connections_active`,
//! lives as long as its streams do; at `drain_timeout` it is dropped, which ends the stream
//! and so the tunnel. The tunnel holds its endpoint's active count like an HTTP/1.1 one.

use super::Tunnel;
use crate::router::http::h2_watch::InFlight;
use crate::router::http::reply::Local;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode, Version};

/// The protocol RFC 8441 defines, and the only one passed on.
const WEBSOCKET: &str = "websocket";
/// RFC 6455 §1.3: appended to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const VERSION: HeaderName = HeaderName::from_static("sec-websocket-version");
const ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// The `Sec-WebSocket-Key` sent to the endpoint for one extended CONNECT.
#[derive(Debug, Clone)]
pub(in crate::router::http) struct Key(HeaderValue);

/// Whether `req` is an HTTP/2 extended CONNECT for a WebSocket (routed as a `GET`); one for
/// any other protocol stays a CONNECT, and is refused as one.
pub(in crate::router::http) fn is_websocket<B>(req: &Request<B>) -> bool {
    matches!(req.version(), Version::HTTP_2 | Version::HTTP_3)
        && req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case(WEBSOCKET))
}

/// Turns an extended CONNECT into the HTTP/1.1 handshake it stands for: `GET`, a fresh key
/// and version 13 (a client's own key, which RFC 8441 does not let it send, is replaced).
pub(in crate::router::http) fn to_handshake<B>(req: &mut Request<B>) -> (HeaderValue, Key) {
    *req.method_mut() = Method::GET;
    let key = Key(fresh_key());
    let headers = req.headers_mut();
    headers.insert(KEY, key.0.clone());
    headers.insert(VERSION, HeaderValue::from_static("13"));
    (HeaderValue::from_static(WEBSOCKET), key)
}

/// Readies the fields of an extended CONNECT for an `h2c` endpoint, which takes it as one:
/// without the key [`to_handshake`] added (RFC 8441 has none); gives its `:protocol`.
pub(in crate::router::http) fn to_connect(headers: &mut HeaderMap) -> hyper::ext::Protocol {
    headers.remove(KEY);
    hyper::ext::Protocol::from_static(WEBSOCKET)
}

/// A `Sec-WebSocket-Key`: 16 random bytes in base64 (RFC 6455 §4.1).
fn fresh_key() -> HeaderValue {
    let bytes = fastrand::u128(..).to_be_bytes();
    let text = STANDARD.encode(bytes);
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="))
}

/// The `Sec-WebSocket-Accept` an endpoint owes for `key` (RFC 6455 §4.2.2).
fn accept_for(key: &[u8]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key);
    context.update(GUID);
    STANDARD.encode(context.finish())
}

impl Key {
    /// The answer to the client once the endpoint switched: `200`, without the accept (it
    /// answers our key, not anything the client sent); a 502 if the accept is not the one
    /// for our key.
    pub(in crate::router::http) fn switched(
        &self,
        status: &mut StatusCode,
        headers: &mut HeaderMap,
    ) -> Result<(), Local> {
        let accept = headers.remove(ACCEPT);
        let expected = accept_for(self.0.as_bytes());
        if accept.as_ref().map(HeaderValue::as_bytes) != Some(expected.as_bytes()) {
            tracing::warn!(
                blame = "upstream",
                "websocket endpoint switched without the accept of our key"
            );
            return Err(Local::new(StatusCode::BAD_GATEWAY, "upstream failed\n"));
        }
        *status = StatusCode::OK;
        Ok(())
    }

    /// A 502 for an answer that would open the tunnel on the client's side without the
    /// endpoint having switched (any `2xx`).
    pub(in crate::router::http) fn not_switched(status: StatusCode) -> Option<Local> {
        status.is_success().then(|| {
            tracing::warn!(blame = "upstream", %status, "websocket endpoint did not switch protocols");
            Local::new(StatusCode::BAD_GATEWAY, "upstream did not switch protocols\n")
        })
    }
}

/// An HTTP/2 tunnel not started yet, carried by the body of its `200` to where its request
/// is counted in flight on its connection.
pub(in crate::router::http) struct Pending(Tunnel);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").finish_non_exhaustive()
    }
}

impl Pending {
    /// Carries `tunnel` until [`Pending::start`].
    pub(in crate::router::http) fn new(tunnel: Tunnel) -> Self {
        Pending(tunnel)
    }

    /// The tunnel, to run where its request is counted (an HTTP/3 request's task).
    pub(in crate::router::http) fn into_tunnel(self) -> Tunnel {
        self.0
    }

    /// Runs the tunnel in a task of its own, its request counted in flight on its
    /// connection until it ends (see the module doc). It first waits for hyper to send the
    /// `200` and hand over the stream.
    pub(in crate::router::http) fn start(self, in_flight: InFlight) {
        let tunnel = self.0;
        tokio::spawn(async move {
            let _in_flight = in_flight;
            tunnel.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_is_the_one_rfc_6455_gives_for_its_sample_key() {
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_handshake_gets_a_fresh_key_of_16_bytes_and_version_13() {
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .header("sec-websocket-key", "client's own")
            .body(())
            .unwrap_or_default();
        let (value, key) = to_handshake(&mut req);
        assert_eq!(value, "websocket");
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.headers().get_all(KEY).iter().count(), 1);
        assert_eq!(req.headers()[KEY], key.0);
        assert_eq!(STANDARD.decode(key.0.as_bytes()).map(|k| k.len()), Ok(16));
        assert_eq!(req.headers()[VERSION], "13");
        let (_, other) = to_handshake(&mut req);
        assert_ne!(key.0, other.0);
    }

    #[test]
    fn only_the_accept_of_our_key_opens_the_tunnel() {
        let key = Key(HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        );
        headers.insert("sec-websocket-protocol", HeaderValue::from_static("chat"));
        let mut status = StatusCode::SWITCHING_PROTOCOLS;
        assert!(key.switched(&mut status, &mut headers).is_ok());
        assert_eq!(status, StatusCode::OK);
        assert!(headers.get(ACCEPT).is_none());
        assert_eq!(headers["sec-websocket-protocol"], "chat");

        headers.insert(
            ACCEPT,
            HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOp="),
        );
        let mut status = StatusCode::SWITCHING_PROTOCOLS;
        let refused = key
            .switched(&mut status, &mut headers)
            .err()
            .map(|l| l.status);
        assert_eq!(refused, Some(StatusCode::BAD_GATEWAY));
        headers.clear();
        assert!(key.switched(&mut status, &mut headers).is_err());
    }

    #[test]
    fn a_2xx_that_is_not_a_switch_is_refused() {
        assert!(Key::not_switched(StatusCode::OK).is_some());
        assert!(Key::not_switched(StatusCode::NO_CONTENT).is_some());
        assert!(Key::not_switched(StatusCode::FORBIDDEN).is_none());
        assert!(Key::not_switched(StatusCode::UPGRADE_REQUIRED).is_none());
    }

    #[test]
    fn only_an_http2_connect_for_websocket_is_one() {
        let connect = |version, protocol: Option<&'static str>| {
            let mut req = Request::builder()
                .method(Method::CONNECT)
                .version(version)
                .body(())
                .unwrap_or_default();
            if let Some(p) = protocol {
                req.extensions_mut()
                    .insert(hyper::ext::Protocol::from_static(p));
            }
            req
        };
        assert!(is_websocket(&connect(Version::HTTP_2, Some("websocket"))));
        assert!(!is_websocket(&connect(
            Version::HTTP_2,
            Some("connect-udp")
        )));
        assert!(!is_websocket(&connect(Version::HTTP_2, None)));
        assert!(!is_websocket(&connect(Version::HTTP_11, Some("websocket"))));
    }
}

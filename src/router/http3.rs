//! HTTP/3 (RFC 9114) over QUIC on a TLS listener's UDP port (`http3 = true`): the same
//! address and port as the TCP listener, the same certificates, and the same request handler.
//!
//! ```text
//! UDP ─> quinn endpoint ─> [Retry when flooded; max_connections] ─> QUIC handshake (rustls,
//!   the listener's certificate store, ALPN h3, deadline) ─> h3 connection ─> per request
//!   stream: a task ─> router::http::proxy::handle (the HTTP/1.1 and HTTP/2 handler)
//! ```
//!
//! Why it is built this way:
//!
//! - **One request preparation.** A request stream becomes an `http::Request` whose body is
//!   [`body::RecvBody`] and goes through [`crate::router::http::proxy::handle`], generic over
//!   the client body: routing, limits, header rewrite, access log and metrics are the ones
//!   HTTP/1.1 and HTTP/2 get. Response bodies and trailers stream back frame by frame.
//! - **One certificate store.** The rustls `ServerConfig` is [`crate::tls::server_config`] with
//!   ALPN `h3`, resolving through the same `ArcSwap<CertStore>` as the TCP side, so SNI, the
//!   default certificate and hot reloads reach new QUIC handshakes. 0-RTT stays off (rustls'
//!   `max_early_data_size` is 0): early data is replayable and a proxy cannot tell which
//!   requests behind it are safe to replay.
//! - **Limits** are the listener's: `h2_max_concurrent_streams` bidirectional streams per
//!   connection, `max_header_bytes` as h3's `max_field_section_size` (h3 answers 431 above
//!   it), `h2_idle_timeout` as QUIC's idle timeout, `handshake_timeout` over the QUIC
//!   handshake and the h3 SETTINGS exchange, and `max_connections` over the listener's TCP
//!   and QUIC connections together (one count; a QUIC connection over it is refused, and the
//!   client falls back to TCP, which waits in the backlog as usual). Amplification limits (3x before address validation)
//!   are quinn's.
//! - **Address validation**: a client whose address is not validated is sent a Retry (one more
//!   round trip) only while more than 64 handshakes (`endpoint::FLOOD_HANDSHAKES`) are in
//!   progress on the listener, i.e. when a handshake flood is seen; otherwise the handshake
//!   goes on at once.
//! - **Drain**: when the listener stops (shutdown, or it left the config), each connection
//!   sends GOAWAY (h3 `shutdown`), lets its requests finish and then closes; new connections
//!   are refused (CONNECTION_REFUSED). At the drain deadline (`force_close`) what is left is
//!   closed.
//! - **Migration** is quinn's default (on): a client that changes address keeps its connection.
//! - **WebSockets** (RFC 9220): the connection offers `SETTINGS_ENABLE_CONNECT_PROTOCOL`, and
//!   an extended CONNECT for a WebSocket is prepared as over HTTP/2; its tunnel runs in the
//!   request's task ([`tunnel`]).
//!
//! Settings are read when the endpoint starts (streams, header size, idle timeout) or for each
//! new connection (handshake deadline, `max_connections`).

mod body;
mod connection;
mod endpoint;
mod request;
mod tunnel;

pub use body::RecvBody;
pub use endpoint::start;
pub use tunnel::{Handover, TunnelStream};

use crate::config::ListenerConfig;
use http::HeaderValue;

/// The `Alt-Svc` value a TCP TLS listener advertises HTTP/3 on `port` with:
/// `h3=":PORT"; ma=SECONDS`.
pub fn alt_svc(port: u16, config: &ListenerConfig) -> Option<HeaderValue> {
    let max_age = config.http3_alt_svc_max_age.as_secs();
    HeaderValue::try_from(format!("h3=\":{port}\"; ma={max_age}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_svc_names_the_port_and_the_max_age() {
        let text = "[[listeners]]\nname = \"a\"\nlisten = \"127.0.0.1:443\"\ntls = true\n\
            http3 = true\nhttp3_alt_svc_max_age = \"1h\"\n\
            [[certificates]]\ncert = \"a.crt\"\nkey = \"a.key\"\n";
        let config = crate::config::Config::parse(text, "test").expect("valid");
        let value = alt_svc(8443, &config.http.listeners[0]).expect("a value");
        assert_eq!(value, "h3=\":8443\"; ma=3600");
    }
}

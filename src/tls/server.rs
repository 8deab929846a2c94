//! The rustls `ServerConfig` of a TLS listener, and the accept step with its deadline.
//!
//! One [`server_config`] per listener, built once: certificates come through the
//! [`SniResolver`], so reloads never rebuild it and the session cache and ticket keys it owns
//! survive them.
//!
//! Session resumption works both ways, because clients differ in what they offer:
//!
//! - **Stateless tickets** (TLS 1.3 tickets, RFC 5077 tickets in TLS 1.2), from
//!   [`rustls::crypto::aws_lc_rs::Ticketer`]. It already rotates its keys: a new AES-256/
//!   HMAC-SHA256 key every 6 hours, the previous one still accepted, so a ticket lives at most
//!   12 hours and a stolen ticket key exposes at most that window. Keys are random per process,
//!   so tickets do not resume across restarts or across replicas (no shared key file to leak).
//! - **A stateful cache** ([`ServerSessionMemoryCache`], [`SESSION_CACHE_SIZE`] entries) for
//!   TLS 1.2 clients that resume by session ID only. With tickets enabled, rustls uses tickets
//!   for TLS 1.3, so the cache only ever holds TLS 1.2 sessions.
//!
//! 0-RTT early data stays off: it is replayable, and a proxy cannot know which requests behind
//! it are idempotent.
//!
//! [`accept`] bounds the whole handshake by one deadline and classifies failures into a small
//! set of [`HandshakeError::reason`] labels. It peeks at the first byte before giving the
//! connection to rustls: every TLS connection starts with a handshake record (content type 22,
//! `0x16`), so anything else — typically `GET / HTTP/1.1` sent to the HTTPS port — is reported
//! as `not_tls` without a rustls error to interpret. It reads the ClientHello first
//! ([`LazyConfigAcceptor`]) and asks the resolver itself, so "no certificate for this name" is
//! known from the resolver's answer rather than by matching the text of a rustls error.

use super::{CertStore, HANDSHAKE_ERRORS_TOTAL, HANDSHAKES_TOTAL, SniResolver, TlsError};
use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{Acceptor, ServerSessionMemoryCache};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{LazyConfigAcceptor, TlsAcceptor};

/// Sessions kept for TLS 1.2 session-ID resumption (about 32 MB at worst).
pub const SESSION_CACHE_SIZE: usize = 32_768;

/// A reasonable handshake deadline for listeners that do not configure one: long enough for a
/// slow mobile link's round trips, short enough that idle sockets do not pile up.
pub const DEFAULT_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

/// First byte of a TLS handshake record (the ClientHello).
const HANDSHAKE_RECORD: u8 = 0x16;

/// Builds the server config of a TLS listener: TLS 1.3 and 1.2, aws-lc-rs default cipher
/// suites, certificates by SNI from `store`, ALPN `alpn` in server preference order (pass
/// `[b"h2", b"http/1.1"]`; empty disables ALPN), session tickets and a session cache.
pub fn server_config(
    store: Arc<ArcSwap<CertStore>>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|source| TlsError::Config { source })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver::new(store)));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
    config.ticketer =
        rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|source| TlsError::Config { source })?;
    Ok(Arc::new(config))
}

/// Why a TLS handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The handshake did not finish before the deadline (slow or silent client).
    #[error("tls handshake did not finish within {deadline:?}")]
    Timeout {
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The client's first byte is not a TLS handshake record: it speaks something else
    /// (usually plain HTTP) on the TLS port.
    #[error("client does not speak tls (first byte {first_byte:#04x})")]
    NotTls {
        /// The byte it sent first.
        first_byte: u8,
    },
    /// No certificate for the requested name and no default certificate: our configuration.
    #[error(
        "no certificate for server name {}",
        .server_name.as_deref().unwrap_or("(none sent)")
    )]
    NoCertificate {
        /// The SNI the client sent (validated by rustls as a DNS name).
        server_name: Option<String>,
        /// How the handshake then ended.
        #[source]
        source: io::Error,
    },
    /// The TLS exchange failed: an alert from the client, no common protocol version, cipher
    /// suite or ALPN protocol, a malformed message.
    #[error("tls handshake failed: {source}")]
    Protocol {
        /// rustls' error.
        #[source]
        source: rustls::Error,
    },
    /// The socket failed or the client closed it mid-handshake.
    #[error("i/o error during the tls handshake: {source}")]
    Io {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl HandshakeError {
    /// A bounded label for metrics and logs: `timeout`, `not_tls`, `no_certificate`,
    /// `protocol` or `io`.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout { .. } => "timeout",
            HandshakeError::NotTls { .. } => "not_tls",
            HandshakeError::NoCertificate { .. } => "no_certificate",
            HandshakeError::Protocol { .. } => "protocol",
            HandshakeError::Io { .. } => "io",
        }
    }

    /// Sorts an error from tokio-rustls, which wraps rustls errors in `InvalidData` I/O errors.
    fn from_io(error: io::Error) -> HandshakeError {
        match error.downcast::<rustls::Error>() {
            Ok(source) => HandshakeError::Protocol { source },
            Err(source) => HandshakeError::Io { source },
        }
    }
}

/// Runs the server side of a TLS handshake on `tcp`, giving up after `deadline`. Counts the
/// outcome in [`HANDSHAKES_TOTAL`] / [`HANDSHAKE_ERRORS_TOTAL`]. Failures affect only this
/// connection; the caller drops it and keeps accepting.
pub async fn accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    deadline: Duration,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    let result = match tokio::time::timeout(deadline, handshake(acceptor.config(), tcp)).await {
        Ok(result) => result,
        Err(_elapsed) => Err(HandshakeError::Timeout { deadline }),
    };
    match &result {
        Ok(_) => metrics::counter!(HANDSHAKES_TOTAL, "result" => "ok").increment(1),
        Err(error) => {
            metrics::counter!(HANDSHAKE_ERRORS_TOTAL, "reason" => error.reason()).increment(1);
            tracing::debug!(reason = error.reason(), %error, "tls handshake failed");
        }
    }
    result
}

async fn handshake(
    config: &Arc<ServerConfig>,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, HandshakeError> {
    let mut first = [0u8; 1];
    let peeked = tcp
        .peek(&mut first)
        .await
        .map_err(|source| HandshakeError::Io { source })?;
    if peeked == 0 {
        return Err(HandshakeError::Io {
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "client closed the connection before sending anything",
            ),
        });
    }
    if first[0] != HANDSHAKE_RECORD {
        return Err(HandshakeError::NotTls {
            first_byte: first[0],
        });
    }

    let start = LazyConfigAcceptor::new(Acceptor::default(), tcp)
        .await
        .map_err(HandshakeError::from_io)?;
    let hello = start.client_hello();
    // The same question rustls is about to ask; a reload in between only changes the answer
    // to a newer store's.
    let has_cert = config.cert_resolver.resolve(hello).is_some();
    let server_name = (!has_cert)
        .then(|| start.client_hello().server_name().map(str::to_owned))
        .flatten();
    match start.into_stream(Arc::clone(config)).await {
        Ok(tls) => Ok(tls),
        // Let rustls send its alert, then say why.
        Err(source) if !has_cert => Err(HandshakeError::NoCertificate {
            server_name,
            source,
        }),
        Err(error) => Err(HandshakeError::from_io(error)),
    }
}

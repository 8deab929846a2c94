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
//! set of [`HandshakeError::reason`] labels. It reads the ClientHello first ([`super::hello`]):
//! every TLS connection starts with a handshake record (content type 22, `0x16`), so anything
//! else — typically `GET / HTTP/1.1` sent to the HTTPS port — is reported as `not_tls` without a
//! rustls error to interpret. With the ClientHello in hand it either hands the connection back
//! for passthrough (the caller's `passthrough` answers for the SNI; the bytes read come with
//! it), or continues the handshake here, saying whether the default certificate was served.

use super::{CertStore, HANDSHAKE_ERRORS_TOTAL, HANDSHAKES_TOTAL, SniResolver, TlsError};
use arc_swap::ArcSwap;
use bytes::BytesMut;
use rustls::ServerConfig;
use rustls::server::ServerSessionMemoryCache;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

mod error;

pub use error::HandshakeError;

/// Sessions kept for TLS 1.2 session-ID resumption (about 32 MB at worst).
pub const SESSION_CACHE_SIZE: usize = 32_768;

/// A reasonable handshake deadline for listeners that do not configure one: long enough for a
/// slow mobile link's round trips, short enough that idle sockets do not pile up.
pub const DEFAULT_HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

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

/// What became of a connection whose ClientHello was read.
#[derive(Debug)]
pub enum Accepted<T> {
    /// TLS was terminated here.
    Terminated {
        /// The TLS stream, handshake done (boxed: rustls' state is 1.2 KiB, moved as one
        /// pointer from here on).
        stream: Box<super::TlsStream>,
        /// True when no certificate matched the SNI and the default was served.
        fallback: bool,
    },
    /// The SNI is passed through: the connection is untouched past the bytes in `hello`.
    Passthrough(Passthrough<T>),
}

/// A connection to pass through undecrypted.
#[derive(Debug)]
pub struct Passthrough<T> {
    /// What the caller's `passthrough` answered for the SNI.
    pub target: T,
    /// The client connection, positioned after `hello`.
    pub tcp: TcpStream,
    /// Every byte read from the client so far: replay these first.
    pub hello: BytesMut,
}

/// Reads the ClientHello on `tcp`; if `passthrough` answers for its SNI, hands the connection
/// back for passthrough, else runs the server side of the TLS handshake with `acceptor`'s
/// config. Gives up after `deadline` (reading the ClientHello included). Counts handshakes in
/// [`HANDSHAKES_TOTAL`] / [`HANDSHAKE_ERRORS_TOTAL`]. Failures affect only this connection; the
/// caller drops it and keeps accepting.
pub async fn accept<T>(
    acceptor: &TlsAcceptor,
    certs: &ArcSwap<CertStore>,
    tcp: TcpStream,
    deadline: Duration,
    passthrough: impl FnOnce(&str) -> Option<T>,
) -> Result<Accepted<T>, HandshakeError> {
    let handshake = handshake(acceptor.config(), certs, tcp, passthrough);
    let result = match tokio::time::timeout(deadline, handshake).await {
        Ok(result) => result,
        Err(_elapsed) => Err(HandshakeError::Timeout { deadline }),
    };
    match &result {
        Ok(Accepted::Terminated { .. }) => {
            metrics::counter!(HANDSHAKES_TOTAL, "result" => "ok").increment(1)
        }
        Ok(Accepted::Passthrough(_)) => {}
        Err(error) => {
            metrics::counter!(HANDSHAKE_ERRORS_TOTAL, "reason" => error.reason()).increment(1);
            tracing::debug!(reason = error.reason(), %error, "tls handshake failed");
        }
    }
    result
}

async fn handshake<T>(
    config: &Arc<ServerConfig>,
    certs: &ArcSwap<CertStore>,
    mut tcp: TcpStream,
    passthrough: impl FnOnce(&str) -> Option<T>,
) -> Result<Accepted<T>, HandshakeError> {
    let hello = super::hello::read(&mut tcp, super::hello::MAX_HELLO_BYTES).await?;
    let (fallback, sni) = {
        let client_hello = hello.accepted.client_hello();
        let server_name = client_hello.server_name();
        if let Some(target) = server_name.and_then(passthrough) {
            return Ok(Accepted::Passthrough(Passthrough {
                target,
                tcp,
                hello: hello.read,
            }));
        }
        // The same question the resolver is about to ask; a reload in between only changes
        // the answer to a newer store's.
        let fallback = certs.load().pick(server_name).fallback;
        (fallback, server_name.map(str::to_owned))
    };
    // rustls' `Accepted` is dropped: the handshake runs on the unbuffered API
    // ([`super::stream`]), which parses the ClientHello again from the bytes read.
    drop(hello.accepted);
    let stream = super::stream::handshake(Arc::clone(config), tcp, &hello.read, sni).await?;
    Ok(Accepted::Terminated {
        stream: Box::new(stream),
        fallback,
    })
}

//! TLS termination: certificates chosen by SNI, ALPN, session resumption, handshake deadlines.
//!
//! ```text
//! TcpStream ──> accept(acceptor, certs, tcp, deadline, passthrough)
//!                 │ hello::read: first byte not 0x16? ──> HandshakeError::NotTls
//!                 │ whole ClientHello (≤ 16 KiB, bytes kept) ── SNI passed through? ──┐
//!                 │ SniResolver ──> ArcSwap<CertStore>::load() ──> CertifiedKey       │
//!                 ▼   (exact name, then *.one-label wildcard, then the default)       ▼
//!          TlsStream (ALPN h2 | http/1.1, TLS 1.3     Accepted::Passthrough { tcp, hello bytes }
//!                     or 1.2, maybe resumed)          (the caller connects and replays them)
//! ```
//!
//! Why it is built this way:
//!
//! - **rustls with the aws-lc-rs provider**, named explicitly everywhere
//!   ([`rustls::crypto::aws_lc_rs::default_provider`]) instead of relying on a process-wide
//!   default provider, so nothing depends on which crate happened to install one first. rustls
//!   has no legacy protocol versions to disable (no SSLv3, TLS 1.0/1.1, RC4, CBC-with-MAC-then-
//!   encrypt), and aws-lc-rs is the fastest provider it has for the RSA/ECDSA/AES-GCM mix an edge
//!   proxy sees.
//! - **SNI through a resolver over an `ArcSwap`** ([`SniResolver`]). The [`rustls::ServerConfig`]
//!   is built once per listener and never rebuilt: every handshake does one `ArcSwap::load()` of
//!   the current [`CertStore`]. A certificate reload is therefore a pointer swap. Connections that
//!   are already open keep the keys they negotiated and are never touched (DESIGN.md §2); the
//!   session cache and ticket keys live in the `ServerConfig`, so resumption keeps working
//!   across reloads too.
//! - **A bad reload changes nothing.** [`CertStore::load`] either returns a complete, checked
//!   store (every key matches its certificate, every host name is valid) or an error naming the
//!   file and the problem. The caller logs and counts the error and keeps serving the old store;
//!   it never publishes a half-loaded one. [`CertStore::changed_on_disk`] lets the caller poll
//!   cheaply (a `stat` per file) to decide when to try a reload.
//! - **Every handshake has a deadline** and each failure a bounded `reason` label
//!   ([`HandshakeError::reason`]) so a port scanner and a plaintext client on the TLS port show
//!   up as different lines on a dashboard. Every failure is the client's (`timeout`,
//!   `not_tls`, `hello_too_large`, `protocol`, `io`): a store always has a default certificate
//!   (configured, or generated at start: [`default_cert`]), so no handshake fails for want of
//!   one, and an unknown host gets a clean HTTP 404 instead of a TLS error.
//!
//! Modules: [`certs`] (loading and lookup), [`default_cert`] (the generated default),
//! [`resolver`] (the rustls hook), [`hello`] (reading the ClientHello), [`server`] (the
//! `ServerConfig` and the accept step), [`passthrough`] (SNI names passed through
//! undecrypted).

pub mod certs;
pub mod default_cert;
pub mod hello;
pub mod passthrough;
pub mod resolver;
pub mod server;
pub mod stream;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sessions;
#[cfg(test)]
mod testserver;
#[cfg(test)]
mod testutil;

pub use certs::{CertSpec, CertStore, PemPair, Picked};
pub use default_cert::DEFAULT_CERT_NAME;
pub use passthrough::PassthroughTable;
pub use resolver::SniResolver;
pub use server::{
    Accepted, DEFAULT_HANDSHAKE_DEADLINE, HandshakeError, Passthrough, SESSION_CACHE_SIZE, accept,
    server_config,
};
pub use stream::TlsStream;

use std::path::PathBuf;

// Metric names live here until they move to `telemetry::metrics` with the others.

/// Completed TLS handshakes, by `result` (`ok`).
pub const HANDSHAKES_TOTAL: &str = "switchyard_tls_handshakes_total";
/// Failed TLS handshakes, by `reason` (see [`HandshakeError::reason`]).
pub const HANDSHAKE_ERRORS_TOTAL: &str = "switchyard_tls_handshake_errors_total";

/// Why certificates could not be loaded or a TLS config could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read (missing, unreadable).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A PEM section in the file is malformed.
    #[error("{path}: unreadable pem: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM parser's error.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no `CERTIFICATE` section.
    #[error("{path}: no certificate found in the file")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key section.
    #[error("{path}: no private key found in the file (expected PKCS#8, PKCS#1 or SEC1 pem)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The private key was found but cannot be used for signing.
    #[error("{path}: unusable private key: {source}")]
    UnusableKey {
        /// The key file.
        path: PathBuf,
        /// What rustls said about it.
        #[source]
        source: rustls::Error,
    },
    /// The leaf certificate could not be parsed.
    #[error("{path}: cannot parse the certificate: {source}")]
    BadCertificate {
        /// The certificate file.
        path: PathBuf,
        /// The X.509 parser's error.
        #[source]
        source: webpki::Error,
    },
    /// The private key is not the one the leaf certificate was issued for.
    #[error("{key}: the private key does not match the certificate in {cert}")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// Whether the key matches the certificate could not be checked.
    #[error("{key}: cannot check the key against the certificate in {cert}: {source}")]
    KeyCheck {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// A name in `hosts` is neither a DNS name nor a `*.` one-label wildcard.
    #[error("{cert}: invalid host {host:?}: {reason}")]
    InvalidHost {
        /// The certificate file the host was listed for.
        cert: PathBuf,
        /// The host as written.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No `hosts` were listed and the certificate has no DNS names, so it could only ever be
    /// served as the default, and it is not the default.
    #[error("{path}: the certificate has no DNS names and no hosts are listed for it")]
    NoHosts {
        /// The certificate file.
        path: PathBuf,
    },
    /// The requested default certificate does not exist.
    #[error("default certificate index {index} is out of range ({count} certificate(s))")]
    DefaultOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many certificates there are.
        count: usize,
    },
    /// The default certificate could not be generated.
    #[error("cannot generate the default certificate: {reason}")]
    Generate {
        /// What rcgen or rustls said.
        reason: String,
    },
    /// rustls refused the server configuration (protocol versions, ticket keys).
    #[error("cannot build the tls server config: {source}")]
    Config {
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

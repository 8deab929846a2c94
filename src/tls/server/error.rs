//! Why a TLS handshake did not complete, with a bounded label per cause.

use std::io;
use std::time::Duration;

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
    /// The client sent more than a ClientHello's worth of bytes without completing one.
    #[error("no complete ClientHello within {limit} bytes")]
    HelloTooLarge {
        /// The cap that was reached.
        limit: usize,
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
    /// A bounded label for metrics and logs: `timeout`, `not_tls`, `hello_too_large`,
    /// `protocol` or `io`.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::Timeout { .. } => "timeout",
            HandshakeError::NotTls { .. } => "not_tls",
            HandshakeError::HelloTooLarge { .. } => "hello_too_large",
            HandshakeError::Protocol { .. } => "protocol",
            HandshakeError::Io { .. } => "io",
        }
    }
}

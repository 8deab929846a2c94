//! Reading a ClientHello off a connection, keeping every byte read, before deciding what to do
//! with the connection: terminate TLS here, or pass it through undecrypted by its SNI.
//!
//! The bytes are parsed by rustls' own [`Acceptor`] (record reassembly, a ClientHello split
//! across several records or TCP segments, every length checked), not by a parser of ours: the
//! ClientHello is the most hostile input a TLS edge reads, and rustls' decoder is fuzzed. What
//! this module adds is the bookkeeping: a copy of what was read, so that a passthrough can
//! replay it to the endpoint byte for byte, and a cap ([`MAX_HELLO_BYTES`]) so that a client
//! cannot make us buffer more than a ClientHello's worth. The deadline is the caller's (the
//! listener's handshake timeout covers reading the hello too).
//!
//! Terminating after this parses the ClientHello a second time: the handshake runs on rustls'
//! unbuffered API ([`super::stream`]), which starts from the bytes read, not from an
//! [`Accepted`] (microseconds, once per connection, against the handshake's public-key work).
//!
//! Limit: a ClientHello rustls refuses (no null compression method, duplicate extensions) is
//! refused for passthrough hosts too, even if the endpoint behind would have taken it.

use super::HandshakeError;
use bytes::{BufMut, BytesMut};
use rustls::server::{Accepted, Acceptor};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most bytes read while waiting for a complete ClientHello. Browsers send 0.5–2 KiB (with a
/// post-quantum key share); 16 KiB, one full TLS record, leaves room for any real client.
pub const MAX_HELLO_BYTES: usize = 16 * 1024;

/// First byte of a TLS handshake record (the ClientHello).
const HANDSHAKE_RECORD: u8 = 0x16;

/// A complete ClientHello, and every byte read from the client to get it.
pub struct Hello {
    /// What rustls parsed; continues into a handshake.
    pub accepted: Accepted,
    /// The bytes read, in order (the ClientHello, and whatever followed it in the same reads).
    pub read: BytesMut,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("server_name", &self.accepted.client_hello().server_name())
            .field("read", &self.read.len())
            .finish()
    }
}

/// Reads from `io` until a whole ClientHello has arrived, at most `max` bytes. A client that
/// sends something else gets rustls' alert and an error; one that sends more than `max` bytes
/// without completing it gets [`HandshakeError::HelloTooLarge`].
pub async fn read<S>(io: &mut S, max: usize) -> Result<Hello, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut read = BytesMut::with_capacity(1024.min(max));
    loop {
        let room = max - read.len();
        if room == 0 {
            return Err(HandshakeError::HelloTooLarge { limit: max });
        }
        if read.capacity() == read.len() {
            read.reserve(read.len().max(1024).min(room));
        }
        let start = read.len();
        let n = io
            .read_buf(&mut (&mut read).limit(room))
            .await
            .map_err(|source| HandshakeError::Io { source })?;
        if n == 0 {
            return Err(HandshakeError::Io {
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "client closed the connection before its ClientHello was complete",
                ),
            });
        }
        if start == 0 && read[0] != HANDSHAKE_RECORD {
            return Err(HandshakeError::NotTls {
                first_byte: read[0],
            });
        }
        let mut fresh = &read[start..];
        while !fresh.is_empty() {
            // A `&[u8]` reader advances as rustls consumes it. rustls buffers at most one
            // maximal handshake message; past that it says so, which the cap makes moot.
            if acceptor
                .read_tls(&mut fresh)
                .map_err(|source| HandshakeError::Io { source })?
                == 0
            {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => return Ok(Hello { accepted, read }),
            Ok(None) => {}
            Err((source, mut alert)) => {
                let mut bytes = Vec::new();
                if alert.write_all(&mut bytes).is_ok() && !bytes.is_empty() {
                    // Best effort: the client is being refused either way.
                    let _sent = io.write_all(&bytes).await;
                }
                return Err(HandshakeError::Protocol { source });
            }
        }
    }
}

#[cfg(test)]
#[path = "hello_tests.rs"]
mod tests;

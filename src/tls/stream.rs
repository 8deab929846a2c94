//! A server-side TLS stream on rustls' unbuffered API, which holds no buffer while the
//! connection waits.
//!
//! tokio-rustls drives rustls' buffered `ServerConnection`, whose record buffer is a zero-filled
//! 4 KiB `Vec` from the first read on, for the connection's life: with 10,000 idle keep-alive
//! connections that was 40 MiB, two fifths of an idle TLS connection's memory. rustls'
//! unbuffered API leaves the buffers to the caller. Here a read goes to a stack buffer, rustls
//! decrypts the complete records in it (into a `Vec` per record, as its buffered API does), and
//! their data is copied to the reader; records are encrypted into a buffer of the worker
//! thread's and written from there ([`write`]). Only what cannot be handed over at once is kept
//! on the heap: a record cut by the read, data beyond the reader's buffer, TLS bytes the socket
//! would not take yet; each is freed as soon as it is drained. So an idle connection holds
//! rustls' state and its keys and no buffer, and a small request allocates nothing more than
//! before (the buffered API also allocated a `Vec` per record sent).
//!
//! The handshake ([`handshake`]) runs on the same API, fed the bytes [`super::hello`] read.
//! Semantics follow tokio-rustls: `poll_write` takes what it encrypts (sent or kept), flushing
//! sends what is kept, shutting down sends `close_notify` first; the end of the stream is the
//! peer's `close_notify` or its TCP close. (tokio-rustls made the latter an `UnexpectedEof`
//! error. Many clients close without `close_notify`; HTTP frames its messages, so a cut request
//! is still seen as cut, and a tunnel passes the end on as it does for plain TCP.) A TCP close
//! in the middle of a record is an `UnexpectedEof` error. What rustls answers
//! while reading (its key update, an alert) is sent on the way, and before any later record.

mod handshake;
mod write;

pub use handshake::handshake;

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

/// Most TLS bytes one socket read takes (one maximal TLS 1.2 record: 16 KiB of data, 2 KiB of
/// expansion, its header).
const READ_MAX: usize = 16 * 1024 + 2048 + 5;

/// A TLS stream over TCP, server side, handshake done.
pub struct TlsStream {
    /// The client's connection.
    io: TcpStream,
    /// rustls' state: the session and its keys, no buffer.
    conn: UnbufferedServerConnection,
    /// The client's name (SNI), from the ClientHello.
    sni: Option<String>,
    /// TLS bytes read and not yet processed: a record cut by a read (empty, unallocated,
    /// otherwise).
    incoming: Vec<u8>,
    /// What came with the end of the handshake is not processed yet (whole records in
    /// `incoming`, or data rustls already decrypted): process it before reading.
    unread: bool,
    /// Plaintext decrypted and not yet read, from `plain_at` on.
    plain: Vec<u8>,
    /// Where the reader's next bytes start in `plain`.
    plain_at: usize,
    /// TLS bytes to send, from `out_at` on: what the socket did not take yet.
    out: Vec<u8>,
    /// Where the next bytes to send start in `out`.
    out_at: usize,
    /// The peer closed (its `close_notify` or its TCP end): reads return the end.
    eof: bool,
    /// Our `close_notify` is sent or queued.
    closing: bool,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("sni", &self.sni)
            .field("incoming", &self.incoming.len())
            .finish_non_exhaustive()
    }
}

/// Where processing records stopped.
enum Stop {
    /// A record is incomplete: read more.
    NeedMore,
    /// The peer sent `close_notify`, or the connection is closed.
    Closed,
}

impl TlsStream {
    /// The TCP stream.
    pub fn tcp(&self) -> &TcpStream {
        &self.io
    }

    /// What the handshake settled (ALPN protocol, version, resumption).
    pub fn session(&self) -> &rustls::CommonState {
        &self.conn
    }

    /// The server name the client asked for (SNI).
    pub fn server_name(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// Processes the complete records at the start of `data`: application data goes to `buf`
    /// (beyond its room, to `plain`), TLS bytes rustls wants sent to `out`. Returns how many
    /// bytes of `data` are used up, and why it stopped.
    fn process(
        conn: &mut UnbufferedServerConnection,
        data: &mut [u8],
        buf: &mut ReadBuf<'_>,
        plain: &mut Vec<u8>,
        out: &mut Vec<u8>,
    ) -> io::Result<(usize, Stop)> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { mut discard, state } =
                conn.process_tls_records(&mut data[used..]);
            let stop = match state.map_err(invalid)? {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record.map_err(invalid)?;
                        discard += record.discard;
                        let now = record.payload.len().min(buf.remaining());
                        buf.put_slice(&record.payload[..now]);
                        plain.extend_from_slice(&record.payload[now..]);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    handshake::encode(&mut encode, out)?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => Some(Stop::Closed),
                _ => Some(Stop::NeedMore),
            };
            used += discard;
            if let Some(stop) = stop {
                return Ok((used, stop));
            }
        }
    }

    /// Reads from the socket and processes what came (see [`TlsStream::process`]).
    fn poll_fill(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let Self {
            io,
            conn,
            incoming,
            unread,
            plain,
            out,
            eof,
            ..
        } = self;
        if std::mem::take(unread) {
            let (used, stop) = Self::process(conn, incoming, buf, plain, out)?;
            incoming.drain(..used);
            if incoming.is_empty() {
                *incoming = Vec::new();
            }
            *eof |= matches!(stop, Stop::Closed);
        } else if incoming.is_empty() {
            let mut stack = [MaybeUninit::<u8>::uninit(); READ_MAX];
            let mut read = ReadBuf::uninit(&mut stack);
            ready!(Pin::new(&mut *io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                *eof = true;
                return Poll::Ready(Ok(()));
            }
            let data = read.filled_mut();
            let (used, stop) = Self::process(conn, data, buf, plain, out)?;
            incoming.extend_from_slice(&data[used..]);
            *eof |= matches!(stop, Stop::Closed);
        } else {
            incoming.reserve(READ_MAX);
            let n = ready!(tokio_util::io::poll_read_buf(
                Pin::new(&mut *io),
                cx,
                incoming
            ))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "tls: peer closed in the middle of a record",
                )));
            }
            let (used, stop) = Self::process(conn, incoming, buf, plain, out)?;
            incoming.drain(..used);
            if incoming.is_empty() {
                *incoming = Vec::new();
            }
            *eof |= matches!(stop, Stop::Closed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        loop {
            if this.plain_at < this.plain.len() {
                let now = (this.plain.len() - this.plain_at).min(buf.remaining());
                buf.put_slice(&this.plain[this.plain_at..this.plain_at + now]);
                this.plain_at += now;
                if this.plain_at == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            let filled = this.poll_fill(cx, buf);
            if let Poll::Ready(Err(error)) = &filled
                && error.kind() == io::ErrorKind::InvalidData
            {
                // rustls refused what came: its alert goes out on the way (best effort).
                handshake::queued_alert(&mut this.conn, &mut this.out);
            }
            // What rustls answered (a key update, an alert) goes out as far as the socket
            // takes it now; the rest before the next write, or with the next flush. (A socket
            // that fails here fails the next write too: what was read is returned first.)
            let _unsent = this.try_send();
            ready!(filled)?;
            if buf.filled().len() > start {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// An `InvalidData` I/O error carrying `error` (as tokio-rustls reports rustls' errors).
fn invalid<E>(error: E) -> io::Error
where
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    io::Error::new(io::ErrorKind::InvalidData, error)
}

#[cfg(test)]
mod tests;

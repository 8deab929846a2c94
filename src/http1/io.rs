//! Moving HTTP/1.1 bytes: a stream with what was read from it and not yet used
//! ([`Buffered`]), and the relay that passes one body from one side to the other ([`Relay`]).
//!
//! The relay writes what it passes in as few writes as it can: data that is already buffered
//! goes out with the head (or chunk line) before it, in one write; large `Content-Length`
//! data goes straight from the read buffer, never copied. Chunked bodies are re-framed as
//! they pass (canonical size lines, no extensions, trailers re-written field by field), so
//! the receiver parses exactly what this side did. Before it waits for more input it flushes
//! what it wrote, so nothing sits in a TLS buffer while the other side waits for it.

use super::framing::{self, Decoder, Event, Framing, FramingError};
use bytes::{Buf, BytesMut};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The first read size of a connection, and of each read into a released buffer.
const START_READ: usize = 8 * 1024;
/// The read size grows (doubling while reads fill it) up to this.
const MAX_READ: usize = 256 * 1024;
/// Buffered data up to this size is copied after what precedes it, to go out in one write;
/// more is written straight from the read buffer.
const COPY_MAX: usize = 16 * 1024;

/// A byte stream and the bytes read from it that are not used yet.
///
/// A buffer is taken only when bytes come: while it has none (new, or after
/// [`Buffered::release`]), a read goes to the stack first, and only what it got is copied into
/// a new buffer. So a connection that waits for its first request, or that has gone idle
/// between requests (10,000 such ones are common), holds no buffer; the copy (a request head)
/// and the allocation come once per wake-up, not per request (`router::http::h1` keeps the
/// buffer while requests keep coming).
#[derive(Debug)]
pub struct Buffered<S> {
    /// The stream.
    pub io: S,
    /// Read, not yet used.
    pub buf: BytesMut,
    read_size: usize,
}

impl<S: AsyncRead + Unpin> Buffered<S> {
    /// `io`, nothing read yet.
    pub fn new(io: S) -> Self {
        Self::with_buf(io, BytesMut::new())
    }

    /// `io`, with `buf` already read from it.
    pub fn with_buf(io: S, buf: BytesMut) -> Self {
        Buffered {
            io,
            buf,
            read_size: START_READ,
        }
    }

    /// Reads more into the buffer: the bytes read, 0 at the end of the stream.
    #[inline]
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() == 0 {
            return self.poll_fill_unbuffered(cx);
        }
        self.buf.reserve(self.read_size);
        let room = self.buf.capacity() - self.buf.len();
        let n = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.io),
            cx,
            &mut self.buf
        ))?;
        if n == room && self.read_size < MAX_READ {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// [`Buffered::poll_fill`] without a buffer: reads on the stack, and takes a buffer only
    /// for what came. (Once per connection and per busy spell, so kept out of line.)
    #[cold]
    #[inline(never)]
    fn poll_fill_unbuffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut stack = [MaybeUninit::<u8>::uninit(); START_READ];
        let mut read = ReadBuf::uninit(&mut stack);
        ready!(Pin::new(&mut self.io).poll_read(cx, &mut read))?;
        let got = read.filled();
        if !got.is_empty() {
            self.buf.reserve(self.read_size.max(got.len()));
            self.buf.extend_from_slice(got);
        }
        Poll::Ready(Ok(got.len()))
    }

    /// Frees the buffer if it holds nothing, and starts the read size over: for a connection
    /// about to wait (the next read takes a buffer again, see [`Buffered`]).
    pub fn release(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() != 0 {
            self.buf = BytesMut::new();
            self.read_size = START_READ;
        }
    }

    /// [`Buffered::poll_fill`] as a future.
    pub async fn fill(&mut self) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx)).await
    }
}

/// Writes all of `out[*written..]`, keeping count in `written`.
pub fn poll_write_all<W: AsyncWrite + Unpin>(
    cx: &mut Context<'_>,
    dst: &mut W,
    out: &[u8],
    written: &mut usize,
) -> Poll<io::Result<()>> {
    while *written < out.len() {
        let n = ready!(Pin::new(&mut *dst).poll_write(cx, &out[*written..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *written += n;
    }
    Poll::Ready(Ok(()))
}

/// Why a relay stopped before the body ended. Which side is to blame depends on the
/// direction: the source's for reading and framing, the destination's for writing.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading the source failed.
    #[error("read: {0}")]
    Read(#[source] io::Error),
    /// The source's framing is broken (or it closed before the end).
    #[error("{0}")]
    Framing(#[from] FramingError),
    /// Writing to the destination failed.
    #[error("write: {0}")]
    Write(#[source] io::Error),
    /// The body went over the allowed size.
    #[error("body over {0} bytes")]
    TooLarge(u64),
}

/// Passes one body from a [`Buffered`] source to a writer, after whatever is already in its
/// output (a head).
#[derive(Debug)]
pub struct Relay {
    decoder: Decoder,
    /// Bytes to write before anything else: a head, framing, copied data.
    out: Vec<u8>,
    /// How much of `out` is written.
    written: usize,
    /// Data bytes taken from the source so far.
    passed: u64,
    /// Most data bytes allowed.
    limit: Option<u64>,
    /// Whether the body's end was reached (what is left is to write `out` and flush).
    ended: bool,
    /// Whether there is a body at all.
    body: bool,
}

impl Relay {
    /// A relay of a body framed as `framing`, to be written after `out` (which may be empty;
    /// its allocation is reused).
    pub fn new(framing: Framing, mut out: Vec<u8>) -> Self {
        if out.capacity() == 0 {
            out.reserve(1024);
        }
        let decoder = Decoder::new(framing);
        Relay {
            body: !decoder.is_done(),
            decoder,
            out,
            written: 0,
            passed: 0,
            limit: None,
            ended: false,
        }
    }

    /// Refuses bodies over `limit` bytes ([`RelayError::TooLarge`]).
    pub fn with_limit(mut self, limit: Option<u64>) -> Self {
        self.limit = limit;
        self
    }

    /// Data bytes passed so far.
    pub fn passed(&self) -> u64 {
        self.passed
    }

    /// Whether the message has a body (else it can be sent again as it is).
    pub fn has_body(&self) -> bool {
        self.body
    }

    /// Whether the whole body has been passed and written.
    pub fn is_done(&self) -> bool {
        self.ended && self.written == self.out.len()
    }

    /// Starts writing `out` from the beginning again (the same request to a new connection).
    pub fn rewind(&mut self) {
        self.written = 0;
    }

    /// Gives back the output buffer, for reuse.
    pub fn into_buffer(mut self) -> Vec<u8> {
        self.out.clear();
        self.out
    }

    /// Moves the body on until it has all been written and flushed.
    pub fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut Buffered<R>,
        dst: &mut W,
    ) -> Poll<Result<(), RelayError>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            let taken = self.take_buffered(src)?;
            ready!(poll_write_all(cx, dst, &self.out, &mut self.written))
                .map_err(RelayError::Write)?;
            self.out.clear();
            self.written = 0;
            match taken {
                Taken::Full => {}
                Taken::Direct(direct) => {
                    let n = ready!(Pin::new(&mut *dst).poll_write(cx, &src.buf[..direct]))
                        .map_err(RelayError::Write)?;
                    if n == 0 {
                        let error = io::Error::from(io::ErrorKind::WriteZero);
                        return Poll::Ready(Err(RelayError::Write(error)));
                    }
                    src.buf.advance(n);
                    self.decoder.consume(n);
                    self.passed += n as u64;
                }
                Taken::Ended => {
                    ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(RelayError::Write)?;
                    return Poll::Ready(Ok(()));
                }
                Taken::NeedMore => {
                    // Flushed before waiting, so the other side has all that was passed.
                    ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(RelayError::Write)?;
                    if ready!(src.poll_fill(cx)).map_err(RelayError::Read)? == 0 {
                        self.decoder.eof()?;
                    }
                }
            }
        }
    }

    /// Moves what `src` has buffered into `out`, framing included, until `out` is full, the
    /// buffer is used up, the body ends, or data is large enough to be written straight from
    /// the buffer.
    fn take_buffered<R>(&mut self, src: &mut Buffered<R>) -> Result<Taken, RelayError> {
        if self.ended {
            return Ok(Taken::Ended);
        }
        loop {
            let room = COPY_MAX.saturating_sub(self.out.len() - self.written);
            match self.decoder.next(&src.buf)? {
                Event::Data(n) => {
                    if let Some(limit) = self.limit
                        && self.passed + n as u64 > limit
                    {
                        return Err(RelayError::TooLarge(limit));
                    }
                    if n > room && !self.decoder.is_chunked() {
                        return Ok(Taken::Direct(n));
                    }
                    if room == 0 {
                        return Ok(Taken::Full);
                    }
                    let n = n.min(room);
                    self.out.extend_from_slice(&src.buf[..n]);
                    src.buf.advance(n);
                    self.decoder.consume(n);
                    self.passed += n as u64;
                }
                Event::Chunk { line, size } => {
                    framing::chunk_line(&mut self.out, size);
                    src.buf.advance(line);
                }
                Event::ChunkEnd => {
                    self.out.extend_from_slice(b"\r\n");
                    src.buf.advance(2);
                }
                Event::LastChunk { line } => {
                    self.out.extend_from_slice(b"0\r\n");
                    src.buf.advance(line);
                }
                Event::End { trailers } => {
                    if trailers > 0 {
                        framing::trailer_fields(&src.buf[..trailers], |name, value| {
                            write_field(&mut self.out, name.as_bytes(), value);
                        });
                        self.out.extend_from_slice(b"\r\n");
                        src.buf.advance(trailers);
                    }
                    self.ended = true;
                    return Ok(Taken::Ended);
                }
                Event::NeedMore => return Ok(Taken::NeedMore),
            }
        }
    }
}

/// Where [`Relay::take_buffered`] stopped.
#[derive(Debug, Clone, Copy)]
enum Taken {
    /// `out` is full: write it, then take more.
    Full,
    /// This many data bytes at the front of the buffer are to be written from there.
    Direct(usize),
    /// The body is over.
    Ended,
    /// The buffer is used up.
    NeedMore,
}

/// Appends `n` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends an HTTP/1.1 status line.
pub fn write_status_line(out: &mut Vec<u8>, status: u16, reason: &str) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `content-length: n\r\n`.
pub fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value\r\n`.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;

//! Message body framing (RFC 9112 §6-7): where a body ends, and which of its bytes are data.
//!
//! A [`Decoder`] is fed the bytes read so far and says what comes first: body data, a chunk
//! boundary, or the end. It never copies and never allocates; its caller moves the data on
//! (relayed to the other side, or handed to hyper as frames). Chunked framing is checked
//! strictly, since a lenient chunk parser in a proxy is a request-smuggling hole: the size is
//! 1-16 hex digits, every line ends in CRLF, chunk data is followed by CRLF, and the trailer
//! section is parsed as header fields. Extensions are accepted and dropped: what the proxy
//! sends on is re-framed canonically ([`chunk_line`]), never copied as received.

use std::fmt;

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (a request without one, a HEAD response, 1xx, 204, 304).
    Empty,
    /// `Content-Length`: exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes the connection (a response without length or chunking).
    Close,
}

/// Longest chunk-size line accepted (size, extensions, CRLF).
const MAX_CHUNK_LINE: usize = 4096;
/// Largest trailer section accepted.
pub const MAX_TRAILERS: usize = 16 * 1024;
/// Most trailer fields accepted.
const MAX_TRAILER_FIELDS: usize = 32;

/// What the decoder found at the start of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The first `n` bytes (`n > 0`) are body data. Tell the decoder how many were used with
    /// [`Decoder::consume`].
    Data(usize),
    /// A chunk of `size` bytes (`size > 0`) starts; its size line is the first `line` bytes.
    Chunk {
        /// Bytes of the size line, CRLF included.
        line: usize,
        /// Data bytes in the chunk.
        size: u64,
    },
    /// The CRLF after a chunk's data (2 bytes).
    ChunkEnd,
    /// The last chunk (`0`); its size line is the first `line` bytes.
    LastChunk {
        /// Bytes of the size line, CRLF included.
        line: usize,
    },
    /// The body is complete. For chunked bodies the first `trailers` bytes are the trailer
    /// section, closing empty line included (see [`trailer_fields`]); else 0.
    End {
        /// Bytes of the trailer section.
        trailers: usize,
    },
    /// Nothing can be said until more bytes arrive.
    NeedMore,
}

/// Why a body's framing is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A chunk-size line that is not 1-16 hex digits, optional extensions and CRLF.
    #[error("invalid chunk size line")]
    ChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    ChunkEnd,
    /// A trailer section that does not parse as header fields, or is too large.
    #[error("invalid trailer section")]
    Trailers,
    /// The connection ended before the body did.
    #[error("connection closed before the body ended")]
    Truncated,
}

/// Reads the framing of one body.
#[derive(Clone, PartialEq, Eq)]
pub struct Decoder {
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `Content-Length`, this many bytes still to come.
    Length(u64),
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many data bytes still to come.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: expecting the trailer section.
    Trailers,
    /// Until the connection closes.
    Close,
    /// The body is over.
    Done,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state.fmt(f)
    }
}

impl Decoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size,
            Framing::Close => State::Close,
        };
        Decoder { state }
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the body is chunked (and not yet over).
    pub fn is_chunked(&self) -> bool {
        matches!(
            self.state,
            State::Size | State::Data(_) | State::DataEnd | State::Trailers
        )
    }

    /// Data bytes known to be still to come, when the framing says (`Content-Length`).
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// What `input` (the unread bytes, in order) starts with. Every event but [`Event::Data`]
    /// is consumed by this call: the caller drops that many bytes from its input. Data is
    /// consumed with [`Decoder::consume`], as much as was used.
    pub fn next(&mut self, input: &[u8]) -> Result<Event, FramingError> {
        match self.state {
            State::Done => Ok(Event::End { trailers: 0 }),
            State::Length(left) | State::Data(left) => Ok(match input.len() {
                0 => Event::NeedMore,
                n => Event::Data(n.min(usize::try_from(left).unwrap_or(usize::MAX))),
            }),
            State::Close => Ok(match input.len() {
                0 => Event::NeedMore,
                n => Event::Data(n),
            }),
            State::Size => self.size_line(input),
            State::DataEnd => match input {
                [b'\r', b'\n', ..] => {
                    self.state = State::Size;
                    Ok(Event::ChunkEnd)
                }
                [] | [b'\r'] => Ok(Event::NeedMore),
                _ => Err(FramingError::ChunkEnd),
            },
            State::Trailers => match trailer_section(input)? {
                Some(trailers) => {
                    self.state = State::Done;
                    Ok(Event::End { trailers })
                }
                None => Ok(Event::NeedMore),
            },
        }
    }

    /// Marks `n` bytes of the data last reported by [`Event::Data`] as used.
    pub fn consume(&mut self, n: usize) {
        let n = n as u64;
        self.state = match self.state {
            State::Length(left) if n >= left => State::Done,
            State::Length(left) => State::Length(left - n),
            State::Data(left) if n >= left => State::DataEnd,
            State::Data(left) => State::Data(left - n),
            other => other,
        };
    }

    /// The sender closed its side: fine for a body that runs until then (or is over), an
    /// error for any other.
    pub fn eof(&mut self) -> Result<(), FramingError> {
        match self.state {
            State::Close | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(FramingError::Truncated),
        }
    }

    fn size_line(&mut self, input: &[u8]) -> Result<Event, FramingError> {
        let Some((line, size)) = chunk_size(input)? else {
            return Ok(Event::NeedMore);
        };
        if size == 0 {
            self.state = State::Trailers;
            Ok(Event::LastChunk { line })
        } else {
            self.state = State::Data(size);
            Ok(Event::Chunk { line, size })
        }
    }
}

/// Parses a chunk-size line: `Some((line length, size))`, or `None` when incomplete.
fn chunk_size(input: &[u8]) -> Result<Option<(usize, u64)>, FramingError> {
    let mut size: u64 = 0;
    let mut digits = 0;
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        let value = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => break,
        };
        digits += 1;
        if digits > 16 {
            return Err(FramingError::ChunkSize);
        }
        size = (size << 4) | u64::from(value);
        i += 1;
    }
    if i == input.len() {
        return if i > 16 {
            Err(FramingError::ChunkSize)
        } else {
            Ok(None)
        };
    }
    if digits == 0 {
        return Err(FramingError::ChunkSize);
    }
    // BWS, then optional extensions up to CRLF; no bare CR or LF anywhere on the line.
    let rest = &input[i..];
    let mut in_ext = false;
    for (j, &b) in rest.iter().enumerate() {
        match b {
            b'\r' => {
                return match rest.get(j + 1) {
                    Some(b'\n') => Ok(Some((i + j + 2, size))),
                    Some(_) => Err(FramingError::ChunkSize),
                    None => Ok(None),
                };
            }
            b'\n' => return Err(FramingError::ChunkSize),
            b';' => in_ext = true,
            b' ' | b'\t' => {}
            _ if in_ext => {}
            _ => return Err(FramingError::ChunkSize),
        }
        if i + j >= MAX_CHUNK_LINE {
            return Err(FramingError::ChunkSize);
        }
    }
    Ok(None)
}

/// The length of the trailer section at the start of `input`, closing empty line included,
/// or `None` when incomplete.
fn trailer_section(input: &[u8]) -> Result<Option<usize>, FramingError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    match httparse::parse_headers(input, &mut fields) {
        Ok(httparse::Status::Complete((n, _))) => Ok(Some(n)),
        Ok(httparse::Status::Partial) if input.len() < MAX_TRAILERS => Ok(None),
        _ => Err(FramingError::Trailers),
    }
}

/// The fields of a trailer section that [`Event::End`] reported, but those a trailer must
/// not carry ([`super::fields::allowed_in_trailers`]), which are dropped.
pub fn trailer_fields(section: &[u8], mut field: impl FnMut(&str, &[u8])) {
    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILER_FIELDS];
    if let Ok(httparse::Status::Complete((_, fields))) =
        httparse::parse_headers(section, &mut fields)
    {
        for f in fields {
            if super::fields::allowed_in_trailers(f.name.as_bytes()) {
                field(f.name, f.value);
            }
        }
    }
}

/// Appends the canonical size line of a chunk of `size` bytes (`{size:x}\r\n`).
pub fn chunk_line(out: &mut Vec<u8>, size: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = size;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;

//! Hand-built HTTP/2 (RFC 9113) for the hostile tests: frames, an HPACK encoder that writes
//! every field as a literal without indexing and without Huffman coding (RFC 7541 §6.2.2),
//! and just enough of a decoder to read a response's `:status` (the first field, static-table
//! index or literal value, Huffman-coded digits included).

use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame types and flags used here.
pub const DATA: u8 = 0x0;
/// HEADERS frame.
pub const HEADERS: u8 = 0x1;
/// RST_STREAM frame.
pub const RST_STREAM: u8 = 0x3;
/// SETTINGS frame.
pub const SETTINGS: u8 = 0x4;
/// GOAWAY frame.
pub const GOAWAY: u8 = 0x7;
/// END_STREAM flag (DATA, HEADERS).
pub const END_STREAM: u8 = 0x1;
/// ACK flag (SETTINGS).
pub const ACK: u8 = 0x1;
/// END_HEADERS flag.
pub const END_HEADERS: u8 = 0x4;

/// One frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream id.
    pub stream: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A frame on the wire.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut out = len.to_be_bytes()[1..].to_vec();
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A HEADERS frame (END_HEADERS, and END_STREAM when `end`) carrying `fields` in order.
pub fn headers(stream: u32, fields: &[(String, String)], end: bool) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        string(&mut block, name.as_bytes());
        string(&mut block, value.as_bytes());
    }
    let flags = END_HEADERS | if end { END_STREAM } else { 0 };
    frame(HEADERS, flags, stream, &block)
}

/// A string literal without Huffman coding (short strings only).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    assert!(s.len() < 127, "long strings are not needed here");
    out.push(s.len() as u8);
    out.extend_from_slice(s);
}

/// Reads the next frame, `None` at the end of the stream, an error, or the deadline.
pub async fn read_frame(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    until: tokio::time::Instant,
) -> Option<Frame> {
    loop {
        if buf.len() >= 9 {
            let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
            if buf.len() >= 9 + len {
                let f = Frame {
                    kind: buf[3],
                    flags: buf[4],
                    stream: u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff,
                    payload: buf[9..9 + len].to_vec(),
                };
                buf.drain(..9 + len);
                return Some(f);
            }
        }
        let mut chunk = [0u8; 16384];
        let wait = until
            .saturating_duration_since(tokio::time::Instant::now())
            .max(Duration::from_millis(1));
        match tokio::time::timeout(wait, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// An HPACK integer with an `n`-bit prefix at `at`; returns it and the next position.
fn integer(block: &[u8], at: usize, n: u32) -> Result<(usize, usize), String> {
    let mask = (1usize << n) - 1;
    let first = *block.get(at).ok_or("block ends in an integer")? as usize & mask;
    if first < mask {
        return Ok((first, at + 1));
    }
    let (mut value, mut shift, mut i) = (mask, 0, at + 1);
    loop {
        let b = *block.get(i).ok_or("block ends in an integer")? as usize;
        value += (b & 0x7f) << shift;
        shift += 7;
        i += 1;
        if b & 0x80 == 0 {
            return Ok((value, i));
        }
    }
}

/// The `:status` of a response header block: its first field.
pub fn status(block: &[u8]) -> Result<u16, String> {
    let mut at = 0;
    // Dynamic table size updates may come first.
    while block.get(at).is_some_and(|b| b & 0xe0 == 0x20) {
        at = integer(block, at, 5)?.1;
    }
    let first = *block.get(at).ok_or("empty header block")?;
    let (index, next) = match first {
        b if b & 0x80 != 0 => {
            let (index, _) = integer(block, at, 7)?;
            return match index {
                8 => Ok(200),
                9 => Ok(204),
                10 => Ok(206),
                11 => Ok(304),
                12 => Ok(400),
                13 => Ok(404),
                14 => Ok(500),
                other => Err(format!("first field is table entry {other}")),
            };
        }
        b if b & 0xc0 == 0x40 => integer(block, at, 6)?,
        _ => integer(block, at, 4)?,
    };
    if !(8..=14).contains(&index) {
        return Err(format!("first field has name index {index}, not :status"));
    }
    let huffman = block.get(next).ok_or("no value")? & 0x80 != 0;
    let (len, start) = integer(block, next, 7)?;
    let raw = block.get(start..start + len).ok_or("value cut short")?;
    let text = if huffman {
        huffman_digits(raw)?
    } else {
        String::from_utf8_lossy(raw).into_owned()
    };
    text.parse().map_err(|_| format!("status {text:?}"))
}

/// Decodes Huffman-coded digits (RFC 7541 Appendix B: `0`-`2` are 5 bits, `3`-`9` 6 bits).
fn huffman_digits(raw: &[u8]) -> Result<String, String> {
    let bits: Vec<u8> = raw
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let value = |from: usize, n: usize| bits[from..from + n].iter().fold(0u8, |v, b| v << 1 | b);
    let mut out = String::new();
    let mut at = 0;
    while at < bits.len() {
        let left = bits.len() - at;
        if left < 8 && bits[at..].iter().all(|&b| b == 1) {
            break; // padding
        }
        if left >= 5 && value(at, 5) <= 2 {
            out.push(char::from(b'0' + value(at, 5)));
            at += 5;
        } else if left >= 6 && (0x19..=0x1f).contains(&value(at, 6)) {
            out.push(char::from(b'3' + value(at, 6) - 0x19));
            at += 6;
        } else {
            return Err(format!("not Huffman-coded digits: {raw:02x?}"));
        }
    }
    Ok(out)
}

#[test]
fn huffman_digits_decode() {
    // "403": 011010 00000 011001, padded with ones.
    assert_eq!(
        huffman_digits(&[0x68, 0x0c, 0xff]).unwrap_or_default(),
        "403"
    );
    assert_eq!(status(&[0x88]), Ok(200));
    assert_eq!(status(&[0x08, 0x03, b'4', b'0', b'3']), Ok(403));
    assert_eq!(status(&[0x48, 0x83, 0x68, 0x0c, 0xff]), Ok(403));
}

//! A hand-driven HTTP/2 client over raw frames, for tests of what a misbehaving client gets:
//! frames built by hand, header blocks in HPACK with no dynamic table, SETTINGS acknowledged,
//! PINGs answered or not.

use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout};

/// Bounds every wait.
pub const WAIT: Duration = Duration::from_secs(5);

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// Frame types, flags and error codes (RFC 9113 §6, §7).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const NO_ERROR: u32 = 0;

/// A frame: its 9-byte header and `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The header block of `GET path` (HPACK: static-table names, literal values).
pub fn get(scheme: &str, authority: &str, path: &str) -> Vec<u8> {
    let scheme = if scheme == "https" { 0x87 } else { 0x86 };
    let mut block = vec![0x82, scheme, 0x04, u8::try_from(path.len()).unwrap()];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, u8::try_from(authority.len()).unwrap()]);
    block.extend_from_slice(authority.as_bytes());
    block
}

/// A frame from the server.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// The next frame on `io`; `None` when the connection is closed (EOF, reset, any error).
pub async fn read_frame<R: AsyncRead + Unpin>(io: &mut R) -> Option<Frame> {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    io.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

pub fn goaway_code(f: &Frame) -> u32 {
    f.payload
        .get(4..8)
        .map_or(u32::MAX, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

/// Reads `io` until it closes, answering nothing: how long that took, and the code of the
/// first GOAWAY, if one came.
pub async fn until_closed<R: AsyncRead + Unpin>(io: &mut R) -> (Duration, Option<u32>) {
    let start = Instant::now();
    let mut goaway = None;
    timeout(WAIT, async {
        while let Some(f) = read_frame(io).await {
            if f.kind == GOAWAY && goaway.is_none() {
                goaway = Some(goaway_code(&f));
            }
        }
    })
    .await
    .expect("the connection was not closed");
    (start.elapsed(), goaway)
}

/// A hand-driven HTTP/2 client connection.
pub struct Client<S> {
    pub io: S,
    /// Answer the server's PINGs.
    pub pong: bool,
    /// PINGs received.
    pub pings: usize,
    /// The error code of the first GOAWAY received.
    pub goaway: Option<u32>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(io: S) -> Self {
        Client {
            io,
            pong: true,
            pings: 0,
            goaway: None,
        }
    }

    /// Sends the preface and an empty SETTINGS frame.
    pub async fn open(io: S) -> Self {
        let mut client = Client::new(io);
        let mut opening = PREFACE.to_vec();
        opening.extend(frame(SETTINGS, 0, 0, &[]));
        client.send(&opening).await.unwrap();
        client
    }

    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// The next frame, after answering SETTINGS and (if `pong`) PINGs; `None` when the
    /// connection is closed (EOF, reset, or any error).
    pub async fn frame(&mut self) -> Option<Frame> {
        let f = read_frame(&mut self.io).await?;
        match f.kind {
            SETTINGS if f.flags & ACK == 0 => {
                let _ = self.send(&frame(SETTINGS, ACK, 0, &[])).await;
            }
            PING if f.flags & ACK == 0 => {
                self.pings += 1;
                if self.pong {
                    let _ = self.send(&frame(PING, ACK, 0, &f.payload)).await;
                }
            }
            GOAWAY if self.goaway.is_none() => self.goaway = Some(goaway_code(&f)),
            _ => {}
        }
        Some(f)
    }

    /// Reads until the connection closes; how long that took.
    pub async fn closed(&mut self) -> Duration {
        let start = Instant::now();
        timeout(WAIT, async { while self.frame().await.is_some() {} })
            .await
            .expect("the connection was not closed");
        start.elapsed()
    }

    /// Sends `GET path` on `stream` and reads until its response ends; the first byte of the
    /// response's header block (0x88 is `:status: 200`).
    pub async fn get(&mut self, stream: u32, scheme: &str, authority: &str, path: &str) -> u8 {
        let block = get(scheme, authority, path);
        let flags = END_HEADERS | END_STREAM;
        self.send(&frame(HEADERS, flags, stream, &block))
            .await
            .unwrap();
        let mut status = None;
        timeout(WAIT, async {
            loop {
                let f = self.frame().await.expect("closed before the response");
                if f.stream != stream {
                    continue;
                }
                if f.kind == HEADERS && status.is_none() {
                    status = f.payload.first().copied();
                }
                if (f.kind == DATA || f.kind == HEADERS) && f.flags & END_STREAM != 0 {
                    return;
                }
            }
        })
        .await
        .expect("no response");
        status.unwrap()
    }
}

//! Reading the PROXY protocol header (v1 text or v2 binary) that an L4 balancer in front of a
//! listener sends first, so the router sees the real client address.
//!
//! The header is read exactly, never more: v2 announces its length in its first 16 bytes, and
//! v1 is one line of at most 107 bytes read up to its CRLF, so the bytes after it (a TLS
//! ClientHello, an HTTP request) stay in the socket for the next layer. Parsing is `ppp`'s.
//! A listener that accepts PROXY requires it: a connection without a valid header is closed,
//! since otherwise any client could claim any address.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-byte v2 signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 header, CRLF included (the spec's limit).
const V1_MAX: usize = 107;
/// Largest v2 header accepted (TLVs included); real balancers send far less.
const V2_MAX: usize = 4096;

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    /// Nothing complete arrived in time.
    #[error("no PROXY header within {0:?}")]
    Timeout(Duration),
    /// The connection does not start with a PROXY header.
    #[error("connection does not start with a PROXY protocol header")]
    Missing,
    /// It starts like one but does not parse.
    #[error("invalid PROXY protocol header: {0}")]
    Invalid(String),
    /// Reading failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the header; returns the client address it carries, or `None` for a `LOCAL` (v2) or
/// `UNKNOWN` (v1) header, where the connection itself is the client. Generic over the stream
/// so that the reader can be driven from memory (the fuzz target does); the listener gives it
/// its `TcpStream`.
pub async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    deadline: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    tokio::time::timeout(deadline, read_header(stream))
        .await
        .map_err(|_| ProxyHeaderError::Timeout(deadline))?
}

async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buf = vec![0u8; 8];
    stream.read_exact(&mut buf).await?;
    if buf.starts_with(b"PROXY ") {
        while !buf.ends_with(b"\r\n") {
            if buf.len() >= V1_MAX {
                return Err(ProxyHeaderError::Invalid(
                    "v1 line longer than 107 bytes".into(),
                ));
            }
            buf.push(stream.read_u8().await?);
        }
        // The line is US-ASCII (spec §2.1). Checked before `ppp` sees it: `ppp` 2.3 slices the
        // line two bytes past its first CR and panics when that falls inside a character
        // (`PROXY \r\u{4a8}\r\n`), which would kill the connection's task (found by fuzzing).
        if !buf.is_ascii() {
            return Err(ProxyHeaderError::Invalid("v1 line is not ASCII".into()));
        }
        let header = ppp::v1::Header::try_from(
            std::str::from_utf8(&buf).map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?,
        )
        .map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?;
        return Ok(match header.addresses {
            ppp::v1::Addresses::Tcp4(a) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            ppp::v1::Addresses::Tcp6(a) => {
                Some(SocketAddr::from((a.source_address, a.source_port)))
            }
            ppp::v1::Addresses::Unknown => None,
        });
    }
    if buf[..] != V2_SIGNATURE[..8] {
        return Err(ProxyHeaderError::Missing);
    }
    buf.resize(16, 0);
    stream.read_exact(&mut buf[8..]).await?;
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if 16 + len > V2_MAX {
        return Err(ProxyHeaderError::Invalid(format!(
            "v2 header of {} bytes is too long",
            16 + len
        )));
    }
    buf.resize(16 + len, 0);
    stream.read_exact(&mut buf[16..]).await?;
    let header = ppp::v2::Header::try_from(&buf[..])
        .map_err(|e| ProxyHeaderError::Invalid(e.to_string()))?;
    if header.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match header.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn through(bytes: &[u8]) -> (Result<Option<SocketAddr>, ProxyHeaderError>, Vec<u8>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        c.write_all(bytes).await.unwrap();
        c.write_all(b"REST").await.unwrap();
        c.shutdown().await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let result = read(&mut s, Duration::from_secs(2)).await;
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest).await;
        (result, rest)
    }

    #[tokio::test]
    async fn v1_header_gives_the_client_and_leaves_the_rest() {
        let (r, rest) = through(b"PROXY TCP4 192.0.2.1 198.51.100.2 40000 443\r\n").await;
        assert_eq!(r.unwrap(), Some("192.0.2.1:40000".parse().unwrap()));
        assert_eq!(rest, b"REST");
        let (r, _) = through(b"PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n").await;
        assert_eq!(r.unwrap(), Some("[2001:db8::1]:40000".parse().unwrap()));
        let (r, _) = through(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(r.unwrap(), None);
    }

    #[tokio::test]
    async fn v2_header_gives_the_client_and_leaves_the_rest() {
        let header = crate::upstream::proxy_v2_header(
            "192.0.2.9:1234".parse().unwrap(),
            "198.51.100.2:443".parse().unwrap(),
        )
        .unwrap();
        let (r, rest) = through(&header).await;
        assert_eq!(r.unwrap(), Some("192.0.2.9:1234".parse().unwrap()));
        assert_eq!(rest, b"REST");
    }

    #[tokio::test]
    async fn a_connection_without_header_is_refused() {
        let (r, _) = through(b"GET / HTTP/1.1\r\n\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Missing)), "{r:?}");
        let (r, _) = through(b"PROXY TCP4 nonsense\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Invalid(_))), "{r:?}");
        let (r, _) = through(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 and far too long for a v1 line: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Invalid(_))), "{r:?}");
    }

    #[tokio::test]
    async fn a_v1_line_with_a_cr_before_a_multibyte_character_is_refused_without_panic() {
        // `ppp` 2.3 panics on this line (a slice inside 'Ҩ'); found by the proxy_header fuzz
        // target.
        let (r, rest) = through(b"PROXY \r\xd2\xa8\r\n").await;
        assert!(matches!(r, Err(ProxyHeaderError::Invalid(_))), "{r:?}");
        assert_eq!(rest, b"REST");
    }
}

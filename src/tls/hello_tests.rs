//! The ClientHello peek against real ClientHellos (made by a rustls client) delivered in
//! pieces, and against hostile input: not TLS, malformed, endless, cut short.

use super::*;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::ReadBuf;

/// Serves `input` at most `chunk` bytes per read (each read a separate TCP segment, as it
/// were), then EOF; collects what is written back.
struct Trickle {
    input: Vec<u8>,
    at: usize,
    chunk: usize,
    written: Vec<u8>,
}

impl Trickle {
    fn new(input: Vec<u8>, chunk: usize) -> Trickle {
        Trickle {
            input,
            at: 0,
            chunk,
            written: Vec::new(),
        }
    }
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self
            .chunk
            .min(self.input.len() - self.at)
            .min(buf.remaining());
        let at = self.at;
        buf.put_slice(&self.input[at..at + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// The bytes a rustls client sends first: one record holding its ClientHello.
fn client_hello(sni: Option<&str>) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    config.enable_sni = sni.is_some();
    let name = ServerName::try_from(sni.unwrap_or("no-sni.test").to_owned()).unwrap();
    let mut conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    assert_eq!(out[0], 0x16);
    out
}

/// The same handshake message, cut into two records at `at` bytes of the message.
fn split_into_two_records(record: &[u8], at: usize) -> Vec<u8> {
    let message = &record[5..];
    let mut out = Vec::new();
    for part in [&message[..at], &message[at..]] {
        out.extend_from_slice(&record[..3]);
        out.extend_from_slice(&(part.len() as u16).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

async fn peek(input: Vec<u8>, chunk: usize) -> Result<Hello, HandshakeError> {
    read(&mut Trickle::new(input, chunk), MAX_HELLO_BYTES).await
}

fn sni(hello: &Hello) -> Option<String> {
    hello
        .accepted
        .client_hello()
        .server_name()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_whole_client_hello_gives_its_sni_and_every_byte_read() {
    let bytes = client_hello(Some("db.example.com"));
    let hello = peek(bytes.clone(), usize::MAX).await.unwrap();
    assert_eq!(sni(&hello).as_deref(), Some("db.example.com"));
    assert_eq!(&hello.read[..], &bytes[..]);
}

#[tokio::test]
async fn a_client_hello_arriving_a_few_bytes_at_a_time_is_reassembled() {
    let bytes = client_hello(Some("db.example.com"));
    for chunk in [1, 3, 7, 100] {
        let hello = peek(bytes.clone(), chunk).await.unwrap();
        assert_eq!(
            sni(&hello).as_deref(),
            Some("db.example.com"),
            "chunk {chunk}"
        );
        assert_eq!(&hello.read[..], &bytes[..], "chunk {chunk}");
    }
}

#[tokio::test]
async fn a_client_hello_split_across_two_records_is_reassembled() {
    let bytes = split_into_two_records(&client_hello(Some("split.example.com")), 40);
    for chunk in [2, usize::MAX] {
        let hello = peek(bytes.clone(), chunk).await.unwrap();
        assert_eq!(sni(&hello).as_deref(), Some("split.example.com"));
        assert_eq!(&hello.read[..], &bytes[..], "kept for replay as sent");
    }
}

#[tokio::test]
async fn bytes_after_the_client_hello_are_kept_too() {
    let mut bytes = client_hello(Some("db.example.com"));
    let hello_len = bytes.len();
    bytes.extend_from_slice(b"\x17\x03\x03\x00\x01X");
    let hello = peek(bytes.clone(), usize::MAX).await.unwrap();
    assert_eq!(&hello.read[..], &bytes[..]);
    assert!(hello.read.len() > hello_len);
}

#[tokio::test]
async fn a_client_hello_without_sni_has_no_server_name() {
    let hello = peek(client_hello(None), usize::MAX).await.unwrap();
    assert_eq!(sni(&hello), None);
}

#[tokio::test]
async fn plain_http_is_not_tls() {
    let err = peek(b"GET / HTTP/1.1\r\n\r\n".to_vec(), usize::MAX)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HandshakeError::NotTls { first_byte: b'G' }),
        "{err}"
    );
}

#[tokio::test]
async fn a_malformed_client_hello_is_a_protocol_error_with_an_alert() {
    // A handshake record holding a ClientHello of length 0.
    let garbage = vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00];
    let mut io = Trickle::new(garbage, usize::MAX);
    let err = read(&mut io, MAX_HELLO_BYTES).await.unwrap_err();
    assert_eq!(err.reason(), "protocol", "{err}");
    assert_eq!(io.written.first(), Some(&0x15), "an alert record was sent");
    // A ServerHello where the ClientHello should be.
    let err = peek(
        vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00],
        usize::MAX,
    )
    .await
    .unwrap_err();
    assert_eq!(err.reason(), "protocol", "{err}");
}

#[tokio::test]
async fn an_endless_client_hello_stops_at_the_cap() {
    // A ClientHello announcing 65,520 bytes, sent in full records: never complete by the cap.
    let mut bytes = Vec::new();
    for i in 0..4 {
        bytes.extend_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
        let mut body = vec![0u8; 0x4000];
        if i == 0 {
            body[..4].copy_from_slice(&[0x01, 0x00, 0xff, 0xf0]);
        }
        bytes.extend_from_slice(&body);
    }
    for chunk in [1000, usize::MAX] {
        let mut io = Trickle::new(bytes.clone(), chunk);
        let err = read(&mut io, MAX_HELLO_BYTES).await.unwrap_err();
        assert!(
            matches!(
                err,
                HandshakeError::HelloTooLarge {
                    limit: MAX_HELLO_BYTES
                }
            ),
            "{err}"
        );
        assert_eq!(io.at, MAX_HELLO_BYTES, "read no more than the cap");
    }
}

#[tokio::test]
async fn a_client_that_stops_mid_hello_is_an_io_error() {
    let bytes = client_hello(Some("db.example.com"));
    let err = peek(bytes[..bytes.len() / 2].to_vec(), 10)
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "io", "{err}");
    let err = peek(Vec::new(), 10).await.unwrap_err();
    assert_eq!(err.reason(), "io", "{err}");
}

//! The server side of a TLS handshake on rustls' unbuffered API, fed the bytes already read
//! with the ClientHello; its buffers are freed when it ends (see [`super`]).

use super::TlsStream;
use crate::tls::HandshakeError;
use rustls::ServerConfig;
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncodeTlsData, UnbufferedStatus};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most TLS bytes read per handshake read.
const HANDSHAKE_READ: usize = 4096;

/// What the handshake does next.
enum Step {
    /// Send `out`, then go on.
    Send,
    /// Read more from the client.
    Read,
    /// The handshake is done.
    Done,
}

/// Runs the handshake on `io`, whose first bytes, `read`, are already read (the ClientHello,
/// and whatever came with it); `sni` is the name the ClientHello asked for.
pub async fn handshake(
    config: Arc<ServerConfig>,
    mut io: TcpStream,
    read: &[u8],
    sni: Option<String>,
) -> Result<TlsStream, HandshakeError> {
    let mut conn = UnbufferedServerConnection::new(config)
        .map_err(|source| HandshakeError::Protocol { source })?;
    let mut incoming = read.to_vec();
    let mut out = Vec::new();
    loop {
        match step(&mut conn, &mut incoming, &mut out) {
            Ok(Step::Send) => {
                io.write_all(&out).await.map_err(io_error)?;
                out.clear();
            }
            Ok(Step::Read) => {
                incoming.reserve(HANDSHAKE_READ);
                if io.read_buf(&mut incoming).await.map_err(io_error)? == 0 {
                    return Err(io_error(io::ErrorKind::UnexpectedEof.into()));
                }
            }
            Ok(Step::Done) => {
                // What rustls queued last (its session tickets) when the client's first data
                // came in the same read as its Finished.
                io.write_all(&out).await.map_err(io_error)?;
                break;
            }
            Err(source) => {
                send_alert(&mut conn, &mut io).await;
                return Err(HandshakeError::Protocol { source });
            }
        }
    }
    if incoming.is_empty() {
        incoming = Vec::new();
    } else {
        incoming.shrink_to_fit();
    }
    Ok(TlsStream {
        io,
        conn,
        sni,
        unread: true,
        incoming,
        plain: Vec::new(),
        plain_at: 0,
        out: Vec::new(),
        out_at: 0,
        eof: false,
        closing: false,
    })
}

/// Processes what `incoming` holds until the handshake needs to send or to read, or is done.
fn step(
    conn: &mut UnbufferedServerConnection,
    incoming: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Result<Step, rustls::Error> {
    loop {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
        let next = match state? {
            ConnectionState::EncodeTlsData(mut encode) => {
                encode_tls(&mut encode, out)?;
                None
            }
            ConnectionState::TransmitTlsData(transmit) => {
                transmit.done();
                Some(Step::Send)
            }
            ConnectionState::BlockedHandshake => Some(Step::Read),
            ConnectionState::WriteTraffic(_) | ConnectionState::ReadTraffic(_) => Some(Step::Done),
            ConnectionState::PeerClosed | ConnectionState::Closed => {
                return Err(rustls::Error::General(
                    "client closed during the handshake".into(),
                ));
            }
            other => {
                return Err(rustls::Error::General(format!(
                    "unexpected handshake state {other:?}"
                )));
            }
        };
        incoming.drain(..discard);
        match next {
            // TLS 1.3 may send data before the client's Finished: wait for it all the same.
            Some(Step::Done) if conn.is_handshaking() => return Ok(Step::Read),
            Some(step) => return Ok(step),
            None => {}
        }
    }
}

/// Appends the TLS bytes `encode` holds to `out`.
pub(super) fn encode(
    encode: &mut EncodeTlsData<'_, rustls::server::ServerConnectionData>,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    encode_tls(encode, out).map_err(super::invalid)
}

fn encode_tls(
    encode: &mut EncodeTlsData<'_, rustls::server::ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    let start = out.len();
    out.resize(start + 1024, 0);
    loop {
        match encode.encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(EncodeError::InsufficientSize(size)) => out.resize(start + size.required_size, 0),
            Err(EncodeError::AlreadyEncoded) => {
                out.truncate(start);
                return Ok(());
            }
        }
    }
}

/// Sends the alert rustls queued for a failed handshake (best effort: the client is refused
/// either way).
async fn send_alert(conn: &mut UnbufferedServerConnection, io: &mut TcpStream) {
    let mut out = Vec::new();
    queued_alert(conn, &mut out);
    if !out.is_empty() {
        let _sent = io.write_all(&out).await;
    }
}

/// Appends to `out` the alert rustls queued when it failed (nothing if it queued none).
pub(super) fn queued_alert(conn: &mut UnbufferedServerConnection, out: &mut Vec<u8>) {
    // An alert is one record; the bound only guards against a state that never settles.
    for _ in 0..4 {
        let UnbufferedStatus { state, .. } = conn.process_tls_records(&mut []);
        match state {
            Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                if encode_tls(&mut encode, out).is_err() {
                    break;
                }
            }
            Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
            _ => break,
        }
    }
}

/// An I/O error of the handshake.
fn io_error(source: io::Error) -> HandshakeError {
    HandshakeError::Io { source }
}

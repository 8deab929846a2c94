//! WebSockets over HTTP/3 (RFC 9220): an extended CONNECT with `:protocol websocket` is the
//! same request as over HTTP/2 (RFC 8441), so it goes through the same preparation
//! ([`crate::router::http::upgrade`]): routed as the `GET` its handshake stands for, sent to
//! the endpoint as an HTTP/1.1 upgrade (or as an extended CONNECT to an `h2c` service), and
//! answered `200` once the endpoint switched.
//!
//! What differs is only where the client's side of the tunnel comes from. hyper hands over an
//! HTTP/2 stream as an `Upgraded`; here the request's task keeps its stream: the request is
//! given an empty body and a [`Handover`] in its extensions, and once the router answers with
//! a tunnel, the task sends the `200`, hands the stream over ([`offer`]'s sender) and runs the
//! tunnel itself. So the tunnel lives in the request's task, which the connection waits for
//! when it drains (GOAWAY, then the streams finish; cut at the drain deadline), and inside the
//! connection's `max_connections` slot.
//!
//! The copy ([`TunnelStream::copy`]) is DATA frames to bytes and back. The client's FIN ends
//! the endpoint's writing side (a half-close, as over TCP) and the endpoint's end of stream
//! finishes the QUIC stream; an error on either side resets the other
//! (`H3_INTERNAL_ERROR`), so a cut tunnel never looks like a clean close.

use bytes::{Buf, Bytes, BytesMut};
use h3::error::{Code, StreamError};
use h3::ext::Protocol;
use h3::server::RequestStream;
use http::Method;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// The sending half of a request stream.
type Send = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;
/// The receiving half.
type Recv = RequestStream<h3_quinn::RecvStream, Bytes>;

/// How much is read from the endpoint into one DATA frame, at most.
const CHUNK: usize = 16 * 1024;

/// The stream of an HTTP/3 extended CONNECT, once its `200` is sent.
pub struct TunnelStream {
    send: Send,
    recv: Recv,
}

/// Put in the extensions of an extended CONNECT for a WebSocket: where the router's tunnel
/// gets the client's stream from. (Shared only because extensions must be `Clone`: the first
/// to ask takes the stream.)
#[derive(Debug, Clone)]
pub struct Handover(Arc<Mutex<Option<oneshot::Receiver<TunnelStream>>>>);

/// The stream was not handed over: the request's task ended before the `200` was sent.
#[derive(Debug, thiserror::Error)]
#[error("the http/3 stream was not handed over")]
pub struct NotHandedOver;

impl Handover {
    /// Waits for the stream.
    pub async fn stream(self) -> Result<TunnelStream, NotHandedOver> {
        let taken = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        taken.ok_or(NotHandedOver)?.await.map_err(|_| NotHandedOver)
    }
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStream").finish_non_exhaustive()
    }
}

/// If `parts` is an extended CONNECT for a WebSocket: marks it as such for the router (the
/// `:protocol` as hyper gives it for HTTP/2, and a [`Handover`]) and gives the sender the
/// stream goes through. Any other request is left alone.
pub(super) fn offer(parts: &mut http::request::Parts) -> Option<oneshot::Sender<TunnelStream>> {
    let websocket = parts.method == Method::CONNECT
        && parts.extensions.get::<Protocol>() == Some(&Protocol::WEBSOCKET);
    if !websocket {
        return None;
    }
    let (tx, rx) = oneshot::channel();
    parts
        .extensions
        .insert(hyper::ext::Protocol::from_static("websocket"));
    parts
        .extensions
        .insert(Handover(Arc::new(Mutex::new(Some(rx)))));
    Some(tx)
}

/// Sends the `200` the router answered a tunnel with, hands the stream over and runs the
/// tunnel (which holds the other end of `offer`) to its end.
pub(super) async fn run(
    mut send: Send,
    recv: Recv,
    offer: oneshot::Sender<TunnelStream>,
    head: http::Response<()>,
    tunnel: crate::router::http::conn::Tunnel,
) -> Result<(), StreamError> {
    send.send_response(head).await?;
    // Dropped only if the tunnel is gone already, and then there is nothing to run.
    let _handed = offer.send(TunnelStream { send, recv });
    tunnel.await;
    Ok(())
}

impl TunnelStream {
    /// Copies both ways between the client's stream and `upstream` until both are done,
    /// after sending the client `early`; gives the bytes sent up and down.
    pub async fn copy<U>(self, early: Bytes, upstream: &mut U) -> io::Result<(u64, u64)>
    where
        U: AsyncRead + AsyncWrite + Unpin,
    {
        let TunnelStream { mut send, mut recv } = self;
        let (mut from_upstream, mut to_upstream) = tokio::io::split(upstream);
        let up = async {
            let copied = client_to_upstream(&mut recv, &mut to_upstream).await;
            if copied.is_err() {
                recv.stop_sending(Code::H3_INTERNAL_ERROR);
            }
            copied
        };
        let down = async {
            let copied = upstream_to_client(early, &mut from_upstream, &mut send).await;
            if copied.is_err() {
                send.stop_stream(Code::H3_INTERNAL_ERROR);
            }
            copied
        };
        tokio::try_join!(up, down)
    }
}

/// Client to endpoint: DATA frames written as they come; the client's FIN shuts the
/// endpoint's writing side.
async fn client_to_upstream<W: AsyncWrite + Unpin>(
    recv: &mut Recv,
    upstream: &mut W,
) -> io::Result<u64> {
    let mut sent = 0;
    while let Some(mut data) = recv.recv_data().await.map_err(stream_error)? {
        sent += data.remaining() as u64;
        upstream.write_all_buf(&mut data).await?;
    }
    upstream.shutdown().await?;
    Ok(sent)
}

/// Endpoint to client: what the endpoint sends, a DATA frame per read; its end of stream
/// finishes the QUIC stream.
async fn upstream_to_client<R: AsyncRead + Unpin>(
    early: Bytes,
    upstream: &mut R,
    send: &mut Send,
) -> io::Result<u64> {
    let mut sent = early.len() as u64;
    if !early.is_empty() {
        send.send_data(early).await.map_err(stream_error)?;
    }
    let mut buf = BytesMut::new();
    loop {
        buf.reserve(CHUNK);
        if upstream.read_buf(&mut buf).await? == 0 {
            break;
        }
        sent += buf.len() as u64;
        send.send_data(buf.split().freeze())
            .await
            .map_err(stream_error)?;
    }
    send.finish().await.map_err(stream_error)?;
    Ok(sent)
}

fn stream_error(error: StreamError) -> io::Error {
    io::Error::other(error)
}

//! The pool's side of requests that hyper serves (HTTP/2 clients, and HTTP/1.x requests the
//! fast path handed to hyper): an `http_body` request body written to a pooled connection
//! ([`EncodeBody`]), and the response body read from it as hyper frames ([`PoolBody`]).

use super::Lease;
use super::exchange::{RequestBody, SendFailure};
use crate::http1::framing::{self, Decoder, Event, Framing};
use crate::http1::head;
use crate::http1::io::poll_write_all;
use crate::upstream::http::{BoxError, UpstreamBody};
use bytes::{Buf, Bytes};
use http::{HeaderMap, Method};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::net::TcpStream;

/// A request head and an `http_body` body, written to an endpoint as HTTP/1.1: with
/// `Content-Length` when the body's size is known, else chunked.
pub struct EncodeBody {
    head: Vec<u8>,
    head_written: usize,
    body: UpstreamBody,
    framing: Framing,
    /// Encoded body bytes not yet written.
    out: Vec<u8>,
    out_written: usize,
    /// Data bytes taken from the body.
    taken: u64,
    finished: bool,
}

impl std::fmt::Debug for EncodeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodeBody")
            .field("framing", &self.framing)
            .field("taken", &self.taken)
            .finish_non_exhaustive()
    }
}

impl EncodeBody {
    /// `head` is the request line and fields without the framing field and the empty line
    /// that ends the head; both are added here, from what the body says of its size.
    pub fn new(mut head: Vec<u8>, method: &Method, body: UpstreamBody) -> Self {
        let framing = if body.is_end_stream() {
            // As hyper does: an empty body is declared only where a body is expected.
            if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
            Framing::Empty
        } else if let Some(n) = body.size_hint().exact() {
            crate::http1::io::write_length(&mut head, n);
            Framing::Length(n)
        } else {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n");
            Framing::Chunked
        };
        head.extend_from_slice(b"\r\n");
        EncodeBody {
            head,
            head_written: 0,
            body,
            framing,
            out: Vec::new(),
            out_written: 0,
            taken: 0,
            finished: framing == Framing::Empty,
        }
    }

    /// Takes the next frame of the body into `out`; `Ready(Ok(()))` when there was one or
    /// the body ended.
    /// The head as written, framing field included.
    #[cfg(test)]
    pub(super) fn head(&self) -> &[u8] {
        &self.head
    }

    fn poll_take(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendFailure>> {
        let chunked = self.framing == Framing::Chunked;
        match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    self.taken += data.len() as u64;
                    if let Framing::Length(n) = self.framing
                        && self.taken > n
                    {
                        return Poll::Ready(Err(failure("request body longer than its length")));
                    }
                    if chunked && !data.is_empty() {
                        framing::chunk_line(&mut self.out, data.len() as u64);
                        self.out.extend_from_slice(&data);
                        self.out.extend_from_slice(b"\r\n");
                    } else if !chunked {
                        self.out.extend_from_slice(&data);
                    }
                }
                Err(frame) => {
                    if let (true, Ok(trailers)) = (chunked, frame.into_trailers()) {
                        self.out.extend_from_slice(b"0\r\n");
                        crate::forward::trailers(
                            crate::forward::map_pairs(&trailers),
                            &mut self.out,
                        );
                        self.out.extend_from_slice(b"\r\n");
                        self.finished = true;
                    }
                }
            },
            Some(Err(e)) => return Poll::Ready(Err(SendFailure::Source(e))),
            None => {
                match self.framing {
                    Framing::Chunked => self.out.extend_from_slice(b"0\r\n\r\n"),
                    Framing::Length(n) if self.taken != n => {
                        return Poll::Ready(Err(failure("request body shorter than its length")));
                    }
                    _ => {}
                }
                self.finished = true;
            }
        }
        Poll::Ready(Ok(()))
    }
}

fn failure(message: &'static str) -> SendFailure {
    SendFailure::Source(message.into())
}

impl RequestBody for EncodeBody {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        endpoint: &mut TcpStream,
    ) -> Poll<Result<(), SendFailure>> {
        ready!(poll_write_all(
            cx,
            endpoint,
            &self.head,
            &mut self.head_written
        ))
        .map_err(SendFailure::Endpoint)?;
        loop {
            ready!(poll_write_all(
                cx,
                endpoint,
                &self.out,
                &mut self.out_written
            ))
            .map_err(SendFailure::Endpoint)?;
            self.out.clear();
            self.out_written = 0;
            if self.finished {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_take(cx))?;
        }
    }

    /// hyper answers the client's `Expect: 100-continue` itself when the body is first read.
    fn informational(&mut self, _: &head::Response<'_>) {}

    fn can_resend(&self) -> bool {
        self.framing == Framing::Empty
    }

    fn rewind(&mut self) {
        self.head_written = 0;
    }
}

/// The body of an endpoint's response, as hyper reads it.
#[derive(Debug)]
pub enum PoolBody {
    /// From a pooled HTTP/1.1 connection, which goes back to the pool at the body's end.
    H1(Box<H1Body>),
    /// From hyper-util's client (`h2c`, `https`).
    Hyper(Incoming),
}

/// A response body read off a pooled connection.
#[derive(Debug)]
pub struct H1Body {
    lease: Option<Lease>,
    decoder: Decoder,
    reusable: bool,
}

impl PoolBody {
    /// The body framed as `framing` that follows a response head on `lease`'s connection;
    /// the connection is given back afterwards when `reusable`.
    pub fn h1(lease: Lease, framing: Framing, reusable: bool) -> Self {
        PoolBody::H1(Box::new(H1Body {
            lease: Some(lease),
            decoder: Decoder::new(framing),
            reusable,
        }))
    }

    /// No body (a `101` whose connection became a tunnel).
    pub fn empty() -> Self {
        PoolBody::H1(Box::new(H1Body {
            lease: None,
            decoder: Decoder::new(Framing::Empty),
            reusable: false,
        }))
    }
}

impl H1Body {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            let Some(lease) = &mut self.lease else {
                return Poll::Ready(None);
            };
            let io = &mut lease.conn.io;
            match self.decoder.next(&io.buf) {
                Err(e) => {
                    self.lease = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
                Ok(Event::Data(n)) => {
                    let data = io.buf.split_to(n).freeze();
                    self.decoder.consume(n);
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(Event::Chunk { line, .. } | Event::LastChunk { line }) => io.buf.advance(line),
                Ok(Event::ChunkEnd) => io.buf.advance(2),
                Ok(Event::End { trailers }) => {
                    let mut map = HeaderMap::new();
                    framing::trailer_fields(&io.buf[..trailers], |name, value| {
                        crate::forward::Fields::field(&mut map, name.as_bytes(), value);
                    });
                    io.buf.advance(trailers);
                    self.release();
                    return Poll::Ready((!map.is_empty()).then(|| Ok(Frame::trailers(map))));
                }
                Ok(Event::NeedMore) => match ready!(io.poll_fill(cx)) {
                    Ok(0) => {
                        if let Err(e) = self.decoder.eof() {
                            self.lease = None;
                            return Poll::Ready(Some(Err(e.into())));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.lease = None;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                },
            }
        }
    }

    fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release(self.reusable);
        }
    }
}

impl Body for PoolBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            PoolBody::H1(body) => body.poll_frame(cx),
            PoolBody::Hyper(body) => Pin::new(body)
                .poll_frame(cx)
                .map_ok(crate::forward::trailer_frame)
                .map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            PoolBody::H1(body) => body.decoder.is_done(),
            PoolBody::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            PoolBody::H1(body) => match body.decoder.remaining() {
                Some(n) => SizeHint::with_exact(n),
                None => SizeHint::default(),
            },
            PoolBody::Hyper(body) => body.size_hint(),
        }
    }
}

/// A body hyper dropped once it saw its end gives its connection back.
impl Drop for H1Body {
    fn drop(&mut self) {
        if self.decoder.is_done() {
            self.release();
        }
    }
}

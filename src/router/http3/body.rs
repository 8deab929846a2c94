//! The body of an HTTP/3 request, as an `http_body::Body`: DATA frames as they arrive, then
//! the trailers if the client sent any. It is what lets the one request handler
//! ([`crate::router::http::proxy::handle`]) take HTTP/3 requests beside hyper's.
//!
//! What it says of its size decides how the request is framed upstream, as for HTTP/2: a body
//! the client has already ended is empty (no framing field, no chunked `0` chunk for a GET),
//! a declared `content-length` is the exact size (forwarded as `content-length`, and a body
//! that does not match it fails the request), anything else is sent chunked. HTTP/3 has no
//! END_STREAM flag on HEADERS: the client ends the stream with QUIC's FIN, which browsers send
//! in the same frame as a GET's HEADERS; so the stream is looked at once, without waiting,
//! before the request is forwarded. A FIN that comes later leaves the body chunked.

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use http::HeaderMap;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};

/// The receiving half of a request stream.
type Recv = RequestStream<h3_quinn::RecvStream, Bytes>;

/// An HTTP/3 request body.
pub struct RecvBody {
    /// The stream (in a `Mutex` only so that the body is `Sync`, as the upstream body type
    /// needs; it is reached through `get_mut`, never locked); `None` for [`RecvBody::empty`].
    stream: Mutex<Option<Recv>>,
    /// Where the body is: data, trailers, or done.
    state: State,
    /// A frame read ahead (by [`RecvBody::new`]), handed out first.
    ahead: Option<Result<Frame<Bytes>, RecvError>>,
    /// Bytes still to come by the request's `content-length`, if it had one.
    remaining: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Trailers,
    Done,
}

impl RecvBody {
    /// The body read from `stream`, whose head declared `length` (`content-length`), if any.
    /// What the client has already sent is looked at once, without waiting, so that a body it
    /// has already ended is known to be empty.
    pub fn new(stream: Recv, length: Option<u64>) -> Self {
        let mut body = RecvBody {
            stream: Mutex::new(Some(stream)),
            state: State::Data,
            ahead: None,
            remaining: length,
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Some(frame)) = body.poll_stream(&mut cx) {
            body.ahead = Some(frame);
        }
        body
    }

    /// A body with nothing in it, the stream kept by the caller (an extended CONNECT's: the
    /// stream is its tunnel, see `tunnel`).
    pub(super) fn empty() -> Self {
        RecvBody {
            stream: Mutex::new(None),
            state: State::Done,
            ahead: None,
            remaining: Some(0),
        }
    }
}

impl std::fmt::Debug for RecvBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBody")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("http/3 request body: {0}")]
pub struct RecvError(#[source] h3::error::StreamError);

impl RecvBody {
    /// The next frame from the stream.
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RecvError>>> {
        let this = self;
        // The field, not `stream()`: `state` is set while the stream is borrowed.
        let stream = this
            .stream
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(stream) = stream.as_mut() else {
            return Poll::Ready(None);
        };
        if this.state == State::Data {
            match ready!(stream.poll_recv_data(cx)) {
                Ok(Some(mut buf)) => {
                    let bytes = buf.copy_to_bytes(buf.remaining());
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                Ok(None) => this.state = State::Trailers,
                Err(error) => {
                    this.state = State::Done;
                    return Poll::Ready(Some(Err(RecvError(error))));
                }
            }
        }
        if this.state == State::Trailers {
            let polled: Result<Option<HeaderMap>, _> = ready!(stream.poll_recv_trailers(cx));
            this.state = State::Done;
            return Poll::Ready(match polled {
                Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
                Ok(None) => None,
                Err(error) => Some(Err(RecvError(error))),
            });
        }
        Poll::Ready(None)
    }
}

impl Body for RecvBody {
    type Data = Bytes;
    type Error = RecvError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RecvError>>> {
        let this = &mut *self;
        let frame = match this.ahead.take() {
            Some(frame) => Some(frame),
            None => ready!(this.poll_stream(cx)),
        };
        if let (Some(Ok(frame)), Some(remaining)) = (&frame, &mut this.remaining)
            && let Some(data) = frame.data_ref()
        {
            *remaining = remaining.saturating_sub(data.len() as u64);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done && self.ahead.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            return SizeHint::with_exact(0);
        }
        match self.remaining {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

//! The body of an HTTP/3 request, as an `http_body::Body`: DATA frames as they arrive, then
//! the trailers if the client sent any. It is what lets the one request handler
//! ([`crate::router::http::proxy::handle`]) take HTTP/3 requests beside hyper's.

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use http::HeaderMap;
use hyper::body::{Body, Frame};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};

/// The receiving half of a request stream.
type Recv = RequestStream<h3_quinn::RecvStream, Bytes>;

/// An HTTP/3 request body.
pub struct RecvBody {
    /// The stream (in a `Mutex` only so that the body is `Sync`, as the upstream body type
    /// needs; it is reached through `get_mut`, never locked).
    stream: Mutex<Recv>,
    /// Where the body is: data, trailers, or done.
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Trailers,
    Done,
}

impl RecvBody {
    /// The body read from `stream`.
    pub fn new(stream: Recv) -> Self {
        RecvBody {
            stream: Mutex::new(stream),
            state: State::Data,
        }
    }

    fn stream(&mut self) -> &mut Recv {
        self.stream
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

impl Body for RecvBody {
    type Data = Bytes;
    type Error = RecvError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RecvError>>> {
        let this = &mut *self;
        if this.state == State::Data {
            match ready!(this.stream().poll_recv_data(cx)) {
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
            let polled: Result<Option<HeaderMap>, _> = ready!(this.stream().poll_recv_trailers(cx));
            this.state = State::Done;
            return Poll::Ready(match polled {
                Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
                Ok(None) => None,
                Err(error) => Some(Err(RecvError(error))),
            });
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }
}

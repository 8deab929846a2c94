//! How a request body reaches its copy without the primary waiting: the bytes are copied as
//! they go to the primary endpoint, into a buffer bounded by the route's `max_body_bytes`,
//! and handed to the copy's task once the body is over. On the fast path the tap sits on
//! the endpoint's writer ([`Tee`]) and sees the request as written, head and framing
//! included; on hyper's path it sits on the body ([`TapBody`]) and sees its data.

use crate::ingress::{Outcome, UpstreamPolicy};
use crate::upstream::http::UpstreamBody;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tokio::io::AsyncWrite;
use tokio::sync::oneshot;

/// The copying end of a mirrored body.
#[derive(Debug)]
pub(in crate::router::http) struct Tap {
    /// What was copied so far.
    buf: Vec<u8>,
    /// The most it may hold.
    cap: usize,
    /// The copy's task; `None` once the copy was given up or handed over.
    tx: Option<oneshot::Sender<Vec<u8>>>,
    /// The route's policy, for the counters.
    policy: Arc<UpstreamPolicy>,
}

impl Tap {
    /// A tap holding at most `cap` bytes, handing them to `tx`.
    pub(super) fn new(
        cap: usize,
        tx: oneshot::Sender<Vec<u8>>,
        policy: Arc<UpstreamPolicy>,
    ) -> Tap {
        Tap {
            buf: Vec::new(),
            cap,
            tx: Some(tx),
            policy,
        }
    }

    /// Copies `bytes`; past the cap the copy is given up (and counted `dropped`).
    fn push(&mut self, bytes: &[u8]) {
        if self.tx.is_none() {
            return;
        }
        if self.buf.len() + bytes.len() > self.cap {
            self.tx = None;
            self.buf = Vec::new();
            self.policy.count(Outcome::MirrorDropped);
            return;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The body is over: the copy may go.
    pub(in crate::router::http) fn finish(mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(std::mem::take(&mut self.buf));
        }
    }
}

/// A tap dropped before its body was over: the primary failed, so does the copy.
impl Drop for Tap {
    fn drop(&mut self) {
        if self.tx.take().is_some() {
            self.policy.count(Outcome::MirrorFailed);
        }
    }
}

/// A writer that copies what it writes into a [`Tap`].
pub(in crate::router::http) struct Tee<'a, W> {
    /// Where the bytes go.
    pub inner: &'a mut W,
    /// Where they are copied.
    pub tap: &'a mut Tap,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Tee<'_, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = ready!(Pin::new(&mut *this.inner).poll_write(cx, buf))?;
        this.tap.push(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body whose data is copied into a [`Tap`] as it is read.
pub(in crate::router::http) struct TapBody {
    /// The request body.
    inner: UpstreamBody,
    /// The copy, until the body is over.
    tap: Option<Box<Tap>>,
}

impl TapBody {
    /// `inner`, copied into `tap`.
    pub(in crate::router::http) fn new(inner: UpstreamBody, tap: Box<Tap>) -> TapBody {
        TapBody {
            inner,
            tap: Some(tap),
        }
    }

    fn finish(&mut self) {
        if let Some(tap) = self.tap.take() {
            tap.finish();
        }
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = crate::upstream::http::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(tap)) = (f.data_ref(), self.tap.as_mut()) {
                    tap.push(data);
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            None => self.finish(),
            Some(Err(_)) => self.tap = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

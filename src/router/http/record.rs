//! What happens when a response is finished: the access-log line and the request metrics.
//!
//! A response is not done when its headers are sent: a download may stream for minutes. So
//! the response body is wrapped in a [`Tracked`] body that counts the bytes it passes and,
//! when hyper drops it (the body ended, or the client went away), records the request's
//! duration and status in its route's metrics and writes the access-log line, the way nginx
//! logs at the end of a request. The same wrapper keeps the endpoint counted as busy (for
//! `lc`, `wlc`, `twos` and `/debug/table`), and the request counted as in flight on its
//! connection (for the HTTP/2 idle timeout, [`super::h2_watch`]), until the body is over. The
//! empty body of an HTTP/2 WebSocket's `200` hands that count to its tunnel instead, which
//! keeps it while it lasts ([`super::upgrade::connect`]). The HTTP/1.1 fast path
//! relays bodies itself and calls [`Record::finish`] when it is done with a response.

use super::conn::Tunnel;
use super::h2_watch::InFlight;
use super::upgrade::connect::Pending;
use crate::config::AccessLog;
use crate::service_table::ActiveGuard;
use crate::telemetry::metrics::HttpMetrics;
use crate::upstream::http::BoxError;
use crate::upstream::pool::PoolBody;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, Version};
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame, SizeHint};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

/// Everything the access log and the metrics need about one request.
#[derive(Debug)]
pub struct Record {
    /// When the request arrived.
    pub started: Instant,
    /// The client (after PROXY protocol).
    pub client: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    /// Request method.
    pub method: Method,
    /// The HTTP version the client spoke (`version` in the access log: `HTTP/1.1`, `HTTP/2`,
    /// `HTTP/3`).
    pub version: Version,
    /// The authority the request was routed by.
    pub host: Option<String>,
    /// Request path (no query: it may hold secrets); empty when the access log is off.
    pub path: String,
    /// Response status.
    pub status: StatusCode,
    /// The service the route named.
    pub service: Option<Arc<str>>,
    /// The endpoint that answered.
    pub upstream: Option<SocketAddr>,
    /// `X-Request-Id` as forwarded.
    pub request_id: Option<HeaderValue>,
    /// Request body bytes read from the client, counted as they stream up (only when the
    /// access log is on).
    pub bytes_in: Option<Arc<AtomicU64>>,
    /// Where the duration and status are counted.
    pub metrics: Arc<HttpMetrics>,
    /// Whether and how to log.
    pub format: AccessLog,
    /// The request counted in flight for its client's limit, until the response is over.
    pub held: Option<crate::policy::limit::Held>,
}

impl Record {
    /// Counts the request and writes its access-log line.
    pub(super) fn finish(&self, bytes_out: u64) {
        let elapsed = self.started.elapsed();
        self.metrics.record(self.status, elapsed);
        if self.format == AccessLog::Off {
            return;
        }
        let upstream = self
            .upstream
            .map_or_else(|| "-".to_owned(), |a| a.to_string());
        tracing::info!(target: "access", client = %self.client, method = %self.method,
            host = self.host.as_deref().unwrap_or("-"), path = %self.path,
            status = self.status.as_u16(), bytes_in = self.bytes_in.as_ref().map_or(0, |b| b.load(Ordering::Relaxed)),
            version = version_name(self.version), bytes_out, duration_ms = elapsed.as_secs_f64() * 1000.0,
            service = self.service.as_deref().unwrap_or("-"), upstream = %upstream,
            request_id = self.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            listener = %self.listener, "request");
    }
}

/// How the access log names an HTTP version.
fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Body of a response to the client: an endpoint's (streamed) or one of our own, tracked
/// until it is finished.
#[derive(Debug)]
pub struct Tracked {
    body: Either<PoolBody, Full<Bytes>>,
    busy: Option<ActiveGuard>,
    record: Option<Box<Record>>,
    /// The request, counted on its connection while the body lives.
    in_flight: Option<InFlight>,
    /// The HTTP/2 tunnel this (empty) body answers, until [`Tracked::hold`] starts it.
    tunnel: Option<Pending>,
    bytes_out: u64,
}

/// The response body type of the HTTP router.
pub type ResponseBody = Tracked;

impl Tracked {
    /// An endpoint's body, keeping the endpoint counted as busy while it streams.
    pub fn upstream(body: PoolBody, busy: ActiveGuard) -> Self {
        Self::new(Either::Left(body), Some(busy))
    }

    /// A body of our own.
    pub fn local(body: Bytes) -> Self {
        Self::new(Either::Right(Full::new(body)), None)
    }

    /// The empty body of an HTTP/2 tunnel's `200`, carrying the tunnel to [`Tracked::hold`].
    pub(super) fn tunnel(tunnel: Tunnel) -> Self {
        let mut body = Self::local(Bytes::new());
        body.tunnel = Some(Pending::new(tunnel));
        body
    }

    fn new(body: Either<PoolBody, Full<Bytes>>, busy: Option<ActiveGuard>) -> Self {
        Tracked {
            body,
            busy,
            record: None,
            in_flight: None,
            tunnel: None,
            bytes_out: 0,
        }
    }

    /// Empties a body of our own (the answer to a `HEAD`), returning the length it had for
    /// the `Content-Length` a `GET` would get; an endpoint's body is left as it is (it has
    /// none for a `HEAD`, and holds the connection to give back).
    pub fn drop_local(&mut self) -> Option<u64> {
        let Either::Right(full) = &self.body else {
            return None;
        };
        let len = full.size_hint().exact();
        self.body = Either::Right(Full::new(Bytes::new()));
        len
    }

    /// Attaches the record written when this body is done.
    pub fn finish_with(&mut self, record: Record) {
        self.record = Some(Box::new(record));
    }

    /// The tunnel this (empty) body answers, for the HTTP/3 request's task to run.
    pub(crate) fn take_tunnel(&mut self) -> Option<Tunnel> {
        self.tunnel.take().map(Pending::into_tunnel)
    }

    /// Keeps the request counted as in flight on its connection until this body is done;
    /// for an HTTP/2 tunnel's answer, starts the tunnel, which keeps it until it ends.
    pub(super) fn hold(&mut self, in_flight: InFlight) {
        match self.tunnel.take() {
            Some(tunnel) => tunnel.start(in_flight),
            None => self.in_flight = Some(in_flight),
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = match &mut self.body {
            Either::Left(body) => Pin::new(body).poll_frame(cx),
            Either::Right(body) => Pin::new(body)
                .poll_frame(cx)
                .map_err(|never| match never {}),
        };
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.bytes_out += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        drop(self.busy.take());
        if let Some(record) = self.record.take() {
            record.finish(self.bytes_out);
        }
    }
}

/// A request body that counts the bytes it passes into a shared counter, if given one.
#[derive(Debug)]
pub struct CountIn<B> {
    body: B,
    count: Option<Arc<AtomicU64>>,
}

impl<B> CountIn<B> {
    /// Wraps `body`, adding what it yields to `count`.
    pub fn new(body: B, count: Option<Arc<AtomicU64>>) -> Self {
        CountIn { body, count }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for CountIn<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(count)) = (&polled, &self.count)
            && let Some(data) = frame.data_ref()
        {
            count.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        // A request's trailers go on filtered, whichever client sends them on.
        polled.map_ok(crate::forward::trailer_frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

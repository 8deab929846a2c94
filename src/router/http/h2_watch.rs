//! Deadlines for HTTP/2 connections, which hyper does not give: the client's preface, each
//! frame header and header block, and an idle connection.
//!
//! hyper's HTTP/1 server has a header-read deadline; its HTTP/2 server has none, and h2 shows
//! no stream before its header block is whole (it caps a block at 5 CONTINUATION frames with
//! our header limits, but not the time one frame takes). So a client could open a connection
//! and send nothing, trickle a HEADERS frame byte by byte, or keep a connection with no stream
//! open as long as it liked (10,000 idle ones held 338 MiB, none closed). Three pieces close
//! them:
//!
//! - [`Watched`] wraps the stream hyper reads (plaintext, after TLS) and feeds every byte it
//!   reads to a [`tracker::Tracker`], which parses frame headers only. When a read leaves the
//!   client owing the rest of its preface and first SETTINGS frame, of a frame header, or of a
//!   header block (a stall), the wrapper publishes that stall's number in an atomic.
//! - [`InFlight`] counts the connection's requests: the service takes one per request and the
//!   response body drops it when it is over ([`super::record::Tracked`]).
//! - [`Watchdog`], polled beside the connection in `listener::serve_with`, asks for a shutdown
//!   when a stall outlives `header_read_timeout` (the connection gets one turn to write its
//!   GOAWAY, then is closed) or when no request was in flight for `h2_idle_timeout` (GOAWAY,
//!   then closed once idle for `header_read_timeout`, if the client has not closed it first).
//!
//! The three live in different places (the stream inside hyper's connection, the guards in
//! stream tasks, the watchdog in the connection's task), hence the shared state in atomics.
//!
//! A stream that does not start with the HTTP/2 preface (HTTP/1.x handed over by the fast
//! path) turns the tracker off: the wrapper passes reads through and the watchdog sleeps
//! forever; hyper's HTTP/1 deadlines apply.
//!
//! Cost: two allocations per connection (the shared state, the timer); a read costs the frame
//! headers it holds, and an atomic store only when the stall changes; a request costs a
//! reference count taken and dropped, an increment and a decrement, and a clock read when it
//! was the only one in flight. The watchdog is polled on every wakeup of the connection; while
//! nothing is due a poll is two atomic loads and a waker comparison: its timer is re-armed only
//! when it fires (about once per idle timeout on a busy connection) or a new stall begins.
//!
//! For h2c the tracker starts when the fast path hands the connection over (at "PRI * HTTP/2",
//! within `header_read_timeout` there), so the preface has up to twice that in all.

mod tracker;

use super::record::ResponseBody;
use http::Response;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};
use tracker::Tracker;

/// [`Shared::stall`] when the stream is not HTTP/2.
const OFF: u64 = u64::MAX;

/// What the stream wrapper, the requests and the watchdog of one connection share.
#[derive(Debug)]
struct Shared {
    /// The stall the client is in (0: none; [`OFF`]: not HTTP/2), as of the last read.
    stall: AtomicU64,
    /// Requests whose response is not over.
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds after `born`.
    idle_since: AtomicU64,
    /// When the connection was handed to hyper.
    born: Instant,
}

impl Shared {
    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.born).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A connection's watch: makes its [`Watched`] stream, its [`InFlight`] guards and its
/// [`Watchdog`].
#[derive(Debug, Clone)]
pub(super) struct Watch(Arc<Shared>);

impl Watch {
    /// A watch for a connection hyper is about to serve.
    pub(super) fn new() -> Self {
        Watch(Arc::new(Shared {
            stall: AtomicU64::new(Tracker::new().stall()),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            born: Instant::now(),
        }))
    }

    /// `io`, with its reads watched.
    pub(super) fn stream<S>(&self, io: S) -> Watched<S> {
        Watched {
            io,
            tracker: Tracker::new(),
            published: Tracker::new().stall(),
            shared: Arc::clone(&self.0),
        }
    }

    /// Counts a request until the guard is dropped.
    fn request(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(&self.0))
    }

    /// `response`, the handler's future for one request, with the request counted as in
    /// flight from now until its response body is over (or the future is dropped unfinished).
    pub(super) fn count<F>(&self, response: F) -> impl Future<Output = F::Output> + Send + use<F>
    where
        F: Future<Output = Result<Response<ResponseBody>, Infallible>> + Send,
    {
        let in_flight = self.request();
        async move {
            let Ok(mut response) = response.await;
            response.body_mut().hold(in_flight);
            Ok(response)
        }
    }

    /// The connection's watchdog.
    pub(super) fn watchdog(&self, header_read_timeout: Duration, idle: Duration) -> Watchdog {
        let due = self.0.born + header_read_timeout;
        Watchdog {
            shared: Arc::clone(&self.0),
            sleep: Box::pin(tokio::time::sleep_until(due)),
            registered: None,
            header_read_timeout,
            idle,
            stall: (Tracker::new().stall(), due),
            goaway_turn: None,
        }
    }
}

/// One request of a connection, counted while it lives.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let shared = &self.0;
        let mut n = shared.in_flight.load(Ordering::Relaxed);
        loop {
            if n == 1 {
                // The last one: say when the connection went idle before it shows as idle.
                let now = shared.nanos(Instant::now());
                shared.idle_since.fetch_max(now, Ordering::Relaxed);
            }
            match shared.in_flight.compare_exchange_weak(
                n,
                n.saturating_sub(1),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(current) => n = current,
            }
        }
    }
}

/// A stream whose reads are fed to the connection's tracker.
#[derive(Debug)]
pub(super) struct Watched<S> {
    io: S,
    tracker: Tracker,
    /// The stall last stored in `shared`.
    published: u64,
    shared: Arc<Shared>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.tracker.is_off() {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.tracker.feed(&buf.filled()[before..]);
            let stall = if this.tracker.is_off() {
                OFF
            } else {
                this.tracker.stall()
            };
            if stall != this.published {
                this.published = stall;
                this.shared.stall.store(stall, Ordering::Relaxed);
            }
        }
        polled
    }
}

super::prefixed::write_through!(Watched);

/// Why the watchdog wants a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// The preface, a frame header or a header block was not whole within
    /// `header_read_timeout`.
    Stalled,
    /// No request in flight for the idle timeout.
    Idle,
}

impl Expired {
    /// For the log.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Expired::Stalled => "preface or header block not complete within header_read_timeout",
            Expired::Idle => "no request in flight within h2_idle_timeout",
        }
    }
}

/// Watches a connection's stall and its requests in flight; see the module doc.
#[derive(Debug)]
pub(super) struct Watchdog {
    shared: Arc<Shared>,
    /// Fires at the next time something may be due (not necessarily when it is: it is moved
    /// later only when it fires, so a busy connection does not re-arm it per request).
    sleep: Pin<Box<Sleep>>,
    /// The waker `sleep` was last polled with.
    registered: Option<Waker>,
    header_read_timeout: Duration,
    /// How long a connection may have no request in flight.
    idle: Duration,
    /// The last stall seen (number, deadline).
    stall: (u64, Instant),
    /// Closing for a stall: whether the connection has had its turn to write the GOAWAY.
    goaway_turn: Option<bool>,
}

impl Watchdog {
    /// Resolves when the connection should be shut down.
    pub(super) async fn expired(&mut self) -> Expired {
        std::future::poll_fn(|cx| self.poll_expired(cx)).await
    }

    /// The connection has been told to shut down gracefully (GOAWAY) for `why` (`None`: the
    /// listener is stopping). From now on it is closed once it has had no request in flight
    /// for `header_read_timeout` (time for the client to answer the GOAWAY's PING), or when a
    /// stall passes its deadline; after a stall, once the connection has had one more turn to
    /// write the GOAWAY.
    pub(super) fn after_goaway(&mut self, why: Option<Expired>) {
        let now = Instant::now();
        self.idle = self.header_read_timeout;
        self.shared
            .idle_since
            .fetch_max(self.shared.nanos(now), Ordering::Relaxed);
        if why == Some(Expired::Stalled) {
            self.goaway_turn = Some(false);
        }
        let stalled = self.shared.stall.load(Ordering::Relaxed) == self.stall.0;
        let next = now + self.idle;
        self.arm(if stalled {
            next.min(self.stall.1)
        } else {
            next
        });
    }

    fn arm(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.registered = None;
    }

    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<Expired> {
        match self.goaway_turn {
            Some(false) => {
                self.goaway_turn = Some(true);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Some(true) => return Poll::Ready(Expired::Stalled),
            None => {}
        }
        let stall = self.shared.stall.load(Ordering::Relaxed);
        if stall == OFF {
            return Poll::Pending;
        }
        if stall != 0 && stall != self.stall.0 {
            let due = Instant::now() + self.header_read_timeout;
            self.stall = (stall, due);
            if due < self.sleep.deadline() {
                self.arm(due);
            }
        }
        loop {
            if let Some(waker) = &self.registered
                && waker.will_wake(cx.waker())
                && !self.sleep.is_elapsed()
            {
                return Poll::Pending;
            }
            // Outside the task's budget: a poll refused for budget would not register the
            // timer, and `registered` would then wait for a wakeup that never comes.
            let polled = Pin::new(&mut tokio::task::unconstrained(self.sleep.as_mut())).poll(cx);
            if polled.is_pending() {
                self.registered = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let now = Instant::now();
            if stall != 0 && now >= self.stall.1 {
                return Poll::Ready(Expired::Stalled);
            }
            let next = if self.shared.in_flight.load(Ordering::Acquire) == 0 {
                let since = self.shared.idle_since.load(Ordering::Relaxed);
                let due = self.shared.born + Duration::from_nanos(since) + self.idle;
                if now >= due {
                    return Poll::Ready(Expired::Idle);
                }
                due
            } else {
                // Look again then: idle time counts from the last request's end.
                now + self.idle
            };
            self.arm(if stall == 0 {
                next
            } else {
                next.min(self.stall.1)
            });
        }
    }
}

#[cfg(test)]
mod tests;

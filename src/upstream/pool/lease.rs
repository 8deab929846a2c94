//! A pooled HTTP/1.1 connection driven by the request that uses it, and the response body
//! that gives it back.
//!
//! hyper's connection-level client splits a connection in two: a `SendRequest` handle and a
//! `Connection` future that does the IO, commonly spawned as a task of its own. Then every
//! request crosses tasks twice (request in, response out), each body chunk once more, and
//! tokio schedules the connection's task for each. Here nothing is spawned, as in nginx and
//! HAProxy, where the upstream connection is handled by the same event loop turn as the
//! request: the request's future polls the connection while it waits for the response head
//! ([`Conn::exchange`]), and the response body polls it while it streams ([`PoolBody`]). An
//! idle connection in the pool is polled by no one; the request that checks it out polls it
//! first thing, and that is when a close by the endpoint is noticed (hyper then hands the
//! unsent request back). The reaper also polls idle connections, so closed ones go away.
//!
//! The connection is polled with the task's waker; the response future and the body that it
//! feeds are then polled with a no-op waker. They can only move when the connection does,
//! which is already registered to wake the task; registering the task with them as well
//! would make the connection wake its own task for progress the task has just seen. hyper's
//! body channel also wakes the connection each time the body takes a chunk; while the body is
//! polled, the connection's wakes are therefore held back ([`Gate`]), and one that came from
//! elsewhere meanwhile (the endpoint's socket, on another worker) is acted on right after.

use super::{Idle, Inner};
use crate::upstream::http::UpstreamBody;
use bytes::Bytes;
use futures::task::AtomicWaker;
use http::{Request, Response};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::TrySendError;
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use tokio::net::TcpStream;

/// The IO half of a connection to an endpoint (hyper's connection future).
pub(super) type Io = Connection<TokioIo<TcpStream>, UpstreamBody>;

/// One HTTP/1.1 connection to an endpoint: the handle requests are sent with, and the
/// connection's IO state, polled by whoever is using it.
pub(super) struct Conn {
    sender: SendRequest<UpstreamBody>,
    /// `None` once the connection has ended (dropping it fails or hands back what was queued).
    io: Option<Io>,
    /// Passes the connection's wakes on to the task driving it.
    gate: Arc<Gate>,
    /// `gate` as the waker the connection is polled with.
    waker: Waker,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("open", &self.io.is_some())
            .finish()
    }
}

impl Conn {
    /// A connection just handshaken; boxed, so that lending it moves a pointer.
    pub(super) fn new(sender: SendRequest<UpstreamBody>, io: Io) -> Box<Self> {
        let gate = Arc::new(Gate {
            task: AtomicWaker::new(),
            state: AtomicU8::new(Gate::OPEN),
        });
        Box::new(Conn {
            sender,
            io: Some(io),
            waker: Waker::from(Arc::clone(&gate)),
            gate,
        })
    }

    /// Does the connection's pending IO, to wake the task of `cx` when there is more; whether
    /// it is still open.
    pub(super) fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if self.io.is_none() {
            return false;
        }
        self.gate.task.register(cx.waker());
        poll_io(&mut self.io, &mut Context::from_waker(&self.waker))
    }

    /// Drives the connection, then polls `fed` (the response body it feeds) with a no-op
    /// waker and the connection's wakes held back.
    fn drive_and_poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut fed: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        if !self.drive(cx) {
            return fed(cx);
        }
        self.gate.state.store(Gate::HELD, Ordering::SeqCst);
        let polled = fed(&mut Context::from_waker(Waker::noop()));
        let missed = self.gate.state.swap(Gate::OPEN, Ordering::SeqCst) == Gate::MISSED;
        if polled.is_ready() || !missed {
            // Ready: the consumer polls again for more, and that drives the connection.
            return polled;
        }
        // Nothing to read, and a wake came in meanwhile that was not the body's own.
        if !self.drive(cx) {
            return fed(cx);
        }
        fed(&mut Context::from_waker(Waker::noop()))
    }

    /// Polls an idle connection once without waking anyone later (the reaper's check);
    /// whether it is still open.
    pub(super) fn check(&mut self) -> bool {
        poll_io(&mut self.io, &mut Context::from_waker(Waker::noop()))
    }

    /// Whether a request can be sent now: open, and done with the previous exchange.
    pub(super) fn is_ready(&self) -> bool {
        self.io.is_some() && self.sender.is_ready()
    }

    /// Sends `request` and drives the connection until the response head has arrived. A
    /// request that never went out (the endpoint had closed the connection) comes back in
    /// the error.
    pub(super) fn exchange(
        &mut self,
        request: Request<UpstreamBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>> + '_
    {
        let response = self.sender.try_send_request(request);
        async move {
            let mut response = std::pin::pin!(response);
            std::future::poll_fn(|cx| {
                if self.drive(cx) {
                    response
                        .as_mut()
                        .poll(&mut Context::from_waker(Waker::noop()))
                } else {
                    response.as_mut().poll(cx)
                }
            })
            .await
        }
    }
}

/// Polls a connection's IO with `cx`; whether it is still open (`io` is emptied when not).
fn poll_io(io: &mut Option<Io>, cx: &mut Context<'_>) -> bool {
    let Some(conn) = io else {
        return false;
    };
    match Pin::new(conn).poll(cx) {
        Poll::Pending => true,
        Poll::Ready(result) => {
            if let Err(error) = result {
                tracing::debug!(%error, "upstream connection ended");
            }
            *io = None;
            false
        }
    }
}

/// The body of an endpoint's response. On a pooled connection, polling it drives the
/// connection, and the connection goes back to its pool once the body has ended; a body
/// dropped before its end closes the connection.
#[derive(Debug)]
pub struct PoolBody {
    body: Incoming,
    lease: Option<Lease>,
}

/// A connection lent to one response.
#[derive(Debug)]
struct Lease {
    conn: Box<Conn>,
    address: SocketAddr,
    pool: Weak<Inner>,
}

impl PoolBody {
    /// A body that nothing needs to be done for (hyper-util's client, an upgrade's own
    /// connection).
    pub fn unpooled(body: Incoming) -> Self {
        PoolBody { body, lease: None }
    }

    pub(super) fn lent(
        body: Incoming,
        conn: Box<Conn>,
        address: SocketAddr,
        pool: Weak<Inner>,
    ) -> Self {
        let lease = Lease {
            conn,
            address,
            pool,
        };
        PoolBody {
            body,
            lease: Some(lease),
        }
    }

    #[cfg(test)]
    pub(super) fn is_lent(&self) -> bool {
        self.lease.is_some()
    }
}

impl Body for PoolBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let body = &mut this.body;
        let polled = match &mut this.lease {
            Some(lease) => lease
                .conn
                .drive_and_poll(cx, |cx| Pin::new(&mut *body).poll_frame(cx)),
            None => Pin::new(body).poll_frame(cx),
        };
        if let Poll::Ready(None) = polled
            && let Some(lease) = this.lease.take()
        {
            lease.release();
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

impl Drop for PoolBody {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && self.body.is_end_stream()
        {
            lease.release();
        }
    }
}

impl Lease {
    /// Returns the connection to its pool, if the pool still exists, the connection is ready
    /// for another request (not, say, still sending a request body the endpoint answered
    /// early) and the pool has room (else its oldest idle connection is closed).
    fn release(self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        // While idle, what it waits for (the next request, the endpoint closing) must not wake
        // the task that used it last.
        drop(self.conn.gate.task.take());
        if !self.conn.is_ready() {
            return;
        }
        let mut idle = pool.idle.entry(self.address).or_default();
        if idle.len() >= pool.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle {
            conn: self.conn,
            since: Instant::now(),
        });
        drop(idle);
        super::start_reaper(&pool);
    }
}

/// The waker a connection is polled with: passes its wakes on to the task that drove it last,
/// except while that task polls the response body (when hyper's body channel wakes the
/// connection for each chunk taken, which the task needs no telling about). A wake held back
/// is remembered, for [`Conn::drive_and_poll`] to tell whether one came from elsewhere.
#[derive(Debug)]
struct Gate {
    task: AtomicWaker,
    state: AtomicU8,
}

impl Gate {
    const OPEN: u8 = 0;
    const HELD: u8 = 1;
    const MISSED: u8 = 2;
}

impl Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let held = self.state.compare_exchange(
            Gate::HELD,
            Gate::MISSED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        if held == Err(Gate::OPEN) {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Gate;
    use crate::wake_count::WakeCount;
    use futures::task::AtomicWaker;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::task::Waker;

    #[test]
    fn the_gate_passes_wakes_on_and_remembers_those_it_held_back() {
        let (count, task) = WakeCount::waker();
        let gate = Arc::new(Gate {
            task: AtomicWaker::new(),
            state: AtomicU8::new(Gate::OPEN),
        });
        let waker = Waker::from(Arc::clone(&gate));
        gate.task.register(&task);
        waker.wake_by_ref();
        assert_eq!(count.get(), 1);

        gate.task.register(&task);
        gate.state.store(Gate::HELD, Ordering::SeqCst);
        waker.wake_by_ref();
        waker.wake_by_ref();
        assert_eq!(count.get(), 1, "held back");
        assert_eq!(gate.state.swap(Gate::OPEN, Ordering::SeqCst), Gate::MISSED);
        waker.wake_by_ref();
        assert_eq!(count.get(), 2);
    }
}

//! Idle plain HTTP/1.1 connections held without a task: one epoll set per listener socket.
//!
//! An edge router holds many connections that wait, often for minutes, for a next request
//! that may never come. A tokio task per connection costs each of them its future, its timer
//! and tokio's I/O registration (about 1.8 KiB in all) for doing nothing. So a plain
//! HTTP/1.1 connection that has waited about half a second with nothing read (`h1::serve`) leaves
//! its task: its socket goes into this set's own epoll instance, and what it needs to go on
//! (its addresses, its header-read deadline, its listener settings and its `max_connections`
//! slot, about 150 bytes) into a map. One task per set waits on the set's epoll descriptor
//! (itself registered with tokio) and its earliest deadline. When a parked socket becomes
//! readable (a request, or the client closing) the socket leaves the set and gets a task
//! again, on the same worker; when its deadline passes, or the listener stops, it is closed,
//! as an idle connection in a task would be. This is how nginx holds an idle keep-alive
//! connection: a small struct and an epoll registration.
//!
//! A connection pays four `epoll_ctl` calls and a task spawn per idle spell of half a second or
//! more; a busy one never parks. TLS connections are not parked (their TLS state must stay).

use super::slots::Slot;
use crate::config::ListenerConfig;
use crate::router::http::conn::Peers;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A connection waiting, without a task, for its next request.
pub(super) struct Parked {
    /// Its socket (non-blocking, registered with the set's epoll instance).
    pub stream: std::net::TcpStream,
    /// The client (after PROXY protocol, if any) and the address it connected to.
    pub peers: Peers,
    /// When its next request's head must be complete (the header-read deadline).
    pub until: Instant,
    /// The listener's settings it was accepted with.
    pub config: Arc<ListenerConfig>,
    /// Its place in the listener's `max_connections` count and the connections gauge.
    pub slot: Slot,
}

/// One worker's parked connections of one listener socket.
pub(super) struct IdleSet {
    epoll: AsyncFd<EpollFd>,
    inner: Mutex<Inner>,
    /// Wakes the set's task for a deadline earlier than the one it waits for.
    sooner: Notify,
    /// How many are parked (`switchyard_http_connections_idle`).
    gauge: metrics::Gauge,
}

#[derive(Default)]
struct Inner {
    /// The id the next parked connection gets (its epoll token; never reused).
    next: u64,
    parked: HashMap<u64, Parked, foldhash::fast::RandomState>,
    /// Deadlines, earliest first; an id no longer parked is skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The listener stopped: nothing parks any more.
    closed: bool,
}

/// An epoll instance as tokio's `AsyncFd` wants it.
struct EpollFd(Epoll);

impl AsRawFd for EpollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.0.as_raw_fd()
    }
}

/// Events taken from the set's epoll instance per `epoll_wait`.
const BATCH: usize = 64;

impl IdleSet {
    /// A set with an epoll instance of its own, registered with the current runtime.
    #[allow(
        unsafe_code,
        reason = "tokio's AsyncFd registration asks its caller to vouch for the descriptor"
    )]
    pub(super) fn new(gauge: metrics::Gauge) -> std::io::Result<Self> {
        let epoll = EpollFd(Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?);
        // SAFETY: `EpollFd` owns its descriptor (an `OwnedFd`, never replaced), so it stays
        // open and the same for as long as the `AsyncFd` holds it.
        let epoll = unsafe { AsyncFd::register_with_interest(epoll, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(IdleSet {
            epoll,
            inner: Mutex::default(),
            sooner: Notify::new(),
            gauge,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `parked` until it is readable (then [`run`](Self::run) hands it back), its
    /// deadline passes or the listener stops (then it is closed). If it cannot be watched, it
    /// is closed now: a connection that could never wake must not hold its slot.
    pub(super) fn park(&self, parked: Parked) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        let id = inner.next;
        let watched = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
        if let Err(error) = self
            .epoll
            .get_ref()
            .0
            .add(&parked.stream, EpollEvent::new(watched, id))
        {
            return tracing::debug!(client = %parked.peers.client, %error, "idle connection not parked; closed");
        }
        inner.next += 1;
        let earliest = inner
            .deadlines
            .peek()
            .is_none_or(|Reverse((at, _))| parked.until < *at);
        inner.deadlines.push(Reverse((parked.until, id)));
        inner.parked.insert(id, parked);
        self.gauge.increment(1.0);
        if inner.deadlines.len() > 2 * inner.parked.len() + 64 {
            let Inner {
                parked, deadlines, ..
            } = &mut *inner;
            deadlines.retain(|Reverse((_, id))| parked.contains_key(id));
        }
        drop(inner);
        if earliest {
            self.sooner.notify_one();
        }
    }

    /// How many connections are parked.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().parked.len()
    }

    /// Serves the set until `stop`: hands each connection that becomes readable to `resume`
    /// (which gives it a task), closes those whose deadline passed, and at `stop` closes all
    /// that are left.
    pub(super) async fn run(&self, stop: &CancellationToken, mut resume: impl FnMut(Parked)) {
        loop {
            let next = self.earliest();
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                ready = self.epoll.readable() => match ready {
                    Ok(mut guard) => {
                        self.take_ready(&mut resume);
                        guard.clear_ready();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "idle connections' epoll failed; closing them");
                        break;
                    }
                },
                () = wait => self.expire(Instant::now()),
                () = self.sooner.notified() => {}
            }
        }
        let left = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.deadlines = BinaryHeap::new();
            std::mem::take(&mut inner.parked)
        };
        self.gauge.decrement(left.len() as f64);
        drop(left);
    }

    /// The earliest deadline of a parked connection; gives back what a larger crowd of
    /// parked connections left allocated.
    fn earliest(&self) -> Option<Instant> {
        let mut inner = self.lock();
        let Inner {
            parked, deadlines, ..
        } = &mut *inner;
        while let Some(Reverse((_, id))) = deadlines.peek() {
            if parked.contains_key(id) {
                break;
            }
            deadlines.pop();
        }
        if parked.capacity() > 4 * parked.len() + 64 {
            parked.shrink_to_fit();
        }
        if deadlines.capacity() > 4 * deadlines.len() + 64 {
            deadlines.shrink_to_fit();
        }
        deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Takes every parked connection the epoll instance reports ready out of the set, and
    /// hands it to `resume`.
    fn take_ready(&self, resume: &mut impl FnMut(Parked)) {
        let mut events = [EpollEvent::empty(); BATCH];
        loop {
            let n = match self.epoll.get_ref().0.wait(&mut events, 0u8) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(error) => {
                    tracing::warn!(%error, "epoll_wait on idle connections failed");
                    return;
                }
            };
            for event in &events[..n] {
                if let Some(parked) = self.unpark(event.data()) {
                    resume(parked);
                }
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// Takes the connection `id` out of the set.
    fn unpark(&self, id: u64) -> Option<Parked> {
        let parked = self.lock().parked.remove(&id)?;
        self.gauge.decrement(1.0);
        // A failure leaves it watched until it closes: its token is never reused, so a
        // later event for it finds nothing.
        if let Err(error) = self.epoll.get_ref().0.delete(&parked.stream) {
            tracing::debug!(%error, "epoll_ctl(DEL) of a resumed idle connection failed");
        }
        Some(parked)
    }

    /// Closes the connections whose deadline is `now` or earlier.
    fn expire(&self, now: Instant) {
        let mut closed = Vec::new();
        let mut inner = self.lock();
        let Inner {
            parked, deadlines, ..
        } = &mut *inner;
        while let Some(&Reverse((at, id))) = deadlines.peek() {
            if at > now {
                break;
            }
            deadlines.pop();
            closed.extend(parked.remove(&id));
        }
        drop(inner);
        self.gauge.decrement(closed.len() as f64);
        drop(closed);
    }
}

#[cfg(test)]
mod tests;

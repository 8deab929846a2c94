//! A listener's open connections, counted against its `max_connections` across the accept
//! loops of every worker (one socket per worker, `crate::app::workers`).
//!
//! The limit is one atomic count for the whole listener. A loop parks before `accept` while
//! the count is at the limit (clients wait in the kernel backlog, as with HAProxy's
//! `maxconn`); since loops on other workers may take the last slot between that check and the
//! accept, the slot is taken with one compare-and-swap after it ([`admit`]) and, at the limit,
//! the accepted connection waits there for a slot. A closing connection wakes every parked
//! loop, not one: a loop holding a connection must not lose the wake-up to one that has none.
//! A listener's QUIC connections (HTTP/3) count here too ([`try_admit`]), so
//! `max_connections` is one limit for the listener, as nginx's and HAProxy's are.

use crate::router::Lifecycle;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Open connections of a listener (shared by its accept loops on every worker), and a
/// wake-up for the loops parked at its limit.
#[derive(Debug, Default)]
pub struct Open {
    /// Connections holding a slot.
    pub(super) count: AtomicUsize,
    /// Notified (all waiters) when a slot frees.
    pub(super) freed: tokio::sync::Notify,
}

/// A connection's place among the listener's open ones (and in the gauge), given back when
/// the connection's task ends, however it ends: a panic in it (a bug in a parser, say) must
/// not leak a `max_connections` slot for good.
pub(crate) struct Slot {
    open: Arc<Open>,
    gauge: metrics::Gauge,
}

impl Slot {
    pub(super) fn take(open: &Arc<Open>, gauge: metrics::Gauge) -> Self {
        open.count.fetch_add(1, Ordering::AcqRel);
        gauge.increment(1.0);
        Slot {
            open: Arc::clone(open),
            gauge,
        }
    }

    /// Takes a slot if fewer than `max` are taken (one atomic step, so the accept loops of
    /// several workers can never take more than `max` between them).
    fn try_take(open: &Arc<Open>, max: usize, gauge: &metrics::Gauge) -> Option<Self> {
        let below = |n: usize| (n < max).then_some(n + 1);
        open.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, below)
            .ok()?;
        gauge.increment(1.0);
        Some(Slot {
            open: Arc::clone(open),
            gauge: gauge.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.count.fetch_sub(1, Ordering::AcqRel);
        // Every parked loop (one per worker) looks again: one that holds an accepted
        // connection must not miss the slot to one that has none.
        self.open.freed.notify_waiters();
        self.gauge.decrement(1.0);
    }
}

/// A slot for a connection that cannot wait for one, if below `max` (an HTTP/3 connection:
/// one over the limit is refused, and the client falls back to TCP).
pub(crate) fn try_admit(
    open: &Arc<Open>,
    max: Option<std::num::NonZeroUsize>,
    gauge: &metrics::Gauge,
) -> Option<Slot> {
    match max {
        Some(max) => Slot::try_take(open, max.get(), gauge),
        None => Some(Slot::take(open, gauge.clone())),
    }
}

/// A slot for a connection just accepted: at once below `max_connections`. At the limit
/// (another worker's loop took the last slot after this one looked) it waits, holding the
/// connection, until one frees; told to stop meanwhile it takes one anyway, because a
/// connection the kernel handed over is served, not reset. So at most `max_connections` are
/// served at once, and at most one accepted connection per other worker waits here.
pub(super) async fn admit(
    open: &Arc<Open>,
    max: Option<std::num::NonZeroUsize>,
    gauge: metrics::Gauge,
    life: &Lifecycle,
) -> Slot {
    let Some(max) = max else {
        return Slot::take(open, gauge);
    };
    loop {
        let freed = open.freed.notified();
        if let Some(slot) = Slot::try_take(open, max.get(), &gauge) {
            return slot;
        }
        tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => return Slot::take(open, gauge),
            () = freed => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_task_that_panics_gives_its_slot_back() {
        let open = Arc::new(Open::default());
        let slot = Slot::take(&open, metrics::Gauge::noop());
        assert_eq!(open.count.load(Ordering::Acquire), 1);
        let task = tokio::spawn(async move {
            let _slot = slot;
            panic!("a bug in a connection's task");
        });
        assert!(task.await.is_err());
        assert_eq!(open.count.load(Ordering::Acquire), 0);
    }
}

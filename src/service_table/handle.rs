//! Publishing snapshots: `arc-swap` for the data path, a `watch` channel for subscribers.
//!
//! The data path calls [`TableHandle::load`] once per connection: an `ArcSwap` load is a few
//! atomic operations and never blocks, even while a writer publishes. Writers are serialised by
//! a mutex that readers never touch, so two control-plane sources cannot lose each other's
//! updates. Subscribers (the admin endpoint, later the IPVS reconciler) get every published
//! snapshot through a `tokio::sync::watch`.

use super::Snapshot;
use arc_swap::{ArcSwap, Guard};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// Shared handle to the current snapshot.
#[derive(Debug)]
pub struct TableHandle {
    current: ArcSwap<Snapshot>,
    writer: Mutex<()>,
    changes: watch::Sender<Arc<Snapshot>>,
}

impl Default for TableHandle {
    fn default() -> Self {
        Self::new(Snapshot::default())
    }
}

impl TableHandle {
    /// A handle publishing `initial`.
    pub fn new(initial: Snapshot) -> Self {
        let initial = Arc::new(initial);
        Self {
            current: ArcSwap::new(Arc::clone(&initial)),
            writer: Mutex::new(()),
            changes: watch::Sender::new(initial),
        }
    }

    /// The current snapshot; cheap and lock-free.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// The current snapshot as an owned `Arc` (for the control plane, which keeps it).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Builds the next snapshot from the current one with `change` and publishes it with the
    /// next generation number. Returns what was published.
    pub fn update(&self, change: impl FnOnce(&Snapshot) -> Snapshot) -> Arc<Snapshot> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.current.load_full();
        let mut next = change(&old);
        next.generation = old.generation + 1;
        let next = Arc::new(next);
        self.current.store(Arc::clone(&next));
        crate::telemetry::metrics::snapshot_published(&next);
        self.changes.send_replace(Arc::clone(&next));
        next
    }

    /// A receiver that sees every published snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.changes.subscribe()
    }
}

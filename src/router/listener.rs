//! The TCP accept loop of one service.
//!
//! Like mini-redis's `Listener::run`, it never exits on an accept error: `EMFILE`, `ENFILE`,
//! `ENOBUFS` and friends are logged, counted and followed by a growing pause (10 ms doubling to
//! 1 s), because under fd exhaustion an instant retry would spin. When the service is at
//! `max_connections`, the loop stops accepting until a connection closes, so excess clients
//! wait in the kernel's backlog (as with HAProxy's `maxconn`) instead of being reset.
//! With several workers a service has one loop per worker and one count for them all: the
//! slot is taken after `accept` with one compare-and-swap ([`tcp::Slot::try_take`]), and a
//! loop that lost the last slot to another worker holds its connection until one frees, so at
//! most `max_connections` are served at once (the same scheme as HTTP listeners' `slots`).
//!
//! Each accepted connection costs one snapshot load (and a lookup by name only when the
//! snapshot's generation changed since the last connection). If the service has just been removed from
//! the table, the connection is still served with the last version of the service this loop
//! saw, and the loop then ends: a reload never resets a connection the kernel already accepted.

use super::{Lifecycle, tcp};
use crate::service_table::{Service, TableHandle};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Accepts connections for the service named like `service` until told to stop.
pub async fn run(
    listener: TcpListener,
    mut service: Arc<Service>,
    table: Arc<TableHandle>,
    life: Lifecycle,
) {
    let name = Arc::clone(&service.config.name);
    let mut backoff = FIRST_BACKOFF;
    let mut generation = 0;
    let accepted_here = crate::telemetry::metrics::worker_accepted();
    loop {
        if !wait_for_capacity(&service, &life).await {
            break;
        }
        let accepted = tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => {
                backoff = FIRST_BACKOFF;
                accepted_here.increment(1);
                pair
            }
            Err(error) => {
                service.live.metrics.accept_error();
                tracing::warn!(service = %name, %error, pause = ?backoff, "accept failed");
                tokio::select! {
                    () = life.stop_accepting.cancelled() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // One snapshot load per connection; the map lookup only when the table changed.
        let snapshot = table.load();
        let mut removed = false;
        if snapshot.generation != generation {
            generation = snapshot.generation;
            match snapshot.service(&name) {
                Some(current) => service = Arc::clone(current),
                None => removed = true,
            }
        }
        let slot = admit(&service, &life).await;
        let force_close = life.force_close.clone();
        life.connections
            .spawn(async move { tcp::serve(socket, peer, slot, force_close).await });
        if removed {
            break;
        }
    }
    tracing::debug!(service = %name, "listener stopped");
}

/// A slot for a connection just accepted: at once below `max_connections`; at the limit it
/// waits for one to free, holding the connection; told to stop meanwhile it takes one anyway
/// (a connection the kernel handed over is served, not reset).
async fn admit(service: &Arc<Service>, life: &Lifecycle) -> tcp::Slot {
    let Some(max) = service.config.max_connections else {
        return tcp::Slot::take(Arc::clone(service));
    };
    loop {
        let closed = service.live.closed.notified();
        if let Some(slot) = tcp::Slot::try_take(service, max.get()) {
            return slot;
        }
        tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => return tcp::Slot::take(Arc::clone(service)),
            () = closed => {}
        }
    }
}

/// Waits while the service is at its connection limit; false if told to stop meanwhile.
async fn wait_for_capacity(service: &Service, life: &Lifecycle) -> bool {
    let Some(max) = service.config.max_connections else {
        return true;
    };
    loop {
        let closed = service.live.closed.notified();
        if service.live.active.load(Ordering::Relaxed) < max.get() {
            return true;
        }
        tokio::select! {
            () = life.stop_accepting.cancelled() => return false,
            () = closed => {}
        }
    }
}

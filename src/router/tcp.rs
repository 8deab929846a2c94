//! One proxied TCP connection: connect upstream, copy both ways, account for it.

use super::copy::{self, Ended};
use crate::config::ProxyProtocol;
use crate::service_table::Service;
use crate::upstream;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, debug_span};

/// Counts one open connection of a service from accept to close. It is taken in the accept
/// loop itself, before the connection task is spawned, so `max_connections` sees it at once.
#[derive(Debug)]
pub struct Slot(Arc<Service>);

impl Slot {
    /// Counts a newly accepted connection of `service`.
    pub fn take(service: Arc<Service>) -> Slot {
        let live = &service.live;
        live.active.fetch_add(1, Ordering::Relaxed);
        live.metrics.accepted.increment(1);
        live.metrics.active.increment(1.0);
        Slot(service)
    }

    /// Counts a newly accepted connection of `service` if fewer than `max` are open (one
    /// atomic step: the accept loops of several workers never take more than `max`).
    pub fn try_take(service: &Arc<Service>, max: usize) -> Option<Slot> {
        let live = &service.live;
        let below = |n: usize| (n < max).then_some(n + 1);
        live.active
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, below)
            .ok()?;
        live.metrics.accepted.increment(1);
        live.metrics.active.increment(1.0);
        Some(Slot(Arc::clone(service)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let live = &self.0.live;
        live.metrics.active.decrement(1.0);
        live.active.fetch_sub(1, Ordering::Relaxed);
        // Every parked accept loop (one per worker) looks again.
        live.closed.notify_waiters();
    }
}

/// Serves one accepted client connection until it ends, or `force_close` fires.
pub async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    force_close: CancellationToken,
) {
    let service = &slot.0;
    let span = debug_span!("conn", service = %service.config.name, client = %peer);
    tokio::select! {
        () = proxy(&mut client, peer, service).instrument(span) => {}
        () = super::cancel::Cancelled::new(&force_close) => debug!(service = %service.config.name, client = %peer, "closed at drain deadline"),
    }
}

async fn proxy(client: &mut TcpStream, peer: SocketAddr, service: &Service) {
    let preamble = match service.config.proxy_protocol {
        ProxyProtocol::None => None,
        ProxyProtocol::V2 => {
            match client
                .local_addr()
                .and_then(|local| upstream::proxy_v2_header(peer, local))
            {
                Ok(header) => Some(header),
                Err(error) => return debug!(%error, "client gone before proxying"),
            }
        }
    };
    let mut upstream = match upstream::connect(service, peer, preamble.as_deref()).await {
        Ok(upstream) => upstream,
        Err(error) => {
            return tracing::warn!(%error, "no upstream connection: closing client");
        }
    };
    if let Err(error) = client.set_nodelay(true) {
        return debug!(%error, "client gone before proxying");
    }
    let metrics = &service.live.metrics;
    let result = copy::bidirectional(
        client,
        &mut upstream.stream,
        service.config.idle_timeout,
        (&metrics.bytes_in, &metrics.bytes_out),
    )
    .await;
    match result {
        Ok((Ended::Closed, totals)) => {
            debug!(endpoint = %upstream.address, sent = totals.sent, received = totals.received, "closed")
        }
        Ok((Ended::Idle, _)) => debug!(endpoint = %upstream.address, "idle timeout"),
        Err(error) => debug!(endpoint = %upstream.address, %error, "connection ended with error"),
    }
}

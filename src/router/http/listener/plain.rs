//! Plain (non-TLS) connections: each one's task, and the idle set it waits in without one
//! ([`super::idle`]) once it has had nothing to read for about half a second. A connection
//! taken back from the set gets a task again on the same worker ([`resume`]), with the
//! header-read deadline it had.

use super::idle::{IdleSet, Parked};
use super::{Slot, accepted, conn, http};
use crate::config::ListenerConfig;
use crate::router::Lifecycle;
use crate::router::http::conn::Peers;
use crate::service_table::TableHandle;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The set this listener socket's idle plain connections wait in without a task, and its
/// task, which gives a connection that becomes readable a task again ([`resume`]).
pub(super) fn parking(
    listener: &str,
    table: &Arc<TableHandle>,
    life: &Lifecycle,
) -> Option<Arc<IdleSet>> {
    let gauge = metrics::gauge!(crate::telemetry::metrics::HTTP_CONNECTIONS_IDLE,
        "listener" => listener.to_owned());
    let idle = match IdleSet::new(gauge) {
        Ok(idle) => Arc::new(idle),
        Err(error) => {
            tracing::warn!(%error, "no epoll set for idle connections; they keep their tasks");
            return None;
        }
    };
    let (set, table, life2) = (Arc::clone(&idle), Arc::clone(table), life.clone());
    life.connections.spawn(async move {
        let resume = |parked| {
            let served = resume(parked, Arc::clone(&table), life2.clone(), Arc::clone(&set));
            life2.connections.spawn(served);
        };
        set.run(&life2.stop_accepting, resume).await;
    });
    Some(idle)
}

/// Serves one plain connection: its task's future, spawned as it is (a wrapper future would
/// hold the same arguments again). It goes idle into `idle`, if given.
pub(super) async fn serve_plain(
    mut socket: TcpStream,
    client: SocketAddr,
    config: Arc<ListenerConfig>,
    table: Arc<TableHandle>,
    life: Lifecycle,
    slot: Slot,
    idle: Option<Arc<IdleSet>>,
) {
    let Some(client) = accepted(&mut socket, client, &config).await else {
        return;
    };
    let local = socket.local_addr().unwrap_or(config.listen);
    let peers = Peers { client, local };
    plain(socket, peers, None, config, slot, table, &life, idle).await;
}

/// Serves a plain connection's HTTP/1.x (or the HTTP/2 it opens with) until it closes; one
/// that goes idle on the fast path is parked in `idle` with its slot, and the task ends.
/// `until` is the header-read deadline of a connection taken back from the set.
#[allow(clippy::too_many_arguments)]
async fn plain(
    socket: TcpStream,
    peers: Peers,
    until: Option<Instant>,
    config: Arc<ListenerConfig>,
    slot: Slot,
    table: Arc<TableHandle>,
    life: &Lifecycle,
    idle: Option<Arc<IdleSet>>,
) {
    let conn = conn(peers, &config, None, table, None);
    let park = idle.is_some();
    let Some((socket, until)) = http(socket, conn, &config, life, park, until).await else {
        return;
    };
    let (Some(idle), Ok(stream)) = (idle, socket.into_std()) else {
        return;
    };
    idle.park(Parked {
        stream,
        peers,
        until,
        config,
        slot,
    });
}

/// Gives a parked connection that became readable a task again, on this worker.
async fn resume(parked: Parked, table: Arc<TableHandle>, life: Lifecycle, idle: Arc<IdleSet>) {
    let Parked {
        stream,
        peers,
        until,
        config,
        slot,
    } = parked;
    let socket = match TcpStream::from_std(stream) {
        Ok(socket) => socket,
        Err(error) => {
            let client = peers.client;
            return tracing::warn!(%client, %error, "an idle connection could not be resumed; closed");
        }
    };
    plain(
        socket,
        peers,
        Some(until),
        config,
        slot,
        table,
        &life,
        Some(idle),
    )
    .await;
}

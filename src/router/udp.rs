//! The UDP proxy of one service.
//!
//! UDP has no connections, so we make flows: the first datagram from a client address
//! (`ip:port`) picks an endpoint with the service's scheduler and opens a connected socket to
//! it; later datagrams of that client reuse the flow, and the endpoint's replies come back on
//! that socket and are sent to the client from the service's address. A flow ends after
//! `idle_timeout` without traffic either way.
//!
//! Bounds: at most `max_flows` flows (new clients beyond that are dropped and counted), no
//! queue anywhere: a datagram that cannot be sent at once (socket buffer full) is dropped and
//! counted, which is what the network would have done. Replies are read into a per-thread
//! scratch buffer only when the socket is readable, so an idle flow holds no buffer at all.
//!
//! The flow table is a `DashMap` because two kinds of tasks touch it: the receive loop adds
//! flows and each flow's task removes itself when it expires.
//!
//! Datagrams the kernel dropped at our sockets (the service's or a flow's receive queue was
//! full) are counted too, as `kernel_overflow`; the queues' sizes are the service's
//! `udp_recv_buffer`/`udp_send_buffer` (the `kernel` submodule).

mod kernel;

pub use kernel::size_service_socket;

use super::Lifecycle;
use crate::service_table::{ActiveGuard, Service, TableHandle};
use dashmap::DashMap;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

/// The `reason` of datagrams the kernel dropped at a full receive queue of our sockets.
const KERNEL_OVERFLOW: &str = "kernel_overflow";

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_DATAGRAM]);
}

/// One client's flow.
#[derive(Debug)]
struct Flow {
    upstream: UdpSocket,
    endpoint: SocketAddr,
    /// Milliseconds after the listener's start of the last datagram either way.
    last: AtomicU64,
    _guard: ActiveGuard,
}

type Flows = DashMap<SocketAddr, Arc<Flow>>;

/// Relays datagrams for the service named like `service` until told to stop; open flows
/// then live on until they go idle or the drain deadline passes. `socket` is already sized
/// ([`size_service_socket`]).
pub async fn run(
    socket: Arc<UdpSocket>,
    mut service: Arc<Service>,
    table: Arc<TableHandle>,
    life: Lifecycle,
) {
    let flows: Arc<Flows> = Arc::new(DashMap::new());
    let start = Instant::now();
    let name = Arc::clone(&service.config.name);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    if let Err(error) = kernel::count_drops(&*socket) {
        tracing::warn!(service = %name, %error, "kernel drops at the udp socket will not be counted");
    }
    let mut receiver = kernel::Receiver::default();
    loop {
        let datagram = tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => break,
            received = socket.async_io(Interest::READABLE, || receiver.recv(&*socket, &mut buf)) => {
                match received {
                    Ok(datagram) => datagram,
                    Err(error) => {
                        // ICMP errors from earlier sends surface here on some systems: not fatal.
                        tracing::debug!(service = %name, %error, "udp receive error");
                        continue;
                    }
                }
            }
        };
        if datagram.dropped > 0 {
            service
                .live
                .metrics
                .udp_dropped_n(KERNEL_OVERFLOW, datagram.dropped.into());
        }
        let (len, Some(client)) = (datagram.len, datagram.from) else {
            continue;
        };
        let flow = match flows.get(&client).map(|f| Arc::clone(&f)) {
            Some(flow) => flow,
            None => {
                if let Some(current) = table.load().service(&name) {
                    service = Arc::clone(current);
                }
                match open_flow(&service, client, &socket, &flows, start, &life).await {
                    Ok(flow) => flow,
                    Err(reason) => {
                        service.live.metrics.udp_dropped(reason);
                        continue;
                    }
                }
            }
        };
        flow.last
            .store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        match flow.upstream.try_send(&buf[..len]) {
            Ok(_) => service.live.metrics.bytes_in.increment(len as u64),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                service.live.metrics.udp_dropped("upstream_busy")
            }
            Err(error) => {
                tracing::debug!(service = %name, endpoint = %flow.endpoint, %error, "udp send failed");
                service.live.metrics.udp_dropped("upstream_error");
            }
        }
    }
    tracing::debug!(service = %name, "udp listener stopped");
}

async fn open_flow(
    service: &Arc<Service>,
    client: SocketAddr,
    socket: &Arc<UdpSocket>,
    flows: &Arc<Flows>,
    start: Instant,
    life: &Lifecycle,
) -> Result<Arc<Flow>, &'static str> {
    if flows.len() >= service.config.max_flows.get() {
        return Err("flow_limit");
    }
    let Some(i) = service.pick(client.ip(), &[]) else {
        return Err("no_endpoint");
    };
    let endpoint = &service.endpoints[i];
    let upstream = connect(endpoint.address, service.config.udp_buffers).await.map_err(|error| {
        tracing::warn!(service = %service.config.name, endpoint = %endpoint.address, %error, "udp flow socket failed");
        "socket_error"
    })?;
    let flow = Arc::new(Flow {
        upstream,
        endpoint: endpoint.address,
        last: AtomicU64::new(start.elapsed().as_millis() as u64),
        _guard: endpoint.state.open(),
    });
    flows.insert(client, Arc::clone(&flow));
    service.live.active.fetch_add(1, Ordering::Relaxed);
    service.live.metrics.accepted.increment(1);
    service.live.metrics.active.increment(1.0);
    let task = replies(
        Arc::clone(&flow),
        client,
        Arc::clone(socket),
        Arc::clone(service),
        start,
    );
    let flows = Arc::clone(flows);
    let (service, force_close) = (Arc::clone(service), life.force_close.clone());
    life.connections.spawn(async move {
        tokio::select! {
            () = task => {}
            () = force_close.cancelled() => {}
        }
        flows.remove(&client);
        service.live.active.fetch_sub(1, Ordering::Relaxed);
        service.live.metrics.active.decrement(1.0);
    });
    Ok(flow)
}

/// A UDP socket connected to `endpoint`, bound to an ephemeral port of the right family,
/// with the service's buffer sizes and its kernel drops counted.
async fn connect(
    endpoint: SocketAddr,
    buffers: crate::config::SocketBuffers,
) -> io::Result<UdpSocket> {
    let any: SocketAddr = if endpoint.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(any).await?;
    kernel::set_buffers(&socket, buffers)?;
    kernel::count_drops(&socket)?;
    socket.connect(endpoint).await?;
    // The first `try_send` must not see WouldBlock just because the runtime has not yet
    // observed the new socket's write readiness.
    socket.writable().await?;
    Ok(socket)
}

/// Relays the endpoint's replies to `client` until the flow is idle for the timeout.
async fn replies(
    flow: Arc<Flow>,
    client: SocketAddr,
    socket: Arc<UdpSocket>,
    service: Arc<Service>,
    start: Instant,
) {
    let idle = service.config.idle_timeout;
    let metrics = &service.live.metrics;
    let last_activity = || start + Duration::from_millis(flow.last.load(Ordering::Relaxed));
    let mut receiver = kernel::Receiver::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(last_activity() + idle) => {
                if last_activity() + idle <= Instant::now() {
                    tracing::debug!(service = %service.config.name, %client, "udp flow idle");
                    return;
                }
            }
            ready = flow.upstream.readable() => {
                if let Err(error) = ready {
                    tracing::debug!(%error, "udp flow socket failed");
                    return;
                }
                match relay_one(&flow.upstream, &mut receiver, &socket, client, metrics) {
                    Ok(Some(n)) => {
                        metrics.bytes_out.increment(n as u64);
                        flow.last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
                    }
                    Ok(None) => {}
                    Err(Relay::ClientBusy) => metrics.udp_dropped("client_busy"),
                    Err(Relay::Upstream(error)) => {
                        // e.g. ECONNREFUSED from an ICMP port unreachable: the endpoint is gone
                        tracing::debug!(service = %service.config.name, endpoint = %flow.endpoint, %error, "udp reply error");
                        metrics.udp_dropped("upstream_error");
                    }
                }
            }
        }
    }
}

enum Relay {
    ClientBusy,
    Upstream(io::Error),
}

/// Moves one reply datagram, if one is waiting; `Ok(None)` when the readiness was spurious.
fn relay_one(
    upstream: &UdpSocket,
    receiver: &mut kernel::Receiver,
    socket: &UdpSocket,
    client: SocketAddr,
    metrics: &crate::telemetry::metrics::ServiceMetrics,
) -> Result<Option<usize>, Relay> {
    SCRATCH.with_borrow_mut(|buf| {
        let n = match upstream.try_io(Interest::READABLE, || receiver.recv(upstream, buf)) {
            Ok(datagram) => {
                if datagram.dropped > 0 {
                    metrics.udp_dropped_n(KERNEL_OVERFLOW, datagram.dropped.into());
                }
                datagram.len
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(Relay::Upstream(e)),
        };
        match socket.try_send_to(&buf[..n], client) {
            Ok(_) => Ok(Some(n)),
            Err(_) => Err(Relay::ClientBusy),
        }
    })
}

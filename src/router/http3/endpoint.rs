//! The QUIC endpoint of one listener: bind the UDP socket, build quinn's server config from
//! the listener's settings and the certificate store, and accept connections until the
//! listener stops; then refuse new ones while the open ones drain.

use super::connection::{self, Shared};
use crate::config::ListenerConfig;
use crate::router::Lifecycle;
use crate::service_table::TableHandle;
use crate::tls::CertStore;
use arc_swap::ArcSwap;
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{
    Endpoint, EndpointConfig, IdleTimeout, Incoming, ServerConfig, TransportConfig, VarInt,
};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Handshakes in progress on one listener above which a client whose address is not yet
/// validated is sent a Retry first (a handshake flood: Retry makes each spoofed source cost
/// the attacker a round trip, and the server no handshake state).
pub(super) const FLOOD_HANDSHAKES: usize = 64;

/// Serves HTTP/3 on the bound UDP `socket` until `life.stop_accepting`, then drains (see
/// [`super`]). The accept loop runs as a task of `life.connections`, so a shutdown waits for
/// it (and its connections) until the drain deadline. The socket is bound by the caller, with
/// the listener's TCP sockets, so that a port in use fails a reload before it changes anything.
pub fn start(
    socket: std::net::UdpSocket,
    (settings, certs, table): (
        Arc<ArcSwap<ListenerConfig>>,
        Arc<ArcSwap<CertStore>>,
        Arc<TableHandle>,
    ),
    life: Lifecycle,
    open: Arc<crate::router::http::listener::Open>,
) -> io::Result<SocketAddr> {
    let config = settings.load_full();
    let runtime = quinn::default_runtime().ok_or_else(|| io::Error::other("no tokio runtime"))?;
    let server = server_config(&config, Arc::clone(&certs))?;
    let endpoint = Endpoint::new(EndpointConfig::default(), Some(server), socket, runtime)?;
    let bound = endpoint.local_addr()?;
    tracing::info!(listener = %config.name, address = %bound, "listening (http/3)");
    let shared = Arc::new(Shared::new(
        (settings, certs, table),
        life.clone(),
        open,
        &config,
    ));
    life.connections.spawn(accept(endpoint, shared));
    Ok(bound)
}

/// quinn's server config for `config`: rustls with ALPN `h3` on the store, the transport
/// limits of [`super`], migration on.
fn server_config(
    config: &ListenerConfig,
    certs: Arc<ArcSwap<CertStore>>,
) -> io::Result<ServerConfig> {
    let tls = crate::tls::server_config(certs, &[b"h3"]).map_err(io::Error::other)?;
    let quic = QuicServerConfig::try_from(tls).map_err(io::Error::other)?;
    let mut server = ServerConfig::with_crypto(Arc::new(quic));
    server.transport_config(Arc::new(transport(config)));
    server.migration(true);
    Ok(server)
}

/// The transport limits of a listener's QUIC connections.
fn transport(config: &ListenerConfig) -> TransportConfig {
    let mut transport = TransportConfig::default();
    transport.max_concurrent_bidi_streams(VarInt::from_u32(config.h2_max_concurrent_streams));
    // The client's control and two QPACK streams (and a little room for what RFC 9114 adds).
    transport.max_concurrent_uni_streams(VarInt::from_u32(8));
    transport.max_idle_timeout(IdleTimeout::try_from(config.h2_idle_timeout).ok());
    transport
}

/// Accepts connections until the listener stops, then refuses new ones until the open ones
/// are gone (or the drain deadline).
async fn accept(endpoint: Endpoint, shared: Arc<Shared>) {
    let life = shared.life.clone();
    loop {
        let incoming = tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => break,
            incoming = endpoint.accept() => incoming,
        };
        let Some(incoming) = incoming else { return };
        admit(incoming, &endpoint, &shared);
    }
    tracing::debug!(listener = %shared.name, "http/3 listener draining");
    loop {
        let gone = shared.open.freed.notified();
        if shared.open.count.load(Ordering::Acquire) == 0 {
            break;
        }
        tokio::select! {
            incoming = endpoint.accept() => match incoming {
                Some(incoming) => incoming.refuse(),
                None => break,
            },
            () = gone => {}
            () = life.force_close.cancelled() => break,
        }
    }
    endpoint.close(VarInt::from_u32(0x100), b"");
    tracing::debug!(listener = %shared.name, "http/3 listener stopped");
}

/// Refuses a connection over the listener's `max_connections` (TCP and QUIC together), asks
/// an unvalidated client for a Retry during a flood, or starts serving it.
fn admit(incoming: Incoming, endpoint: &Endpoint, shared: &Arc<Shared>) {
    let Some(slot) = shared.take_slot() else {
        return incoming.refuse();
    };
    let handshaking = shared.handshaking.load(Ordering::Acquire);
    // This one's own handshake, counted by its slot, is not part of the flood.
    if should_retry(
        incoming.remote_address_validated(),
        handshaking.saturating_sub(1),
    ) {
        drop(slot);
        // Only fails if the client was already retried, which `validated` rules out.
        let _ = incoming.retry();
        return;
    }
    let shared = Arc::clone(shared);
    let endpoint = endpoint.clone();
    shared.life.connections.spawn(connection::serve(
        incoming,
        endpoint,
        Arc::clone(&shared),
        slot,
    ));
}

/// Whether to send a Retry: the client's address is not validated and a flood is seen.
fn should_retry(validated: bool, handshaking: usize) -> bool {
    !validated && handshaking >= FLOOD_HANDSHAKES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_only_unvalidated_clients_during_a_flood() {
        assert!(!should_retry(false, 0));
        assert!(!should_retry(false, FLOOD_HANDSHAKES - 1));
        assert!(should_retry(false, FLOOD_HANDSHAKES));
        assert!(!should_retry(true, FLOOD_HANDSHAKES * 10));
    }
}

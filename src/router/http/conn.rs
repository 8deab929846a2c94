//! What every request on a client connection shares: who the client is, the listener's
//! settings for its requests, and the live table. Both HTTP/1.1 paths and HTTP/2 read it; it
//! lives apart from them so that routing and the upstream clients depend on it, not on
//! either path.

use crate::forward;
use crate::ingress::normalize::NormalizeOptions;
use crate::service_table::TableHandle;
use crate::tls::CertStore;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// What a request handler knows about its connection.
pub struct Conn {
    /// The client (after PROXY protocol, if any).
    pub client: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    /// TLS server name the client sent, if TLS.
    pub sni: Option<String>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The listener's certificates (TLS listeners), for the SNI/Host check.
    pub certs: Option<Arc<ArcSwap<CertStore>>>,
    /// The live table.
    pub table: Arc<TableHandle>,
    /// The client's address and port, rendered for the forwarding fields.
    pub forwarding: forward::ClientHeaders,
    /// Upstream clients private to this connection (services that send PROXY headers).
    pub private: super::clients::Private,
    /// How the listener normalises request targets.
    pub normalize: NormalizeOptions,
    /// Forward request fields whose names contain `_` (the listener's
    /// `underscores_in_headers`); dropped otherwise.
    pub underscores: bool,
    /// The tunnel an upgraded request left (see [`super::upgrade`]), for the connection's
    /// task to run once hyper lets go of the connection.
    pub tunnel: Mutex<Option<Tunnel>>,
    /// The `Alt-Svc` value advertising HTTP/3, on a TCP TLS listener that serves it too.
    pub alt_svc: Option<http::HeaderValue>,
}

/// A WebSocket (or other upgraded) connection's byte copy, as a future.
pub type Tunnel = Pin<Box<dyn Future<Output = ()> + Send>>;

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("client", &self.client)
            .field("local", &self.local)
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// Who a connection is with, and where it came in.
#[derive(Debug, Clone, Copy)]
pub struct Peers {
    /// The client (after PROXY protocol, if any).
    pub client: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
}

impl Conn {
    /// What every request of a connection to the listener `config` shares: TLS ones carry
    /// the listener's `certs` (for the SNI/Host check) and the name the client sent;
    /// `alt_svc` is what the listener advertises HTTP/3 with, if it does.
    pub fn for_listener(
        peers: Peers,
        config: &crate::config::ListenerConfig,
        certs: Option<Arc<ArcSwap<CertStore>>>,
        table: Arc<TableHandle>,
        sni: Option<String>,
        alt_svc: Option<http::HeaderValue>,
    ) -> Arc<Conn> {
        let Peers { client, local } = peers;
        Arc::new(Conn {
            client,
            local,
            listener: Arc::clone(&config.name),
            sni,
            tls: certs.is_some(),
            certs,
            table,
            forwarding: forward::ClientHeaders::new(client.ip(), local.port()),
            private: Default::default(),
            normalize: NormalizeOptions {
                keep_encoded_slashes: config.keep_encoded_slashes,
            },
            underscores: config.underscores_in_headers,
            tunnel: Default::default(),
            alt_svc,
        })
    }

    /// Leaves `tunnel` for the connection's task to run.
    pub(super) fn set_tunnel(&self, tunnel: Tunnel) {
        *self.tunnel.lock().unwrap_or_else(|e| e.into_inner()) = Some(tunnel);
    }

    /// The tunnel left by an upgrade, if any.
    pub(super) fn take_tunnel(&self) -> Option<Tunnel> {
        self.tunnel.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// `http` or `https`.
    pub(super) fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }
}

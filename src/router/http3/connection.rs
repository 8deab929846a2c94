//! One QUIC connection: the handshake under the listener's deadline, the h3 connection with
//! its header-size limit, a task per request stream, and the drain (GOAWAY, let requests
//! finish, close; cut at the drain deadline).

use crate::config::ListenerConfig;
use crate::router::Lifecycle;
use crate::router::http::conn::{Conn, Peers};
use crate::router::http::listener;
use crate::service_table::TableHandle;
use crate::tls::CertStore;
use arc_swap::ArcSwap;
use bytes::Bytes;
use quinn::{Endpoint, Incoming, VarInt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::task::TaskTracker;

/// An h3 server connection over quinn.
type H3 = h3::server::Connection<h3_quinn::Connection, Bytes>;

/// H3_NO_ERROR, the code a connection closes with when all went well.
const H3_NO_ERROR: u32 = 0x100;

/// What the connections of one listener's endpoint share.
pub(super) struct Shared {
    /// The listener's name.
    pub name: Arc<str>,
    /// The listener's settings, as reloads change them.
    pub settings: Arc<ArcSwap<ListenerConfig>>,
    /// The certificates (for the SNI/Host check, as on TCP).
    certs: Arc<ArcSwap<CertStore>>,
    /// The live table.
    table: Arc<TableHandle>,
    /// Stop, drain deadline, connection tracking.
    pub life: Lifecycle,
    /// The listener's open connections, TCP and QUIC: `max_connections` is one limit.
    listener: Arc<listener::Open>,
    /// This endpoint's open QUIC connections, for its drain.
    pub open: Open,
    /// Handshakes in progress, for the Retry decision.
    pub handshaking: AtomicUsize,
    /// `switchyard_http_connections_active` of the listener (moved by the listener's slots).
    gauge: metrics::Gauge,
}

/// Open QUIC connections, and a wake-up when one closes.
#[derive(Debug, Default)]
pub(super) struct Open {
    /// How many.
    pub count: AtomicUsize,
    /// Notified when one closes.
    pub freed: tokio::sync::Notify,
}

impl Shared {
    /// The shared state of a listener configured as `config`, whose open connections are
    /// `listener`.
    pub(super) fn new(
        (settings, certs, table): (
            Arc<ArcSwap<ListenerConfig>>,
            Arc<ArcSwap<CertStore>>,
            Arc<TableHandle>,
        ),
        life: Lifecycle,
        listener: Arc<listener::Open>,
        config: &ListenerConfig,
    ) -> Self {
        let gauge = metrics::gauge!(crate::telemetry::metrics::HTTP_CONNECTIONS_ACTIVE,
            "listener" => config.name.to_string());
        Shared {
            name: Arc::clone(&config.name),
            settings,
            certs,
            table,
            life,
            listener,
            open: Open::default(),
            handshaking: AtomicUsize::new(0),
            gauge,
        }
    }

    /// Counts a connection as open until the slot is dropped, if the listener is below
    /// `max_connections` (TCP and QUIC connections together).
    pub(super) fn take_slot(self: &Arc<Self>) -> Option<Slot> {
        let max = self.settings.load().max_connections;
        let listener = listener::try_admit(&self.listener, max, &self.gauge)?;
        self.open.count.fetch_add(1, Ordering::AcqRel);
        self.handshaking.fetch_add(1, Ordering::AcqRel);
        Some(Slot {
            shared: Arc::clone(self),
            _listener: listener,
            handshaking: true,
        })
    }
}

/// A connection's place among the open ones (the listener's, and the endpoint's own), and
/// among the handshakes until it is done, given back however its task ends.
pub(super) struct Slot {
    shared: Arc<Shared>,
    /// The listener's slot (and its place in the gauge), given back on drop.
    _listener: listener::Slot,
    handshaking: bool,
}

impl Slot {
    fn handshake_over(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            self.shared.handshaking.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.handshake_over();
        self.shared.open.count.fetch_sub(1, Ordering::AcqRel);
        self.shared.open.freed.notify_waiters();
    }
}

/// Serves one connection: its task.
pub(super) async fn serve(incoming: Incoming, endpoint: Endpoint, shared: Arc<Shared>, slot: Slot) {
    let mut slot = slot;
    let config = shared.settings.load_full();
    let client = incoming.remote_address();
    let started = tokio::time::timeout(config.handshake_timeout, handshake(incoming, &config));
    let (quic, h3) = match started.await {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => {
            return tracing::debug!(listener = %shared.name, %client, %error, "http/3 handshake failed");
        }
        Err(_) => {
            return tracing::debug!(listener = %shared.name, %client, "http/3 handshake timed out");
        }
    };
    slot.handshake_over();
    let local = SocketAddr::new(
        quic.local_ip()
            .unwrap_or_else(|| endpoint.local_addr().map_or(config.listen.ip(), |a| a.ip())),
        endpoint
            .local_addr()
            .map_or(config.listen.port(), |a| a.port()),
    );
    let sni = server_name(&quic);
    // The question the certificate resolver answered (a reload in between only changes the
    // answer to a newer store's), as on TCP.
    if shared.certs.load().pick(sni.as_deref()).fallback {
        crate::telemetry::metrics::tls_default_certificate(&shared.name);
    }
    let conn = conn(&shared, &config, client, local, sni);
    requests(h3, &conn, &shared).await;
    quic.close(VarInt::from_u32(H3_NO_ERROR), b"");
}

/// Why a connection could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    /// The QUIC handshake failed.
    #[error("quic: {0}")]
    Quic(#[from] quinn::ConnectionError),
    /// The h3 SETTINGS exchange failed.
    #[error("h3: {0}")]
    H3(#[from] h3::error::ConnectionError),
}

/// The QUIC handshake, then h3's (SETTINGS, with the header-size limit).
async fn handshake(
    incoming: Incoming,
    config: &ListenerConfig,
) -> Result<(quinn::Connection, H3), StartError> {
    let quic = incoming.accept()?.await?;
    let h3 = h3::server::builder()
        .max_field_section_size(config.max_header_bytes as u64)
        // WebSockets over HTTP/3 (RFC 9220), see `tunnel`.
        .enable_extended_connect(true)
        .build(h3_quinn::Connection::new(quic.clone()))
        .await?;
    Ok((quic, h3))
}

/// The SNI name the client sent.
fn server_name(quic: &quinn::Connection) -> Option<String> {
    quic.handshake_data()?
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?
        .server_name
}

/// What every request of the connection shares (as for TCP; no `Alt-Svc`, the client is on
/// HTTP/3 already).
fn conn(
    shared: &Shared,
    config: &ListenerConfig,
    client: SocketAddr,
    local: SocketAddr,
    sni: Option<String>,
) -> Arc<Conn> {
    let certs = Some(Arc::clone(&shared.certs));
    let table = Arc::clone(&shared.table);
    Conn::for_listener(Peers { client, local }, config, certs, table, sni, None)
}

/// Accepts request streams, each served by a task, until the connection ends; when the
/// listener stops, sends GOAWAY and waits for the requests in flight (until the drain
/// deadline).
async fn requests(mut h3: H3, conn: &Arc<Conn>, shared: &Shared) {
    let life = &shared.life;
    let tasks = TaskTracker::new();
    let mut draining = false;
    loop {
        tokio::select! {
            biased;
            () = life.stop_accepting.cancelled(), if !draining => {
                draining = true;
                tasks.close();
                // Requests up to the last one accepted go on; later ones are refused.
                let _ = h3.shutdown(1).await;
            }
            () = tasks.wait(), if draining => break,
            () = life.force_close.cancelled(), if draining => return,
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    tasks.spawn(super::request::serve(resolver, Arc::clone(conn)));
                }
                Ok(None) => break,
                Err(error) => {
                    if !error.is_h3_no_error() {
                        tracing::debug!(listener = %shared.name, %error, "http/3 connection ended");
                    }
                    break;
                }
            },
        }
    }
    tasks.close();
    tokio::select! {
        () = tasks.wait() => {}
        () = life.force_close.cancelled() => {}
    }
}

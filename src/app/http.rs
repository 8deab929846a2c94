//! The HTTP listeners of a running app, and the certificates they share.
//!
//! Applying a config is two steps, like the L4 listeners: [`HttpListeners::prepare`] does
//! everything that can fail (loading changed certificates, binding new listeners) without
//! touching what runs; [`HttpListeners::commit`] then swaps certificates, retunes listeners
//! that stay, stops removed ones (their connections finish gracefully) and starts new ones.
//! A listener whose address and TLS setting are unchanged keeps its socket; its other
//! settings (timeouts, limits) change for new connections.

use super::AppError;
use super::workers::TcpListeners;
use crate::config::{HttpConfig, ListenerConfig, Protocol};
use crate::router::Lifecycle;
use crate::router::http::listener::{self, Tls};
use crate::service_table::TableHandle;
use crate::tls::{CertSpec, CertStore};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Running HTTP listeners and the shared certificate store.
#[derive(Debug)]
pub(super) struct HttpListeners {
    running: HashMap<Arc<str>, Running>,
    certs: Arc<ArcSwap<CertStore>>,
    loaded: CertConfig,
    tls: Option<Tls>,
    /// The last certificate reload error, so a broken file is reported once, not every poll.
    last_error: std::sync::Mutex<Option<String>>,
    /// What the admin page and `/metrics` say of the loaded certificates.
    pub(super) board: crate::admin::certs::CertBoard,
    /// The data-plane threads the listeners run on.
    workers: Arc<super::workers::Workers>,
}

#[derive(Debug)]
struct Running {
    listen: SocketAddr,
    tls: bool,
    local: SocketAddr,
    config: Arc<ArcSwap<ListenerConfig>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The certificate part of a config: specs and the default's index.
type CertConfig = (Vec<CertSpec>, Option<usize>);

/// What `prepare` made ready for `commit`.
pub(super) struct Prepared {
    certs: Option<(CertStore, CertConfig)>,
    /// New listeners' sockets: TCP, and UDP for those that serve HTTP/3.
    bound: Vec<(ListenerConfig, TcpListeners, Option<std::net::UdpSocket>)>,
}

impl HttpListeners {
    pub(super) fn new(workers: Arc<super::workers::Workers>) -> Result<Self, AppError> {
        let empty = CertStore::load(&[], None).map_err(AppError::Tls)?;
        Ok(Self {
            running: HashMap::new(),
            certs: Arc::new(ArcSwap::from_pointee(empty)),
            loaded: (Vec::new(), None),
            tls: None,
            last_error: std::sync::Mutex::new(None),
            board: Default::default(),
            workers,
        })
    }

    /// Where the named listener is bound.
    pub(super) fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.running.get(name).map(|r| r.local)
    }

    fn keeps(&self, l: &ListenerConfig) -> bool {
        self.running
            .get(&l.name)
            .is_some_and(|r| r.listen == l.listen && r.tls == l.tls)
    }

    /// Loads certificates if they changed (in the config or on disk) and binds listeners that
    /// are new or moved. Nothing running is touched; an error leaves everything as it was.
    pub(super) async fn prepare(&self, http: &HttpConfig) -> Result<Prepared, AppError> {
        let wanted = (http.certificates.clone(), http.default_certificate);
        let certs = if wanted != self.loaded || self.certs.load().changed_on_disk() {
            let store = CertStore::load(&wanted.0, wanted.1).map_err(AppError::Tls)?;
            Some((store, wanted))
        } else {
            None
        };
        let mut bound = Vec::new();
        for l in http.listeners.iter().filter(|l| !self.keeps(l)) {
            // A moved listener's old address is still held until commit; ask for a new one.
            let tcp = bind(l, &self.workers)?;
            let udp = (l.tls && l.http3).then(|| bind_udp(l, &tcp)).transpose()?;
            bound.push((l.clone(), tcp, udp));
        }
        Ok(Prepared { certs, bound })
    }

    /// Applies a prepared change.
    pub(super) async fn commit(
        &mut self,
        prepared: Prepared,
        http: &HttpConfig,
        table: &Arc<TableHandle>,
        life: &Lifecycle,
    ) -> Result<(), AppError> {
        if let Some((store, loaded)) = prepared.certs {
            tracing::info!(certificates = store.len(), "certificates loaded");
            let view = crate::admin::certs::describe(&loaded.0, loaded.1, &store);
            self.board.store(Arc::new(view));
            self.certs.store(Arc::new(store));
            self.loaded = loaded;
        }
        let gone: Vec<Arc<str>> = self
            .running
            .keys()
            .filter(|n| {
                !http
                    .listeners
                    .iter()
                    .any(|l| &l.name == *n && self.keeps(l))
            })
            .cloned()
            .collect();
        for name in gone {
            if let Some(r) = self.running.remove(&name) {
                r.stop.cancel();
                let _finished = r.task.await;
            }
        }
        for l in &http.listeners {
            if let Some(r) = self.running.get(&l.name) {
                r.config.store(Arc::new(l.clone()));
            }
        }
        for (config, socket, udp) in prepared.bound {
            let tls = if config.tls { Some(self.tls()?) } else { None };
            let local = socket.local_addr().unwrap_or(config.listen);
            let stop = CancellationToken::new();
            let shared = Arc::new(ArcSwap::from_pointee(config.clone()));
            let life = Lifecycle {
                stop_accepting: stop.clone(),
                ..life.clone()
            };
            // One count of open connections for the listener's sockets on every worker, and
            // for its QUIC connections.
            let open = Arc::new(listener::Open::default());
            if let Some(udp) = udp {
                let (settings, certs) = (Arc::clone(&shared), Arc::clone(&self.certs));
                let state = (settings, certs, Arc::clone(table));
                crate::router::http3::start(udp, state, life.clone(), Arc::clone(&open)).map_err(
                    |source| AppError::Bind {
                        what: format!("listener {} (http/3)", config.name),
                        protocol: Protocol::Udp,
                        address: local,
                        source,
                    },
                )?;
            }
            let (settings, table) = (Arc::clone(&shared), Arc::clone(table));
            let accept = move |socket| {
                let (settings, tls, table) =
                    (Arc::clone(&settings), tls.clone(), Arc::clone(&table));
                listener::run_sharing(
                    socket,
                    settings,
                    tls,
                    table,
                    life.clone(),
                    Arc::clone(&open),
                )
            };
            let task = self.workers.spawn_accept(socket, accept);
            tracing::info!(listener = %config.name, tls = config.tls, address = %local, "listening (http)");
            self.running.insert(
                Arc::clone(&config.name),
                Running {
                    listen: config.listen,
                    tls: config.tls,
                    local,
                    config: shared,
                    stop,
                    task,
                },
            );
        }
        Ok(())
    }

    /// Reloads the certificates if their files changed; a bad file keeps the old ones.
    pub(super) fn reload_certificates_if_changed(&self) {
        if self.loaded.0.is_empty() || !self.certs.load().changed_on_disk() {
            return;
        }
        let mut last_error = self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match CertStore::load(&self.loaded.0, self.loaded.1) {
            Ok(store) => {
                tracing::info!(
                    certificates = store.len(),
                    "certificate files changed: reloaded"
                );
                let view = crate::admin::certs::describe(&self.loaded.0, self.loaded.1, &store);
                self.board.store(Arc::new(view));
                crate::telemetry::recent::reload("certificates", None);
                self.certs.store(Arc::new(store));
                *last_error = None;
            }
            Err(error) => {
                let text = error.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    crate::telemetry::recent::reload("certificates", Some(&error));
                    tracing::error!(%error, "certificate reload failed, keeping the old ones");
                    *last_error = Some(text);
                }
            }
        }
    }

    /// Stops accepting everywhere; open connections finish gracefully.
    pub(super) async fn stop_all(&mut self) {
        for (_, r) in self.running.drain() {
            r.stop.cancel();
            let _finished = r.task.await;
        }
    }

    /// The TLS acceptor, built once: certificates change under it through the store.
    fn tls(&mut self) -> Result<Tls, AppError> {
        if let Some(tls) = &self.tls {
            return Ok(tls.clone());
        }
        let config = crate::tls::server_config(Arc::clone(&self.certs), &[b"h2", b"http/1.1"])
            .map_err(AppError::Tls)?;
        let tls = Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(config),
            certs: Arc::clone(&self.certs),
        };
        self.tls = Some(tls.clone());
        Ok(tls)
    }
}

fn bind(l: &ListenerConfig, workers: &super::workers::Workers) -> Result<TcpListeners, AppError> {
    let err = |source| AppError::Bind {
        what: format!("listener {}", l.name),
        protocol: Protocol::Tcp,
        address: l.listen,
        source,
    };
    workers.bind_tcp(l.listen, super::BACKLOG).map_err(err)
}

/// The UDP socket of a listener that serves HTTP/3: the address and port its TCP sockets got.
/// Bound in `prepare` with them, so a port another process holds rejects the change before
/// anything running is touched.
fn bind_udp(l: &ListenerConfig, tcp: &TcpListeners) -> Result<std::net::UdpSocket, AppError> {
    let address = tcp.local_addr().unwrap_or(l.listen);
    std::net::UdpSocket::bind(address).map_err(|source| AppError::Bind {
        what: format!("listener {} (http/3)", l.name),
        protocol: Protocol::Udp,
        address,
        source,
    })
}

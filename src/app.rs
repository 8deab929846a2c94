//! Wires the table, the listeners and the admin endpoint; owns reload, shutdown and drain.
//!
//! [`start`] binds everything and returns an [`App`]; [`App::apply`] moves a running app to a
//! new config; [`App::shutdown`] drains it. [`run`] is what the binary calls: start, then
//! reload on SIGHUP or when the file changes, until the shutdown future resolves (DESIGN.md
//! §4.2: `run` takes its shutdown future so tests can stop it).
//!
//! A reload is all or nothing up to the point where the new table is published: new listeners
//! are bound first, and if any bind fails the reload is rejected and nothing changed. Services
//! whose listen address and protocol stay the same keep their listener (and its sockets'
//! backlog); their table entry is swapped, and open connections keep the `Arc<Service>` they
//! started with.

mod bind;
mod http;
mod reload;
pub mod workers;

pub use reload::{run, run_with};

use bind::{Bound, bind, resize_udp};

use crate::admin::{self, AdminState};
use crate::config::{Config, Protocol, ServiceConfig};
use crate::router::{self, Lifecycle};
use crate::service_table::{Snapshot, TableHandle};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Kernel accept queue length for service listeners (the kernel caps it at `somaxconn`).
pub(crate) const BACKLOG: u32 = 4096;

/// Why the app could not start or apply a config.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Certificates could not be loaded.
    #[error("{0}")]
    Tls(#[source] crate::tls::TlsError),
    /// The Kubernetes source could not start (a bad kubeconfig).
    #[error("{0}")]
    Discovery(#[source] crate::discovery::DiscoveryError),
    /// The data-plane worker threads could not start.
    #[error("cannot start the worker threads: {0}")]
    Workers(#[source] io::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {protocol} {address} for {what}: {source}")]
    Bind {
        /// `admin` or `service NAME`.
        what: String,
        /// Protocol.
        protocol: Protocol,
        /// Address.
        address: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A running Switchyard.
#[derive(Debug)]
pub struct App {
    table: Arc<TableHandle>,
    listeners: Mutex<HashMap<Arc<str>, Running>>,
    http: Mutex<http::HttpListeners>,
    connections: TaskTracker,
    force_close: CancellationToken,
    admin_stop: CancellationToken,
    admin_addr: SocketAddr,
    ready: Arc<AtomicBool>,
    ipvs: crate::ipvs::IpvsDataplane,
    /// The routes the admin page shows, replaced on every apply.
    routes: admin::overview::RouteBoard,
    /// The data-plane threads TCP listeners run on (none with one worker).
    workers: Arc<workers::Workers>,
}

/// A service listener that is running.
#[derive(Debug)]
struct Running {
    protocol: Protocol,
    /// The configured address (port may be 0).
    listen: SocketAddr,
    /// The bound address.
    local: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// A UDP service's socket, kept to resize its buffers when a reload changes them.
    udp: Option<Arc<UdpSocket>>,
}

/// Starts the admin listener and every service of `config`.
pub async fn start(config: Config) -> Result<App, AppError> {
    start_gated(config, false).await
}

/// Like [`start`]; with `gated`, `/readyz` stays 503 until [`App::set_ready`] (the Kubernetes
/// source opens it after its first full listing is applied).
pub async fn start_gated(config: Config, gated: bool) -> Result<App, AppError> {
    let prometheus = crate::telemetry::metrics::install();
    let admin = TcpListener::bind(config.admin.listen)
        .await
        .map_err(|source| AppError::Bind {
            what: "admin".into(),
            protocol: Protocol::Tcp,
            address: config.admin.listen,
            source,
        })?;
    let admin_addr = admin.local_addr().map_err(|source| AppError::Bind {
        what: "admin".into(),
        protocol: Protocol::Tcp,
        address: config.admin.listen,
        source,
    })?;
    let table = Arc::new(TableHandle::default());
    let ipvs = crate::ipvs::IpvsDataplane::start(&config, &table).await;
    let workers =
        Arc::new(workers::Workers::start(config.runtime.workers).map_err(AppError::Workers)?);
    let http = http::HttpListeners::new(Arc::clone(&workers))?;
    let certs = Arc::clone(&http.board);
    let app = App {
        table,
        listeners: Mutex::new(HashMap::new()),
        http: Mutex::new(http),
        connections: TaskTracker::new(),
        force_close: CancellationToken::new(),
        admin_stop: CancellationToken::new(),
        admin_addr,
        ready: Arc::new(AtomicBool::new(false)),
        ipvs,
        routes: Default::default(),
        workers,
    };
    let state = AdminState {
        table: Arc::clone(&app.table),
        ready: Arc::clone(&app.ready),
        prometheus,
        ipvs: app.ipvs.status(),
        certs,
        routes: Arc::clone(&app.routes),
        rings: Default::default(),
        started: crate::telemetry::recent::now(),
    };
    tokio::spawn(admin::run(admin, state, app.admin_stop.clone()));
    app.apply(&config).await?;
    if !gated {
        app.ready.store(true, Ordering::Relaxed);
        tracing::info!(admin = %admin_addr, "switchyard ready");
    }
    Ok(app)
}

impl App {
    /// The live table.
    pub fn table(&self) -> &Arc<TableHandle> {
        &self.table
    }

    /// Sets what `/readyz` answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Where the admin listener is bound.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Where the named service's listener is bound.
    pub async fn local_addr(&self, service: &str) -> Option<SocketAddr> {
        self.listeners.lock().await.get(service).map(|r| r.local)
    }

    /// Where the named HTTP listener is bound.
    pub async fn http_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.http.lock().await.local_addr(listener)
    }

    /// Reloads certificates whose files changed (polled by the reload loop).
    pub async fn reload_certificates_if_changed(&self) {
        self.http.lock().await.reload_certificates_if_changed();
    }

    fn lifecycle(&self, stop_accepting: CancellationToken) -> Lifecycle {
        Lifecycle {
            stop_accepting,
            force_close: self.force_close.clone(),
            connections: self.connections.clone(),
        }
    }

    /// Moves the app to `config`: loads certificates and binds new listeners (all or nothing),
    /// publishes the new table, then stops listeners that went away; their connections drain.
    pub async fn apply(&self, config: &Config) -> Result<(), AppError> {
        let mut listeners = self.listeners.lock().await;
        let mut http = self.http.lock().await;
        self.ipvs.configure(&config.ipvs);
        let kernel = |s: &ServiceConfig| self.ipvs.serves(s);
        let keeps = |s: &ServiceConfig| {
            listeners.get(&s.name).is_some_and(|r| {
                r.protocol == s.protocol && Some(r.listen) == s.listen && !kernel(s)
            })
        };
        let starting: Vec<(&ServiceConfig, SocketAddr)> = config
            .services
            .iter()
            .filter(|s| !keeps(s) && !kernel(s) && !s.ipvs.kernel_only)
            .filter_map(|s| Some((s, s.listen?)))
            .collect();
        let stopping: Vec<Arc<str>> = listeners
            .keys()
            .filter(|name| !config.service(name).is_some_and(keeps))
            .cloned()
            .collect();
        // Addresses that only become free once an old listener stops (a rename, or two
        // services trading places) are bound after it stopped.
        let freed: HashSet<(Protocol, SocketAddr)> = stopping
            .iter()
            .filter_map(|n| listeners.get(n))
            .map(|r| (r.protocol, r.local))
            .collect();
        let (early, late): (Vec<_>, Vec<_>) = starting
            .into_iter()
            .partition(|(s, l)| l.port() == 0 || !freed.contains(&(s.protocol, *l)));
        let mut bound = Vec::with_capacity(early.len() + late.len());
        for (service, address) in early {
            bound.push((
                service,
                address,
                bind(service, address, &self.workers).await?,
            ));
        }
        let http_ready = http.prepare(&config.http).await?;
        let old = self.table.load_full();
        let routes = crate::ingress::HttpRoutes::build_after(&config.http, &old.http);
        let passthrough = crate::tls::PassthroughTable::build(&config.http.passthrough);
        let snapshot = self.table.update(|current| {
            current
                .rebuild(&config.services)
                .with_http(routes)
                .with_passthrough(passthrough)
        });
        let life = self.lifecycle(CancellationToken::new());
        http.commit(http_ready, &config.http, &self.table, &life)
            .await?;
        self.routes
            .store(Arc::new(admin::overview::Routes::of(&config.http)));
        for name in &stopping {
            if let Some(running) = listeners.remove(name) {
                running.stop.cancel();
                let _finished = running.task.await;
            }
            if snapshot.service(name).is_none()
                && let Some(gone) = old.service(name)
            {
                gone.live.metrics.clear();
            }
        }
        for (service, address) in late {
            match bind(service, address, &self.workers).await {
                Ok(b) => bound.push((service, address, b)),
                Err(error) => tracing::error!(%error, "listener not started"),
            }
        }
        // Only kept listeners are in the map now: new ones were sized when bound.
        for service in &config.services {
            if let (Some(socket), Some(before)) = (
                listeners.get(&service.name).and_then(|r| r.udp.as_ref()),
                old.service(&service.name),
            ) && before.config.udp_buffers != service.udp_buffers
            {
                resize_udp(socket, before.config.udp_buffers, service);
            }
        }
        let started = bound.len();
        for (service, address, b) in bound {
            let running = self.spawn_listener(service, address, b, &snapshot);
            listeners.insert(Arc::clone(&service.name), running);
        }
        tracing::info!(
            generation = snapshot.generation,
            services = snapshot.len(),
            started,
            stopped = stopping.len(),
            "table published"
        );
        Ok(())
    }

    fn spawn_listener(
        &self,
        config: &ServiceConfig,
        listen: SocketAddr,
        bound: Bound,
        snapshot: &Snapshot,
    ) -> Running {
        let stop = CancellationToken::new();
        let life = self.lifecycle(stop.clone());
        let table = Arc::clone(&self.table);
        let service = snapshot.service(&config.name).cloned().unwrap_or_else(|| {
            // apply() publishes before spawning, so the service is always there.
            Arc::new(crate::service_table::Service::build(config.clone(), None))
        });
        let (local, task, udp) = match bound {
            Bound::Tcp(l) => {
                let local = l.local_addr().unwrap_or(listen);
                let accept = move |l| {
                    router::listener::run(l, Arc::clone(&service), Arc::clone(&table), life.clone())
                };
                (local, self.workers.spawn_accept(l, accept), None)
            }
            Bound::Udp(s) => {
                let local = s.local_addr().unwrap_or(listen);
                let task = router::udp::run(Arc::clone(&s), service, table, life);
                (local, tokio::spawn(task), Some(s))
            }
        };
        tracing::info!(service = %config.name, protocol = %config.protocol, address = %local, "listening");
        Running {
            protocol: config.protocol,
            listen,
            local,
            stop,
            task,
            udp,
        }
    }

    /// Stops accepting everywhere, turns `/readyz` to 503, lets open connections finish for
    /// up to `drain`, then closes what is left.
    pub async fn shutdown(self, drain: Duration) {
        self.ready.store(false, Ordering::Relaxed);
        self.ipvs.stop();
        let mut listeners = self.listeners.lock().await;
        for (_, running) in listeners.drain() {
            running.stop.cancel();
            let _finished = running.task.await;
        }
        self.http.lock().await.stop_all().await;
        self.connections.close();
        let open = self.connections.len();
        tracing::info!(open, ?drain, "draining");
        if tokio::time::timeout(drain, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections.len(),
                "drain deadline passed: closing what is left"
            );
            self.force_close.cancel();
            self.connections.wait().await;
        }
        self.admin_stop.cancel();
        tracing::info!("shut down");
    }
}

//! The reconciler task and the handle the app keeps: mode selection, sync loop, status.
//!
//! [`IpvsDataplane::start`] decides once whether the kernel serves anything: only when some
//! service asks for `ipvs` or `auto` (probing autoloads `ip_vs`, which a user-space-only
//! proxy should not do), the process has CAP_NET_ADMIN and the `IPVS` family resolves. It
//! logs its choice once. Then a task syncs on every published snapshot (a `watch` keeps
//! only the latest, so bursts coalesce), every `resync_interval`, and every 2 s while a
//! destination drains. A sync dumps the kernel, diffs, applies the operations and the VIPs.
//! A failing operation is logged and counted and the rest still run; the kernel keeps the
//! last programmed state, so traffic keeps flowing while the next sync retries.

use super::apply::{apply_all, dump};
use super::client::{self, Info, IpvsHandle};
use super::error::IpvsError;
use super::link::VipLink;
use super::reconcile::{self, ActualService, DesiredService, Op, Policy};
use super::status::{IpvsStatus, SyncReport};
use super::types::ServiceKey;
use super::{desired, sysctl};
use crate::config::{Config, Dataplane, IpvsConfig, ServiceConfig};
use crate::service_table::{Snapshot, TableHandle};
use crate::telemetry::metrics;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often a sync runs while destinations drain.
const DRAIN_POLL: Duration = Duration::from_secs(2);
/// Retry delay after a failed sync.
const RETRY: Duration = Duration::from_secs(5);

/// The app's handle on the kernel data plane.
#[derive(Debug)]
pub struct IpvsDataplane {
    kernel: bool,
    status: Arc<Mutex<IpvsStatus>>,
    settings: watch::Sender<IpvsConfig>,
    stop: CancellationToken,
}

impl IpvsDataplane {
    /// Chooses the data plane and, for the kernel, starts the reconciler task.
    pub async fn start(config: &Config, table: &Arc<TableHandle>) -> IpvsDataplane {
        let (settings, settings_rx) = watch::channel(config.ipvs.clone());
        let mut this = IpvsDataplane {
            kernel: false,
            status: Arc::default(),
            settings,
            stop: CancellationToken::new(),
        };
        let asked = config.ipvs.dataplane != Dataplane::Userspace
            || config
                .services
                .iter()
                .any(|s| s.ipvs.dataplane != Dataplane::Userspace);
        let probe = if !asked {
            Err("no service asks for ipvs".to_owned())
        } else if !sysctl::has_net_admin() {
            Err("the process lacks CAP_NET_ADMIN".to_owned())
        } else {
            probe(&config.ipvs.interface)
                .await
                .map_err(|e| e.to_string())
        };
        let mut status = IpvsStatus::default();
        match probe {
            Ok((handle, link, info)) => {
                this.kernel = true;
                status.dataplane = "ipvs";
                status.reason = "ip_vs present and CAP_NET_ADMIN held".into();
                status.kernel = Some(info);
                status.sysctls_not_set = sysctl::apply();
                tracing::info!(version = ?info.version, interface = %config.ipvs.interface, "data plane: kernel ipvs");
                let task = Task {
                    handle,
                    link,
                    status: Arc::clone(&this.status),
                    created: HashSet::new(),
                    drains: HashMap::new(),
                    twos_supported: true,
                    last_desired: None,
                    last_full: None,
                    actual_view: BTreeMap::new(),
                };
                tokio::spawn(task.run(table.subscribe(), settings_rx, this.stop.clone()));
            }
            Err(reason) => {
                status.dataplane = "userspace";
                let explicit: Vec<&str> = config
                    .services
                    .iter()
                    .filter(|s| s.ipvs.dataplane == Dataplane::Ipvs)
                    .map(|s| &*s.name)
                    .collect();
                if !explicit.is_empty() {
                    tracing::error!(%reason, services = %explicit.join(","), "ipvs unavailable: these services run in user space");
                } else if asked {
                    tracing::info!(%reason, "data plane: user space");
                }
                status.reason = reason;
            }
        }
        metrics::ipvs_available(this.kernel);
        *this.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
        this
    }

    /// Whether the kernel serves this service (then no user-space listener is bound).
    pub fn serves(&self, service: &ServiceConfig) -> bool {
        self.kernel && desired::wants_kernel(service)
    }

    /// Takes new `[ipvs]` settings (a reload).
    pub fn configure(&self, config: &IpvsConfig) {
        self.settings.send_if_modified(|current| {
            let changed = current != config;
            *current = config.clone();
            changed
        });
    }

    /// What `/debug/ipvs` shows, shared with the task.
    pub fn status(&self) -> Arc<Mutex<IpvsStatus>> {
        Arc::clone(&self.status)
    }

    /// Stops the task. The kernel keeps the programmed services (a restart adopts them).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn probe(interface: &str) -> Result<(IpvsHandle, VipLink, Info), IpvsError> {
    let (handle, conn) = client::connect().await?;
    tokio::spawn(conn);
    let info = handle.info().await?;
    let (link, conn) = VipLink::open(interface)?;
    tokio::spawn(conn);
    Ok((handle, link, info))
}

/// The reconciler's own state.
struct Task {
    handle: IpvsHandle,
    link: VipLink,
    status: Arc<Mutex<IpvsStatus>>,
    /// Services wanted at some point by this process: owned even after they leave the table.
    created: HashSet<ServiceKey>,
    /// Draining destinations and when their drain began.
    drains: HashMap<(ServiceKey, SocketAddr), Instant>,
    twos_supported: bool,
    /// The desired state of the last error-free sync, to find what changed since.
    last_desired: Option<reconcile::Desired>,
    /// When the last error-free full sync ran, and with which settings.
    last_full: Option<(Instant, IpvsConfig)>,
    /// The kernel as last dumped, for `/debug/ipvs` (never used to diff).
    actual_view: BTreeMap<ServiceKey, ActualService>,
}

impl Task {
    async fn run(
        mut self,
        mut table: watch::Receiver<Arc<Snapshot>>,
        mut settings: watch::Receiver<IpvsConfig>,
        stop: CancellationToken,
    ) {
        // Wait for the first published table: syncing the empty initial one would drain
        // what an earlier run programmed (a restart must adopt, not flush).
        while table.borrow_and_update().generation == 0 {
            tokio::select! {
                () = stop.cancelled() => return,
                changed = table.changed() => if changed.is_err() { return },
            }
        }
        loop {
            let snapshot = Arc::clone(&table.borrow_and_update());
            let config = settings.borrow_and_update().clone();
            let ok = self.sync(&snapshot, &config).await;
            let wait = if !ok {
                RETRY
            } else if self.drains.is_empty() {
                config.resync_interval
            } else {
                DRAIN_POLL.min(config.resync_interval)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                changed = table.changed() => if changed.is_err() { return },
                _ = settings.changed() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One sync; false when the kernel could not even be read.
    ///
    /// A full sync (the first, every `resync_interval`, after new settings or an error)
    /// dumps the destinations of every service Switchyard wants or owns. Otherwise only the
    /// services whose desired state changed since the last sync, and those with draining
    /// destinations, have their destinations dumped and diffed (plus one dump of the
    /// service list), so a one-endpoint change costs a few netlink requests, not one per
    /// service.
    async fn sync(&mut self, snapshot: &Snapshot, config: &IpvsConfig) -> bool {
        let started = Instant::now();
        let desired = desired::desired(snapshot, config.forwarding, self.twos_supported);
        let full = match &self.last_full {
            Some((at, settings)) => at.elapsed() >= config.resync_interval || settings != config,
            None => true,
        };
        let scope: Option<HashSet<ServiceKey>> = match (&self.last_desired, full) {
            (Some(prev), false) => {
                let mut keys: HashSet<_> = self.drains.keys().map(|(k, _)| *k).collect();
                keys.extend(
                    desired
                        .iter()
                        .filter(|(k, d)| prev.get(k) != Some(d))
                        .map(|(k, _)| *k),
                );
                keys.extend(prev.keys().filter(|k| !desired.contains_key(k)));
                Some(keys)
            }
            _ => None,
        };
        self.created.extend(desired.keys().copied());
        let owner = Policy {
            owned_ranges: &config.owned_ranges,
            created: Some(&self.created),
            expired: None,
        };
        let mut report = SyncReport {
            generation: snapshot.generation,
            full: scope.is_none(),
            ..SyncReport::default()
        };
        let actual = match dump(&self.handle, &desired, &owner, scope.as_ref()).await {
            Ok(actual) => actual,
            Err(error) => {
                tracing::warn!(%error, "ipvs sync failed: cannot read the kernel state");
                metrics::ipvs_error(error.label());
                report.errors.push(error.to_string());
                self.finish(report, started, None);
                return false;
            }
        };
        let now = Instant::now();
        let current: HashSet<_> = reconcile::draining(&desired, &actual, &owner)
            .into_iter()
            .collect();
        self.drains.retain(|k, _| current.contains(k));
        for k in current {
            self.drains.entry(k).or_insert(now);
        }
        let expired: HashSet<_> = self
            .drains
            .iter()
            .filter(|(_, since)| now.duration_since(**since) >= config.drain_timeout)
            .map(|(k, _)| *k)
            .collect();
        let scoped: reconcile::Desired;
        let in_scope = match &scope {
            Some(keys) => {
                scoped = desired
                    .iter()
                    .filter(|(k, _)| keys.contains(k))
                    .map(|(k, d)| (*k, d.clone()))
                    .collect();
                &scoped
            }
            None => &desired,
        };
        report.dumped_services = actual.len();
        let ops = reconcile::diff(
            in_scope,
            &actual,
            &Policy {
                expired: Some(&expired),
                ..owner
            },
        );
        let mut gone = HashSet::new();
        for (op, result) in apply_all(&self.handle, &ops).await {
            match result {
                Ok(()) => {
                    metrics::ipvs_operation(op.kind());
                    *report.operations.entry(op.kind()).or_default() += 1;
                    if let Op::DelService(key) = op {
                        gone.insert(*key);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "ipvs operation failed");
                    metrics::ipvs_error(error.label());
                    if error.errno() == Some(2)
                        && matches!(op, Op::AddService(s) | Op::SetService(s) if s.scheduler == "twos")
                    {
                        tracing::warn!(
                            "this kernel has no \"twos\" scheduler (linux 6.4+): using wlc"
                        );
                        self.twos_supported = false;
                    }
                    report.errors.push(error.to_string());
                }
            }
        }
        self.created.retain(|k| !gone.contains(k));
        match &scope {
            Some(keys) => {
                self.actual_view.retain(|k, _| !keys.contains(k));
            }
            None => self.actual_view.clear(),
        }
        self.actual_view.extend(actual);
        let vips: BTreeSet<_> = desired
            .keys()
            .chain(
                self.actual_view
                    .keys()
                    .filter(|k| owner_of(config, &self.created, k) && !gone.contains(k)),
            )
            .map(|k| k.vip.ip())
            .collect();
        if let Err(error) = self.link.sync(&vips).await {
            tracing::warn!(%error, "vip interface sync failed");
            metrics::ipvs_error(error.label());
            report.errors.push(error.to_string());
        }
        if report.errors.is_empty() {
            if scope.is_none() {
                self.last_full = Some((started, config.clone()));
            }
        } else {
            self.last_full = None;
        }
        let view = (
            desired.values().cloned().collect(),
            self.actual_view.values().cloned().collect(),
        );
        self.last_desired = Some(desired);
        self.finish(report, started, Some(view));
        true
    }

    fn finish(
        &self,
        report: SyncReport,
        started: Instant,
        view: Option<(Vec<DesiredService>, Vec<ActualService>)>,
    ) {
        let mut report = report;
        let elapsed = started.elapsed();
        report.duration_ms = elapsed.as_secs_f64() * 1000.0;
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.syncs += 1;
        status.errors += report.errors.len() as u64;
        if let Some((desired, actual)) = view {
            let dests: usize = desired.iter().map(|d| d.dests.len()).sum();
            metrics::ipvs_sync(
                report.errors.is_empty(),
                elapsed,
                desired.len(),
                dests,
                self.drains.len(),
            );
            status.desired = desired;
            status.actual = actual;
        } else {
            metrics::ipvs_sync(false, elapsed, status.desired.len(), 0, self.drains.len());
        }
        let now = Instant::now();
        status.draining = self
            .drains
            .iter()
            .map(|((k, a), since)| (*k, *a, now.duration_since(*since).as_secs()))
            .collect();
        tracing::debug!(generation = report.generation, ms = report.duration_ms, ops = ?report.operations, "ipvs synced");
        status.last_sync = Some(report);
    }
}

fn owner_of(config: &IpvsConfig, created: &HashSet<ServiceKey>, key: &ServiceKey) -> bool {
    Policy {
        owned_ranges: &config.owned_ranges,
        created: Some(created),
        expired: None,
    }
    .owns(key)
}

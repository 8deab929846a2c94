//! `/debug/overview`: everything the dashboard page shows, in one JSON document.
//!
//! Built per request from what is already held elsewhere (the table snapshot, the sampler's
//! rings, the certificate board, the recent control-plane events, the IPVS status), so a
//! request costs a copy of those and nothing while nobody asks. The routes are the one thing
//! the table does not keep in a readable form; [`RouteBoard`] holds them, replaced whole on
//! every applied config.

use super::AdminState;
use super::certs::CertInfo;
use super::sampler::{self, Point};
use super::table::{ServiceView, table_view};
use crate::config::{HttpConfig, RouteSource};
use crate::telemetry::recent;
use arc_swap::ArcSwap;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The running config's routes and hosts, replaced whole on every apply.
pub type RouteBoard = Arc<ArcSwap<Routes>>;

/// Routes and hosts of the running config.
#[derive(Debug, Default, Serialize)]
pub struct Routes {
    /// HTTP routes in config order (the file's first).
    pub routes: Vec<RouteView>,
    /// Per-host settings.
    pub hosts: Vec<HostView>,
}

/// One HTTP route.
#[derive(Debug, Serialize)]
pub struct RouteView {
    /// The `route` metric label.
    pub name: String,
    /// Host pattern (`*`: any).
    pub host: String,
    /// Path.
    pub path: String,
    /// `Exact`, `Prefix`, … as in Kubernetes.
    pub path_type: crate::ingress::PathType,
    /// Target service (empty for a redirect).
    pub service: String,
    /// Where it came from.
    pub source: RouteSource,
}

/// One host's settings.
#[derive(Debug, Serialize)]
pub struct HostView {
    /// Host pattern.
    pub host: String,
    /// Plain HTTP is redirected to https.
    pub redirect_https: bool,
    /// Service for requests matching no route.
    pub default_service: Option<String>,
}

impl Routes {
    /// The view of `http`.
    pub fn of(http: &HttpConfig) -> Routes {
        Routes {
            routes: http
                .routes
                .iter()
                .map(|r| RouteView {
                    name: r.name.to_string(),
                    host: r
                        .host
                        .as_ref()
                        .map_or_else(|| "*".into(), ToString::to_string),
                    path: r.path.clone(),
                    path_type: r.path_type,
                    service: r.service.to_string(),
                    source: r.source.clone(),
                })
                .collect(),
            hosts: http
                .hosts
                .iter()
                .map(|h| HostView {
                    host: h.host.to_string(),
                    redirect_https: h.redirect_https,
                    default_service: h.default_service.as_deref().map(str::to_owned),
                })
                .collect(),
        }
    }
}

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Overview {
    /// Binary version.
    pub version: &'static str,
    /// Now (Unix seconds), by the proxy's clock.
    pub now: f64,
    /// Process start (Unix seconds).
    pub started: f64,
    /// What `/readyz` says.
    pub ready: bool,
    /// Snapshot generation.
    pub generation: u64,
    /// Seconds between two points of a series.
    pub sample_seconds: u64,
    /// Microseconds the sampler's last round took.
    pub sample_cost_us: u64,
    /// Services with their endpoints and series.
    pub services: Vec<ServiceOverview>,
    /// Routes and hosts.
    pub http: Arc<Routes>,
    /// Certificates.
    pub certificates: Arc<Vec<CertInfo>>,
    /// Kubernetes watchers (empty without the Kubernetes source).
    pub kubernetes: recent::Kube,
    /// IPVS data plane.
    pub ipvs: IpvsOverview,
    /// Last reloads, newest last.
    pub reloads: Vec<recent::Reload>,
}

/// One service: the table's view and its series.
#[derive(Debug, Serialize)]
pub struct ServiceOverview {
    /// As in `/debug/table`.
    #[serde(flatten)]
    pub table: ServiceView,
    /// Points, oldest first.
    pub series: Vec<Point>,
}

/// The IPVS status without the per-service lists (`/debug/ipvs` has them).
#[derive(Debug, Serialize)]
pub struct IpvsOverview {
    /// `ipvs` or `userspace`.
    pub dataplane: &'static str,
    /// Why, in words.
    pub reason: String,
    /// Syncs since start.
    pub syncs: u64,
    /// Failed operations since start.
    pub errors: u64,
    /// The last sync.
    pub last_sync: Option<crate::ipvs::status::SyncReport>,
    /// Virtual services wanted.
    pub services: usize,
    /// Destinations draining.
    pub draining: usize,
}

/// Builds the document.
pub fn build(state: &AdminState) -> Overview {
    let table = table_view(&state.table.load());
    let services = {
        let rings = state
            .rings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .services
            .into_iter()
            .map(|s| ServiceOverview {
                series: rings.series(&s.name),
                table: s,
            })
            .collect()
    };
    let sample_cost_us = state.rings.lock().map_or(0, |r| r.last_cost_us);
    let ipvs = {
        let s = state
            .ipvs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        IpvsOverview {
            dataplane: s.dataplane,
            reason: s.reason.clone(),
            syncs: s.syncs,
            errors: s.errors,
            last_sync: s.last_sync.clone(),
            services: s.desired.len(),
            draining: s.draining.len(),
        }
    };
    Overview {
        version: env!("CARGO_PKG_VERSION"),
        now: recent::now(),
        started: state.started,
        ready: state.ready.load(Ordering::Relaxed),
        generation: table.generation,
        sample_seconds: sampler::SAMPLE_EVERY.as_secs(),
        sample_cost_us,
        services,
        http: state.routes.load_full(),
        certificates: state.certs.load_full(),
        kubernetes: recent::kube(),
        ipvs,
        reloads: recent::reloads(),
    }
}

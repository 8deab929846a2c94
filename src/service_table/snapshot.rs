//! Immutable snapshots of the service table.

use super::{Endpoint, EndpointState};
use crate::balance::{self, Pick};
use crate::config::ServiceConfig;
use crate::telemetry::metrics::ServiceMetrics;
use crossbeam_utils::CachePadded;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// One immutable version of the whole table.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub generation: u64,
    /// Looked up per request: foldhash, not SipHash (the keys are the config's, so a client's
    /// lookups cannot be made to collide).
    services: imbl::GenericHashMap<
        Arc<str>,
        Arc<Service>,
        foldhash::fast::RandomState,
        imbl::shared_ptr::DefaultSharedPtr,
    >,
    /// HTTP routes (host + path → service name).
    pub http: Arc<crate::ingress::HttpRoutes>,
    /// SNI names passed through undecrypted on TLS listeners (→ service name).
    pub passthrough: Arc<crate::tls::PassthroughTable>,
}

impl Snapshot {
    /// The service with this name.
    pub fn service(&self, name: &str) -> Option<&Arc<Service>> {
        self.services.get(name)
    }

    /// All services, in no particular order.
    pub fn services(&self) -> impl Iterator<Item = &Arc<Service>> {
        self.services.values()
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The table for exactly `configs`: unchanged services are shared, changed ones rebuilt
    /// with their live state carried over, missing ones dropped.
    pub fn rebuild(&self, configs: &[ServiceConfig]) -> Snapshot {
        let mut next = self.clone();
        let keep: std::collections::HashSet<&str> = configs.iter().map(|c| &*c.name).collect();
        let gone: Vec<Arc<str>> = next
            .services
            .keys()
            .filter(|name| !keep.contains(&***name))
            .cloned()
            .collect();
        for name in gone {
            next.services.remove(&name);
        }
        for config in configs {
            next = next.with_service(config);
        }
        next
    }

    /// This table with one service inserted or replaced: costs O(that service), not O(table).
    /// An identical config keeps the existing `Arc<Service>`.
    pub fn with_service(&self, config: &ServiceConfig) -> Snapshot {
        let prev = self.services.get(&*config.name);
        if prev.is_some_and(|p| p.config == *config) {
            return self.clone();
        }
        let service = Arc::new(Service::build(config.clone(), prev.map(|p| &**p)));
        let mut next = self.clone();
        next.services.insert(Arc::clone(&config.name), service);
        next
    }

    /// This table with other HTTP routes.
    pub fn with_http(mut self, http: crate::ingress::HttpRoutes) -> Snapshot {
        self.http = Arc::new(http);
        self
    }

    /// This table with other passthrough names.
    pub fn with_passthrough(mut self, passthrough: crate::tls::PassthroughTable) -> Snapshot {
        self.passthrough = Arc::new(passthrough);
        self
    }

    /// This table without the named service.
    pub fn without_service(&self, name: &str) -> Snapshot {
        let mut next = self.clone();
        next.services.remove(name);
        next
    }
}

/// One virtual service in a snapshot.
#[derive(Debug)]
pub struct Service {
    /// The config it was built from.
    pub config: ServiceConfig,
    /// Endpoints in config order.
    pub endpoints: Vec<Endpoint>,
    /// State that lives across snapshots of this service.
    pub live: Arc<ServiceLive>,
    picker: Box<dyn Pick>,
}

/// Per-service state that survives snapshot swaps.
///
/// `active` and `closed` are written by every connection's open and close, on every worker;
/// each has a cache line of its own, so those writes do not also evict the read-mostly metric
/// handles and client pointer every request reads.
#[derive(Debug)]
pub struct ServiceLive {
    /// Open connections (TCP) or flows (UDP).
    pub active: CachePadded<AtomicUsize>,
    /// Woken whenever a connection closes, for listeners waiting under `max_connections`.
    pub closed: CachePadded<Notify>,
    /// Metric handles, registered once.
    pub metrics: ServiceMetrics,
    /// Pooled HTTP client for L7 traffic, created on first use (its pool outlives snapshots).
    pub http_client: arc_swap::ArcSwapOption<crate::upstream::http::HttpClient>,
}

impl Service {
    /// Builds a service; `prev` (the same service in the previous snapshot) lends its live
    /// state and the state of endpoints that kept their address.
    pub fn build(config: ServiceConfig, prev: Option<&Service>) -> Service {
        let old: HashMap<SocketAddr, &Arc<EndpointState>> = prev
            .map(|p| p.endpoints.iter().map(|e| (e.address, &e.state)).collect())
            .unwrap_or_default();
        let endpoints: Vec<Endpoint> = config
            .endpoints
            .iter()
            .map(|e| {
                let state = old
                    .get(&e.address)
                    .map_or_else(Default::default, |s| Arc::clone(s));
                Endpoint::new(e.address, e.weight, state)
            })
            .collect();
        let picker = balance::build(config.scheduler, &endpoints, config.mh_table_size);
        let live = prev.map_or_else(
            || {
                Arc::new(ServiceLive {
                    active: CachePadded::new(AtomicUsize::new(0)),
                    closed: CachePadded::new(Notify::new()),
                    metrics: ServiceMetrics::new(&config.name),
                    http_client: arc_swap::ArcSwapOption::empty(),
                })
            },
            |p| Arc::clone(&p.live),
        );
        live.metrics.set_endpoints(&endpoints);
        Service {
            config,
            endpoints,
            live,
            picker,
        }
    }

    /// Picks an endpoint for a new connection or request with affinity key `key` (a client
    /// address converts), skipping the indices in `tried`.
    /// Endpoints benched by passive health are avoided while any other is left; when all are
    /// benched one of them is tried anyway, since a guess beats a certain failure.
    pub fn pick(&self, key: impl Into<balance::Key>, tried: &[usize]) -> Option<usize> {
        let key = key.into();
        let fresh = |i: usize| !tried.contains(&i) && !self.endpoints[i].state.is_benched();
        self.picker.pick(&self.endpoints, key, &fresh).or_else(|| {
            self.picker
                .pick(&self.endpoints, key, &|i| !tried.contains(&i))
        })
    }

    /// Open connections (TCP) or flows (UDP) of this service.
    pub fn active(&self) -> usize {
        self.live.active.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;

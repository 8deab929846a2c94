//! The table as JSON: `/debug/table`, and the services of `/debug/overview`.

use crate::service_table::{Service, Snapshot};
use serde::Serialize;
use std::net::SocketAddr;

/// `/debug/table` body.
#[derive(Debug, Serialize)]
pub struct TableView {
    /// Snapshot generation.
    pub generation: u64,
    /// Services sorted by name.
    pub services: Vec<ServiceView>,
}

/// One service in `/debug/table`.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Configured L4 listen address (absent for HTTP-only services).
    pub listen: Option<SocketAddr>,
    /// `tcp` or `udp`.
    pub protocol: crate::config::Protocol,
    /// Scheduler name.
    pub scheduler: crate::balance::Scheduler,
    /// Open connections (UDP: flows).
    pub active: usize,
    /// Endpoints in config order.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint in `/debug/table`.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    /// Address.
    pub address: SocketAddr,
    /// Weight (0: draining).
    pub weight: u32,
    /// Open connections.
    pub active: u32,
    /// Consecutive connect failures.
    pub failures: u32,
    /// Benched by passive health right now.
    pub benched: bool,
    /// `active`, `draining` (weight 0) or `benched`.
    pub state: &'static str,
}

/// The JSON view of a snapshot.
pub fn table_view(snapshot: &Snapshot) -> TableView {
    let mut services: Vec<ServiceView> = snapshot.services().map(|s| service_view(s)).collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    TableView {
        generation: snapshot.generation,
        services,
    }
}

fn service_view(s: &Service) -> ServiceView {
    ServiceView {
        name: s.config.name.to_string(),
        listen: s.config.listen,
        protocol: s.config.protocol,
        scheduler: s.config.scheduler,
        active: s.active(),
        endpoints: s
            .endpoints
            .iter()
            .map(|e| EndpointView {
                address: e.address,
                weight: e.weight,
                active: e.state.active(),
                failures: e.state.failures(),
                benched: e.state.is_benched(),
                state: if e.state.is_benched() {
                    "benched"
                } else if e.weight == 0 {
                    "draining"
                } else {
                    "active"
                },
            })
            .collect(),
    }
}

//! What `/debug/ipvs` shows: the data plane chosen and why, desired vs actual, drains and
//! the last sync. The reconciler task writes it after every sync; the admin endpoint reads
//! it (a mutex held only to copy or swap these values, never across a netlink call).

use super::client::Info;
use super::reconcile::{ActualService, DesiredService};
use super::types::ServiceKey;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// What `/debug/ipvs` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IpvsStatus {
    /// `ipvs` or `userspace`.
    pub dataplane: &'static str,
    /// Why, in words.
    pub reason: String,
    /// The kernel's IPVS version, when in use.
    pub kernel: Option<Info>,
    /// Sysctls that could not be set, with the error.
    pub sysctls_not_set: Vec<(String, String)>,
    /// Syncs done and failed operations since start.
    pub syncs: u64,
    /// Failed operations since start.
    pub errors: u64,
    /// The last sync.
    pub last_sync: Option<SyncReport>,
    /// Desired services (from the table).
    pub desired: Vec<DesiredService>,
    /// Kernel services Switchyard looked at (desired or owned), as dumped before the sync.
    pub actual: Vec<ActualService>,
    /// Destinations draining, with seconds since their drain began.
    pub draining: Vec<(ServiceKey, SocketAddr, u64)>,
}

/// One sync's outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Snapshot generation synced.
    pub generation: u64,
    /// Whether every wanted or owned service was dumped (else only the changed ones).
    pub full: bool,
    /// Services whose destinations were dumped.
    pub dumped_services: usize,
    /// Wall time of the whole sync, in milliseconds.
    pub duration_ms: f64,
    /// Operations applied, by kind.
    pub operations: BTreeMap<&'static str, usize>,
    /// Errors, one line each.
    pub errors: Vec<String>,
}

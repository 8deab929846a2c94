//! Schedulers: how a service picks one of its endpoints for a new connection.
//!
//! The names and meanings follow IPVS (`ipvsadm -s`), so a user moving from kube-proxy or
//! keepalived finds what they know. A picker is built once per snapshot of a service (like
//! pingora's `BackendSelection::build`), holding whatever precomputed state its algorithm
//! needs (a Maglev table, a weighted schedule); per connection it does only a lookup plus, for
//! the stateful ones, one atomic increment. It never locks.
//!
//! Shared rules for every scheduler:
//! - endpoints with weight 0 are never picked (that is how a drain works);
//! - the caller passes `usable`, which says no to endpoints already tried for this connection
//!   and to endpoints that passive health has benched; a picker then moves on to another one
//!   (the IPVS `*-fallback` behaviour) and returns `None` only when nothing is usable;
//! - hash-based pickers (`sh`, `mh`) depend only on the set of endpoints and their weights,
//!   never on their order, so rebuilding a snapshot does not move clients;
//! - a picker is given a [`Key`]: the client's address, or a key an HTTP route hashes on
//!   (`hash_on`). Only `sh` and `mh` look at it.

mod cursor;
mod hash;
mod key;
mod lc;
mod maglev;
mod rr;
mod sh;
mod twos;
mod wrr;

pub use hash::hash_ip;
pub use key::Key;

use crate::service_table::Endpoint;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Scheduler names, as `ipvsadm -s` spells them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Round robin over endpoints with weight > 0.
    #[default]
    Rr,
    /// Smooth weighted round robin (nginx's algorithm: no bursts to the heavy endpoint).
    Wrr,
    /// Least active connections.
    Lc,
    /// Least active connections relative to weight.
    Wlc,
    /// Source-IP hash (a 256-bucket table, as in `ip_vs_sh`).
    Sh,
    /// Maglev consistent hashing of the source IP (as in `ip_vs_mh`).
    Mh,
    /// Weighted random two choices: draw two by weight, take the less loaded one.
    Twos,
}

impl Scheduler {
    /// All schedulers, for tests and benches.
    pub const ALL: [Scheduler; 7] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Twos,
    ];

    /// The IPVS name.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sh => "sh",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
        }
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built scheduler for one snapshot of one service.
pub trait Pick: Send + Sync + fmt::Debug {
    /// Chooses the index of an endpoint in `endpoints` (the same slice the picker was built
    /// from) for a connection or request with affinity key `key`, among those `usable`
    /// accepts.
    fn pick(
        &self,
        endpoints: &[Endpoint],
        key: Key,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<usize>;
}

/// Builds the picker for `scheduler` over `endpoints`. `mh_table_size` is used by `mh` only
/// and must be prime (the config checks it).
pub fn build(scheduler: Scheduler, endpoints: &[Endpoint], mh_table_size: u32) -> Box<dyn Pick> {
    match scheduler {
        Scheduler::Rr => Box::new(rr::RoundRobin::new(endpoints)),
        Scheduler::Wrr => Box::new(wrr::SmoothWeighted::new(endpoints)),
        Scheduler::Lc => Box::new(lc::LeastConn::new(endpoints, false)),
        Scheduler::Wlc => Box::new(lc::LeastConn::new(endpoints, true)),
        Scheduler::Sh => Box::new(sh::SourceHash::new(endpoints)),
        Scheduler::Mh => Box::new(maglev::Maglev::new(endpoints, mh_table_size)),
        Scheduler::Twos => Box::new(twos::TwoChoices::new(endpoints)),
    }
}

/// Indices of the endpoints that may get new connections (weight > 0), in slice order.
fn eligible(endpoints: &[Endpoint]) -> Vec<usize> {
    (0..endpoints.len())
        .filter(|&i| endpoints[i].weight > 0)
        .collect()
}

#[cfg(test)]
pub(crate) mod testutil;

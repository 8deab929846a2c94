//! The pure reconciler: `diff(desired, actual) -> Vec<Op>`.
//!
//! `desired` comes from the table snapshot, `actual` from a kernel dump. The diff emits only
//! what differs, so the number of netlink operations per sync is proportional to what
//! changed, not to the table. Rules:
//!
//! - a desired service missing from the kernel is added with its destinations; one whose
//!   scheduler, flags or persistence differ is edited in place (`SET_SERVICE`, connections
//!   stay);
//! - a destination that left the config drains: TCP first gets weight 0 (no new
//!   connections) and is deleted once it has no active connection or its drain deadline
//!   passed (`expired`); a destination without any connection is deleted at once; UDP is
//!   deleted at once (a weight-0 UDP destination keeps catching the flows of clients that
//!   reuse their source port: kube-proxy's stuck-UDP bug);
//! - a kernel service not desired is touched only when Switchyard owns it (it created it in
//!   this process, or its VIP is in an owned range); it drains the same way and is deleted
//!   when no destination is left. Foreign services are never touched.

use super::types::{DestSpec, DestState, ServiceKey, ServiceSpec};
use crate::config::Protocol;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

/// One operation on the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Op {
    /// `ipvsadm -A`.
    AddService(ServiceSpec),
    /// `ipvsadm -E`.
    SetService(ServiceSpec),
    /// `ipvsadm -D`.
    DelService(ServiceKey),
    /// `ipvsadm -a`.
    AddDest(ServiceKey, DestSpec),
    /// `ipvsadm -e` (also: weight 0 to start a drain).
    SetDest(ServiceKey, DestSpec),
    /// `ipvsadm -d`.
    DelDest(ServiceKey, SocketAddr),
}

impl Op {
    /// The metric label of this kind of operation.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::AddService(_) => "add_service",
            Op::SetService(_) => "set_service",
            Op::DelService(_) => "del_service",
            Op::AddDest(..) => "add_dest",
            Op::SetDest(..) => "set_dest",
            Op::DelDest(..) => "del_dest",
        }
    }
}

/// A service as it should be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DesiredService {
    /// The service.
    pub spec: ServiceSpec,
    /// Its destinations by address.
    pub dests: BTreeMap<SocketAddr, DestSpec>,
}

/// A service as the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActualService {
    /// The service.
    pub spec: ServiceSpec,
    /// Its destinations by address, with connection counts.
    pub dests: BTreeMap<SocketAddr, DestState>,
}

/// Desired state, by service key.
pub type Desired = BTreeMap<ServiceKey, DesiredService>;
/// Kernel state, by service key.
pub type Actual = BTreeMap<ServiceKey, ActualService>;

/// What the diff needs besides the two states.
#[derive(Debug, Default, Clone, Copy)]
pub struct Policy<'a> {
    /// VIP ranges whose services Switchyard owns.
    pub owned_ranges: &'a [ipnet::IpNet],
    /// Services this process created or wanted (owned even outside the ranges).
    pub created: Option<&'a HashSet<ServiceKey>>,
    /// Draining destinations whose deadline has passed.
    pub expired: Option<&'a HashSet<(ServiceKey, SocketAddr)>>,
}

impl Policy<'_> {
    /// Whether Switchyard may change or delete this kernel service.
    pub fn owns(&self, key: &ServiceKey) -> bool {
        self.created.is_some_and(|c| c.contains(key))
            || self.owned_ranges.iter().any(|r| r.contains(&key.vip.ip()))
    }

    fn expired(&self, key: ServiceKey, dest: SocketAddr) -> bool {
        self.expired.is_some_and(|e| e.contains(&(key, dest)))
    }
}

/// The operations that move `actual` to `desired`, services in key order, a service's own
/// operation before its destinations' (and its deletion after them).
pub fn diff(desired: &Desired, actual: &Actual, policy: &Policy<'_>) -> Vec<Op> {
    let mut ops = Vec::new();
    for (key, want) in desired {
        match actual.get(key) {
            None => {
                ops.push(Op::AddService(want.spec.clone()));
                ops.extend(want.dests.values().map(|d| Op::AddDest(*key, *d)));
            }
            Some(have) => {
                if have.spec != want.spec {
                    ops.push(Op::SetService(want.spec.clone()));
                }
                for (addr, d) in &want.dests {
                    match have.dests.get(addr) {
                        None => ops.push(Op::AddDest(*key, *d)),
                        Some(h) if h.spec != *d => ops.push(Op::SetDest(*key, *d)),
                        Some(_) => {}
                    }
                }
                for (addr, h) in &have.dests {
                    if !want.dests.contains_key(addr) {
                        ops.extend(drain(*key, h, policy));
                    }
                }
            }
        }
    }
    for (key, have) in actual {
        if desired.contains_key(key) || !policy.owns(key) {
            continue;
        }
        let dest_ops: Vec<Op> = have
            .dests
            .values()
            .flat_map(|h| drain(*key, h, policy))
            .collect();
        let deleted = dest_ops
            .iter()
            .filter(|o| matches!(o, Op::DelDest(..)))
            .count();
        if deleted == have.dests.len() {
            ops.push(Op::DelService(*key));
        } else {
            ops.extend(dest_ops);
        }
    }
    ops
}

/// The next step of draining one destination that is no longer wanted.
fn drain(key: ServiceKey, have: &DestState, policy: &Policy<'_>) -> Option<Op> {
    let idle = have.active == 0 && (have.inactive == 0 || have.spec.weight == 0);
    if key.protocol == Protocol::Udp || idle || policy.expired(key, have.spec.addr) {
        Some(Op::DelDest(key, have.spec.addr))
    } else if have.spec.weight != 0 {
        Some(Op::SetDest(
            key,
            DestSpec {
                weight: 0,
                ..have.spec
            },
        ))
    } else {
        None
    }
}

/// Destinations that are draining now (weight 0, not wanted, connections left): the task
/// starts their deadlines.
pub fn draining(
    desired: &Desired,
    actual: &Actual,
    policy: &Policy<'_>,
) -> Vec<(ServiceKey, SocketAddr)> {
    let mut out = Vec::new();
    for (key, have) in actual {
        let want = desired.get(key);
        if (want.is_none() && !policy.owns(key)) || key.protocol == Protocol::Udp {
            continue;
        }
        for addr in have.dests.keys() {
            if !want.is_some_and(|w| w.dests.contains_key(addr)) {
                out.push((*key, *addr));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;

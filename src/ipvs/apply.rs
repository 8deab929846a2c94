//! Reading and writing the kernel for one sync: the dump and the ordered, pipelined apply.
//!
//! Dumps run one at a time (the kernel allows one dump in progress per netlink socket; a
//! second gets `EBUSY`). Writes are pipelined, [`IN_FLIGHT`] at a time, in three phases
//! that keep the kernel's order constraints.

use super::client::IpvsHandle;
use super::error::IpvsError;
use super::reconcile::{Actual, ActualService, Desired, Op, Policy};
use super::types::ServiceKey;

/// Netlink requests in flight at once during a sync.
pub const IN_FLIGHT: usize = 16;

/// Dumps the kernel: every service, and the destinations of those Switchyard wants or owns
/// (only those in `scope`, when given).
/// One dump at a time: the kernel allows a single dump in progress per netlink socket
/// (a second one gets `EBUSY`).
pub async fn dump(
    handle: &IpvsHandle,
    desired: &Desired,
    policy: &Policy<'_>,
    scope: Option<&std::collections::HashSet<ServiceKey>>,
) -> Result<Actual, IpvsError> {
    let ours: Vec<_> = handle
        .services()
        .await?
        .into_iter()
        .filter(|s| desired.contains_key(&s.key) || policy.owns(&s.key))
        .filter(|s| scope.is_none_or(|keys| keys.contains(&s.key)))
        .collect();
    let mut actual = Actual::new();
    for chunk in ours.chunks(IN_FLIGHT) {
        let dumps = futures::future::join_all(chunk.iter().map(|s| handle.dests(&s.key))).await;
        for (spec, dests) in chunk.iter().zip(dumps) {
            let dests = dests?.into_iter().map(|d| (d.spec.addr, d)).collect();
            actual.insert(
                spec.key,
                ActualService {
                    spec: spec.clone(),
                    dests,
                },
            );
        }
    }
    Ok(actual)
}

/// Applies `ops` in three phases that keep the kernel's order constraints (services before
/// their destinations, destinations before their service's deletion), each phase with up
/// to [`IN_FLIGHT`] requests on the wire: one round trip per operation would make a
/// 10,000-service first sync take minutes.
pub async fn apply_all<'a>(
    handle: &IpvsHandle,
    ops: &'a [Op],
) -> Vec<(&'a Op, Result<(), IpvsError>)> {
    let phase = |op: &Op| match op {
        Op::AddService(_) | Op::SetService(_) => 0,
        Op::AddDest(..) | Op::SetDest(..) | Op::DelDest(..) => 1,
        Op::DelService(_) => 2,
    };
    let mut out = Vec::with_capacity(ops.len());
    for p in 0..3 {
        let batch: Vec<&Op> = ops.iter().filter(|op| phase(op) == p).collect();
        for chunk in batch.chunks(IN_FLIGHT) {
            let results = futures::future::join_all(chunk.iter().map(|op| apply(handle, op))).await;
            out.extend(chunk.iter().copied().zip(results));
        }
    }
    out
}

/// Applies one operation.
pub async fn apply(h: &IpvsHandle, op: &Op) -> Result<(), IpvsError> {
    match op {
        Op::AddService(s) => h.add_service(s).await,
        Op::SetService(s) => h.set_service(s).await,
        Op::DelService(k) => h.del_service(k).await,
        Op::AddDest(k, d) => h.add_dest(k, d).await,
        Op::SetDest(k, d) => h.set_dest(k, d).await,
        Op::DelDest(k, a) => h.del_dest(k, *a).await,
    }
}

//! Kernel IPVS data plane: program Linux IPVS from the service table, like kube-proxy's IPVS
//! mode, but incrementally and with drains that work.
//!
//! ```text
//! TableHandle::subscribe ─┐                        ┌─> client (genetlink "IPVS") ─> kernel
//! periodic resync ────────┴─> task: dump kernel ──> reconcile::diff(desired, actual) ─> ops
//!                                                  └─> link (rtnetlink): VIPs on switchyard0
//! ```
//!
//! - [`genl`], [`nla`], [`types`], [`request`]: the messages, their attributes, typed objects
//!   and one request builder per `ipvsadm` command; decoding never panics and skips what it
//!   does not know.
//! - [`client`]: the connection task and cloneable handle.
//! - [`reconcile`]: the pure diff. The diff's kernel side is always freshly dumped (all of
//!   it on full syncs, the changed services on table changes), never remembered, so a
//!   restart adopts what is there instead of flushing it.
//! - [`apply`]: the dump and the pipelined apply of one sync;
//! - [`task`]: the reconciler task (subscribe, resync, drain deadlines, metrics).
//! - [`link`]: the dummy interface and its VIP addresses; [`sysctl`]: the knobs IPVS needs.
//!
//! Ownership: Switchyard only touches kernel services whose protocol+VIP:port it wants, or
//! whose VIP lies in `[ipvs].owned_ranges`. Everything else in the kernel is someone else's.

pub mod apply;
pub mod client;

pub mod desired;
pub mod error;
pub mod genl;
pub mod link;
pub mod nla;
pub mod reconcile;
pub mod request;
pub mod status;
pub mod sysctl;
pub mod task;
pub mod types;

pub use client::{IpvsHandle, connect};
pub use error::IpvsError;
pub use status::IpvsStatus;
pub use task::IpvsDataplane;
pub use types::{DestSpec, DestState, ServiceKey, ServiceSpec};

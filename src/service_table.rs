//! The VIP → endpoints table the data path reads.
//!
//! Readers (every new connection) do one [`TableHandle::load`], look their service up and
//! pick an endpoint: no lock, no allocation. Writers (the config reloader, later the kube
//! watcher) build a new immutable [`Snapshot`] and publish it. Snapshots are persistent maps
//! (`imbl`'s HAMT) of `Arc<Service>`, so replacing one service copies O(log N) map nodes plus
//! that service and shares every other `Arc<Service>` with the previous snapshot.

mod endpoint;
mod handle;
mod snapshot;

pub use endpoint::{ActiveGuard, Endpoint, EndpointState};
pub use handle::TableHandle;
pub use snapshot::{Service, ServiceLive, Snapshot};

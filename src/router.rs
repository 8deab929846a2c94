//! The data path: one listener per service, TCP and UDP proxying.
//!
//! - [`listener`] accepts TCP connections (backoff on errors, `max_connections`) and hands
//!   each to [`tcp`], which connects upstream and runs [`copy`] until both sides are done;
//! - [`udp`] keeps one flow per client address and relays datagrams both ways.
//!
//! Every connection task knows its service through an `Arc<Service>` taken from one snapshot
//! load, so table changes never touch it: removing an endpoint or a whole service only stops
//! *new* connections, and open ones drain.

pub mod cancel;
pub mod copy;
pub mod http;
pub mod http3;
pub mod listener;
pub mod proxy_header;
pub mod tcp;
pub mod udp;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every listener needs to stop and to let its connections drain.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Cancelled to stop accepting on this listener.
    pub stop_accepting: CancellationToken,
    /// Cancelled when the drain deadline has passed: open connections close. Always cancelled
    /// after every listener's `stop_accepting` (HTTP connections wait on it only then).
    pub force_close: CancellationToken,
    /// Tracks connection tasks, so shutdown can wait for them.
    pub connections: TaskTracker,
}

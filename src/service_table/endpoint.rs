//! Endpoints and their live state.
//!
//! An [`Endpoint`] is immutable snapshot data (address, weight) plus an `Arc` of
//! [`EndpointState`], the counters that live *across* snapshots: active connections (for `lc`,
//! `wlc`, `twos` and `/debug/table`) and passive-health marks. When a snapshot is rebuilt, the
//! state `Arc` of an endpoint with the same address is carried over, so a reload never resets
//! counters; a connection holds an [`ActiveGuard`] on the state itself, so it is counted
//! correctly even after its endpoint left the table.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One real server in a snapshot.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where to connect.
    pub address: SocketAddr,
    /// Relative weight; 0 means drain: no new connections.
    pub weight: u32,
    /// Live counters, shared with earlier and later snapshots.
    pub state: Arc<EndpointState>,
    /// `address` as a URI authority, rendered once for the HTTP requests sent to it.
    pub authority: http::uri::Authority,
}

impl Endpoint {
    /// An endpoint with `state` (fresh, or carried over from an earlier snapshot).
    pub fn new(address: SocketAddr, weight: u32, state: Arc<EndpointState>) -> Endpoint {
        // A socket address always renders as a valid authority (`1.2.3.4:80`, `[::1]:80`);
        // the fallback is unreachable.
        let authority = http::uri::Authority::try_from(address.to_string())
            .unwrap_or_else(|_| http::uri::Authority::from_static("0.0.0.0:0"));
        Endpoint {
            address,
            weight,
            state,
            authority,
        }
    }
}

/// Counters of one endpoint that survive snapshot swaps.
///
/// Aligned to a cache line: each connection's open and close writes `active`, from every
/// worker, and without the alignment two endpoints' states (32 bytes each with the `Arc`'s
/// counts) share a line, so workers serving different endpoints would still evict each other's.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct EndpointState {
    active: AtomicU32,
    failures: AtomicU32,
    /// Benched until this many milliseconds after [`epoch`]; 0 means not benched.
    down_until_ms: AtomicU64,
}

impl EndpointState {
    /// Connections open to this endpoint right now.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Counts a new connection; the count drops when the guard is dropped.
    pub fn open(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(Arc::clone(self))
    }

    /// Whether passive health has benched this endpoint at this moment.
    pub fn is_benched(&self) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        until != 0 && now_ms() < until
    }

    /// Records a failed connect; after `max_failures` in a row the endpoint is benched for
    /// `backoff`. Returns true when this failure benched it.
    pub fn record_failure(
        &self,
        max_failures: Option<std::num::NonZeroU32>,
        backoff: Duration,
    ) -> bool {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        match max_failures {
            Some(max) if n >= max.get() => {
                let until = now_ms() + backoff.as_millis() as u64;
                self.down_until_ms.store(until.max(1), Ordering::Relaxed);
                self.failures.store(0, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Records a successful connect: clears failures and any bench.
    pub fn record_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.down_until_ms.load(Ordering::Relaxed) != 0 {
            self.down_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// Keeps one connection counted in [`EndpointState::active`] while it lives.
#[derive(Debug)]
pub struct ActiveGuard(Arc<EndpointState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds since the first call in this process (monotonic).
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    #[test]
    fn guard_counts_active_connections() {
        let state = Arc::new(EndpointState::default());
        let a = state.open();
        let b = state.open();
        assert_eq!(state.active(), 2);
        drop(a);
        assert_eq!(state.active(), 1);
        drop(b);
        assert_eq!(state.active(), 0);
    }

    #[test]
    fn endpoint_is_benched_after_max_failures_and_cleared_by_success() {
        let state = EndpointState::default();
        let max = NonZeroU32::new(2);
        assert!(!state.record_failure(max, Duration::from_secs(60)));
        assert!(!state.is_benched());
        assert!(state.record_failure(max, Duration::from_secs(60)));
        assert!(state.is_benched());
        state.record_success();
        assert!(!state.is_benched());
    }

    #[test]
    fn bench_expires_after_backoff() {
        let state = EndpointState::default();
        state.record_failure(NonZeroU32::new(1), Duration::ZERO);
        assert!(!state.is_benched());
    }

    #[test]
    fn failures_never_bench_when_disabled() {
        let state = EndpointState::default();
        for _ in 0..10 {
            assert!(!state.record_failure(None, Duration::from_secs(60)));
        }
        assert!(!state.is_benched());
    }
}

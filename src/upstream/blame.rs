//! Who is at fault when talking to an endpoint fails: the client, the endpoint, or this
//! proxy itself. The answer decides three things at once: the status a client gets (400s for
//! the client, 502/504 for the endpoint, 503 for us), the `reason` label of the metrics, and
//! whether the endpoint's passive-health record takes the failure.
//!
//! The last is why this is a type: a proxy out of file descriptors (`EMFILE`), kernel memory
//! or local ports fails every `socket()` and `connect()`, and blaming the endpoints for that
//! benches healthy ones one after the other until the whole service is down, long after the
//! descriptors came back (seen with `ulimit -n 256` and 1,000 clients: healthy endpoints were
//! benched 165 times). Such failures are ours: no failure mark, no bench, a 503, a metric,
//! and a log line at most once a second.

use std::error::Error;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Who a failure is blamed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client (its request body broke, or was too large).
    Client,
    /// The endpoint (refused, reset, timed out, spoke garbage).
    Upstream,
    /// This proxy or its host ran out of something (descriptors, memory, local ports).
    Ours,
}

impl Blame {
    /// The label logs carry.
    pub fn label(self) -> &'static str {
        match self {
            Blame::Client => "client",
            Blame::Upstream => "upstream",
            Blame::Ours => "ours",
        }
    }
}

/// The `reason` label of a failure that is ours.
pub const LOCAL_RESOURCES: &str = "local_resources";

/// Whether an I/O error is this process or host running out of something: descriptors
/// (`EMFILE`, `ENFILE`), kernel memory or buffers (`ENOMEM`, `ENOBUFS`), or local ports
/// (`EADDRNOTAVAIL` on connect).
pub fn is_local_exhaustion(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS | libc::EADDRNOTAVAIL)
    )
}

/// Whether `error`, or any error under it, is a local exhaustion.
pub fn caused_by_exhaustion(error: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<io::Error>()
            .is_some_and(is_local_exhaustion)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// When the last exhaustion warning was written (seconds since the epoch), and how many
/// were left out since.
static LAST_WARNING: AtomicU64 = AtomicU64::new(0);
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);

/// Logs that we ran out of something while doing `what`, at most once a second (with how
/// many such failures were not logged in between): under exhaustion every connection fails
/// the same way, and a line each would only make it worse.
pub fn warn_exhausted(what: &str, error: &dyn std::fmt::Display) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_WARNING.load(Ordering::Relaxed);
    if now > last
        && LAST_WARNING
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
        tracing::warn!(%error, what, suppressed, blame = "ours",
            "out of local resources (file descriptors, memory or ports); endpoints not blamed");
    } else {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_out_of_descriptors_is_ours_and_a_refusal_is_not() {
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_local_exhaustion(&emfile));
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert!(!is_local_exhaustion(&refused));
        let wrapped: Box<dyn Error + Send + Sync> = Box::new(Wrapper(emfile));
        assert!(caused_by_exhaustion(&*wrapped));
        let wrapped: Box<dyn Error + Send + Sync> = Box::new(Wrapper(refused));
        assert!(!caused_by_exhaustion(&*wrapped));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("connect: {0}")]
    struct Wrapper(#[source] io::Error);
}

//! What happened lately that counters cannot say: the last reloads with their errors, the
//! last skipped Kubernetes objects with their reasons, and each watcher's state.
//!
//! Metrics count (`switchyard_reloads_total{result}`), but an operator also wants to read
//! *which* reload failed and why. These few control-plane events are kept here, each log a
//! bounded ring ([`RELOADS_KEPT`], [`SKIPS_KEPT`] entries, so well under 100 KiB however long
//! the process runs), for the admin page (`/debug/overview`). They are process-wide like the
//! metrics recorder, and written only by the control plane (a reload, a watch event), never by
//! the data path. A short `std::sync::Mutex` per log is enough: writers are rare and readers
//! copy out.

use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reloads kept.
pub const RELOADS_KEPT: usize = 20;
/// Skipped objects kept.
pub const SKIPS_KEPT: usize = 50;
/// Longest error or detail text kept (longer is cut, marked with `…`).
const TEXT_KEPT: usize = 500;

/// One reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    /// When (Unix seconds).
    pub at: f64,
    /// What was reloaded: `file`, `certificates` or `kubernetes`.
    pub what: &'static str,
    /// Whether it was applied.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// One skipped Kubernetes object (or part of one).
#[derive(Debug, Clone, Serialize)]
pub struct Skip {
    /// When it was first reported (Unix seconds).
    pub at: f64,
    /// Its kind.
    pub kind: &'static str,
    /// `namespace/name` (empty for problems of no single object).
    pub object: String,
    /// The bounded reason (the metric label).
    pub reason: &'static str,
    /// The detail, in words.
    pub detail: String,
}

/// The state of one Kubernetes watcher.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Watch {
    /// Its first full listing arrived.
    pub listed: bool,
    /// Not failing right now.
    pub up: bool,
    /// Last event (Unix seconds).
    pub last_event: Option<f64>,
    /// Last error, while failing.
    pub error: Option<String>,
}

/// The Kubernetes side in one copy.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Kube {
    /// Watchers by kind.
    pub watches: BTreeMap<&'static str, Watch>,
    /// The last publish: when (Unix seconds) and how long after its first event (seconds).
    pub last_publish: Option<(f64, f64)>,
    /// Skipped objects, newest last.
    pub skipped: Vec<Skip>,
}

#[derive(Debug, Default)]
struct Logs {
    reloads: Mutex<VecDeque<Reload>>,
    skips: Mutex<VecDeque<Skip>>,
    watches: Mutex<BTreeMap<&'static str, Watch>>,
    last_publish: Mutex<Option<(f64, f64)>>,
}

fn logs() -> &'static Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(Logs::default)
}

/// Now, in Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn cut(text: &str) -> String {
    match text.char_indices().nth(TEXT_KEPT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn push<T>(log: &Mutex<VecDeque<T>>, kept: usize, item: T) {
    let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
    if log.len() == kept {
        log.pop_front();
    }
    log.push_back(item);
}

/// Records a reload of `what` (`file`, `certificates`, `kubernetes`) and its error if any.
pub fn reload(what: &'static str, error: Option<&dyn std::fmt::Display>) {
    let entry = Reload {
        at: now(),
        what,
        ok: error.is_none(),
        error: error.map(|e| cut(&e.to_string())),
    };
    push(&logs().reloads, RELOADS_KEPT, entry);
}

/// The last reloads, newest last.
pub fn reloads() -> Vec<Reload> {
    let log = logs()
        .reloads
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    log.iter().cloned().collect()
}

/// Records a skipped Kubernetes object.
pub fn kube_skip(kind: &'static str, object: &str, reason: &'static str, detail: &str) {
    let entry = Skip {
        at: now(),
        kind,
        object: object.to_owned(),
        reason,
        detail: cut(detail),
    };
    push(&logs().skips, SKIPS_KEPT, entry);
}

/// Records an event of the watcher of `kind`; `listed` when it is the end of a listing.
pub fn kube_event(kind: &'static str, listed: bool) {
    let at = now();
    super::metrics::kube_last_event(kind, at);
    let mut watches = logs()
        .watches
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let watch = watches.entry(kind).or_default();
    if !watch.up {
        super::metrics::kube_watch_up(kind, true);
    }
    watch.up = true;
    watch.error = None;
    watch.listed |= listed;
    watch.last_event = Some(at);
}

/// Records a failure of the watcher of `kind`.
pub fn kube_watch_failed(kind: &'static str, error: &dyn std::fmt::Display) {
    super::metrics::kube_watch_up(kind, false);
    let mut watches = logs()
        .watches
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let watch = watches.entry(kind).or_default();
    watch.up = false;
    watch.error = Some(cut(&error.to_string()));
}

/// Records a publish of the cluster's objects, `latency` after its first event.
pub fn kube_published(latency: Duration) {
    let mut last = logs()
        .last_publish
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    *last = Some((now(), latency.as_secs_f64()));
}

/// The Kubernetes side, copied out.
pub fn kube() -> Kube {
    let l = logs();
    Kube {
        watches: l
            .watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
        last_publish: *l
            .last_publish
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
        skipped: l
            .skips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_keep_only_their_newest_entries_and_cut_long_texts() {
        let log = Mutex::new(VecDeque::new());
        for i in 0..30 {
            push(&log, 20, i);
        }
        let kept: Vec<i32> = log.lock().unwrap().iter().copied().collect();
        assert_eq!(kept, (10..30).collect::<Vec<_>>());
        let long = "x".repeat(600);
        assert_eq!(cut(&long).chars().count(), TEXT_KEPT + 1);
        assert_eq!(cut("short"), "short");
    }
}

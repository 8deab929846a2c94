//! Reporting skipped objects and unsupported annotations once, not on every rebuild.
//!
//! Translation reruns whenever something it reads changes, so the same bad Ingress would
//! otherwise be logged again on every Service update. A problem is logged (warn) and counted
//! once per object version: when the object changes (a new resourceVersion), its problems are
//! reported afresh; when it goes away, what was reported about it is forgotten.

use super::state::Key;
use crate::telemetry::metrics;
use std::collections::{HashMap, HashSet};

/// What was reported, per object.
#[derive(Debug, Default)]
pub(super) struct Reporter {
    seen: HashMap<(&'static str, Key), (String, HashSet<String>)>,
}

impl Reporter {
    /// The reporter for one object at version `rv`.
    pub(super) fn for_object(
        &mut self,
        kind: &'static str,
        key: &Key,
        rv: &str,
    ) -> ObjectReport<'_> {
        let entry = self
            .seen
            .entry((kind, key.clone()))
            .or_insert_with(|| (rv.to_owned(), HashSet::new()));
        if entry.0 != rv {
            *entry = (rv.to_owned(), HashSet::new());
        }
        ObjectReport {
            kind,
            name: if key.0.is_empty() {
                key.1.clone()
            } else {
                format!("{}/{}", key.0, key.1)
            },
            seen: &mut entry.1,
        }
    }

    /// Forgets objects of `kind` that `live` no longer holds.
    pub(super) fn retain(&mut self, kind: &'static str, live: impl Fn(&Key) -> bool) {
        self.seen.retain(|(k, key), _| *k != kind || live(key));
    }

    /// Reports a problem that belongs to no single object (a route conflict), once.
    pub(super) fn once(&mut self, kind: &'static str, reason: &'static str, detail: &str) {
        let (_, seen) = self
            .seen
            .entry(("-", (String::new(), String::new())))
            .or_default();
        if seen.insert(format!("{kind} {reason} {detail}")) {
            tracing::warn!(kind, reason, "{detail}: skipped");
            metrics::kube_skipped(kind, reason);
            crate::telemetry::recent::kube_skip(kind, "", reason, detail);
        }
    }
}

/// Reports for one object.
#[derive(Debug)]
pub(super) struct ObjectReport<'a> {
    kind: &'static str,
    name: String,
    seen: &'a mut HashSet<String>,
}

impl ObjectReport<'_> {
    /// A part of the object is skipped for `reason` (a bounded metric label).
    pub(super) fn skip(&mut self, reason: &'static str, detail: &str) {
        if self.seen.insert(format!("skip {reason} {detail}")) {
            tracing::warn!(kind = self.kind, object = %self.name, reason, "{detail}: skipped");
            metrics::kube_skipped(self.kind, reason);
            crate::telemetry::recent::kube_skip(self.kind, &self.name, reason, detail);
        }
    }

    /// An annotation is not honoured.
    pub(super) fn unsupported(&mut self, annotation: &str) {
        if self.seen.insert(format!("annotation {annotation}")) {
            tracing::warn!(
                kind = self.kind,
                object = %self.name,
                annotation,
                "unsupported annotation: ignored"
            );
            metrics::kube_unsupported_annotation();
        }
    }
}

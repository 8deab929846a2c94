//! Which watcher events need a rebuild, and which HTTPRoutes need their status computed again.
//!
//! Every status write (ours, or another controller's) comes back as a MODIFIED event with a
//! new `resourceVersion`. Status does not feed the translation, so such an event must not
//! rebuild the routes: with a thousand HTTPRoutes applied at once, each of our writes would
//! otherwise cost a full rebuild and a full status pass, and the rounds would fall behind
//! their own writes (a thousand routes took a minute to serve in a debug build).
//!
//! Route status is computed again only for the routes whose object or verdict changed, for
//! the same reason: [`super::route_status::patch`] is a function of those two (and of our
//! controller name), so a route with neither changed has no new patch to give.

use super::route_status::Verdict;
use crate::discovery::state::{Change, Key};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use std::collections::{BTreeSet, HashMap};

/// Whether any of `changes` is more than a status write: an object that came or went, or
/// whose `spec` (read by `spec`) or metadata changed. The bookkeeping a status write bumps
/// (`resourceVersion`, `managedFields`) is not a change.
pub(super) fn beyond_status<K: Resource, S: PartialEq>(
    changes: &[Change<K>],
    spec: impl Fn(&K) -> &S,
) -> bool {
    changes
        .iter()
        .any(|(_, before, after)| match (before, after) {
            (Some(b), Some(a)) => spec(b) != spec(a) || !same_meta(b.meta(), a.meta()),
            _ => true,
        })
}

/// Metadata equal but for what a status write bumps.
fn same_meta(a: &ObjectMeta, b: &ObjectMeta) -> bool {
    let strip = |m: &ObjectMeta| ObjectMeta {
        resource_version: None,
        managed_fields: None,
        ..m.clone()
    };
    strip(a) == strip(b)
}

/// Adds to `dirty` the routes whose verdict differs between `before` and `after`.
pub(super) fn changed_verdicts(
    before: &[(Key, Verdict)],
    after: &[(Key, Verdict)],
    dirty: &mut BTreeSet<Key>,
) {
    let old: HashMap<&Key, &Verdict> = before.iter().map(|(k, v)| (k, v)).collect();
    for (key, v) in after {
        if old.get(key) != Some(&v) {
            dirty.insert(key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::route_types::{HttpRoute, HttpRouteStatus};
    use super::*;
    use std::sync::Arc;

    fn route(rv: &str, hosts: &[&str]) -> Arc<HttpRoute> {
        let mut r = HttpRoute::default();
        r.metadata.name = Some("r".into());
        r.metadata.resource_version = Some(rv.into());
        r.spec.hostnames = hosts.iter().map(|h| (*h).to_owned()).collect();
        Arc::new(r)
    }

    fn change(before: Arc<HttpRoute>, after: Arc<HttpRoute>) -> Vec<Change<HttpRoute>> {
        vec![(("ns".into(), "r".into()), Some(before), Some(after))]
    }

    #[test]
    fn a_status_write_is_not_a_change() {
        let before = route("1", &["a.example"]);
        let mut after = (*route("2", &["a.example"])).clone();
        after.status = Some(HttpRouteStatus::default());
        let changes = change(before, Arc::new(after));
        assert!(!beyond_status(&changes, |r: &HttpRoute| &r.spec));
    }

    #[test]
    fn spec_labels_and_comings_and_goings_are_changes() {
        let spec = change(route("1", &["a.example"]), route("2", &["b.example"]));
        assert!(beyond_status(&spec, |r: &HttpRoute| &r.spec));
        let mut labelled = (*route("2", &["a.example"])).clone();
        labelled.metadata.labels = Some([("k".into(), "v".into())].into());
        let labels = change(route("1", &["a.example"]), Arc::new(labelled));
        assert!(beyond_status(&labels, |r: &HttpRoute| &r.spec));
        let added = vec![(("ns".into(), "r".into()), None, Some(route("1", &[])))];
        assert!(beyond_status(&added, |r: &HttpRoute| &r.spec));
        let gone = vec![(("ns".into(), "r".into()), Some(route("1", &[])), None)];
        assert!(beyond_status(&gone, |r: &HttpRoute| &r.spec));
    }

    #[test]
    fn only_changed_verdicts_are_dirty() {
        let key = |n: &str| ("ns".to_owned(), n.to_owned());
        let refused = Verdict {
            unsupported: Some("x".into()),
            ..Verdict::default()
        };
        let before = vec![(key("same"), Verdict::default()), (key("b"), refused)];
        let after = vec![
            (key("same"), Verdict::default()),
            (key("b"), Verdict::default()),
            (key("new"), Verdict::default()),
        ];
        let mut dirty = BTreeSet::new();
        changed_verdicts(&before, &after, &mut dirty);
        assert_eq!(dirty, BTreeSet::from([key("b"), key("new")]));
    }
}

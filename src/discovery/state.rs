//! Per-kind object stores fed by watcher events, with the initial listing buffered.
//!
//! A [`Store`] holds the objects of one kind. `Init` starts a buffer, `InitApply` fills it and
//! `InitDone` swaps it in whole, so a restarted watch or a relist after `410 Gone` never shows
//! a partial (or empty) set. The swap reports only the objects whose `resourceVersion`
//! changed (or that appeared or went), so a relist of identical objects changes nothing and
//! costs no rebuild. Outside a listing, `Apply` and `Delete` change one object each.
//!
//! These stores are plain maps owned by one task (the [`super::kube`] model task): no lock,
//! unlike kube's reflector `Store`, which readers would share with the writer.

use kube::runtime::watcher::Event;
use kube::{Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `(namespace, name)`; the namespace is empty for cluster-scoped kinds.
pub(super) type Key = (String, String);

/// The key of an object.
pub(super) fn key_of<K: Resource>(obj: &K) -> Key {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The objects of one kind.
#[derive(Debug)]
pub(super) struct Store<K> {
    objects: BTreeMap<Key, Arc<K>>,
    /// The listing in progress, between `Init` and `InitDone`.
    buffer: Option<BTreeMap<Key, Arc<K>>>,
    /// Whether a full listing has completed once.
    listed: bool,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            buffer: None,
            listed: false,
        }
    }
}

/// One object that changed: its key, what it was, what it is.
pub(super) type Change<K> = (Key, Option<Arc<K>>, Option<Arc<K>>);

impl<K: Resource + Clone> Store<K> {
    /// Applies one watcher event; returns the objects that changed.
    pub(super) fn apply(&mut self, event: Event<K>) -> Vec<Change<K>> {
        match event {
            Event::Init => {
                self.buffer = Some(BTreeMap::new());
                Vec::new()
            }
            Event::InitApply(obj) => {
                self.buffer
                    .get_or_insert_with(BTreeMap::new)
                    .insert(key_of(&obj), Arc::new(obj));
                Vec::new()
            }
            Event::InitDone => {
                self.listed = true;
                let next = self.buffer.take().unwrap_or_default();
                let old = std::mem::replace(&mut self.objects, next);
                let mut changes = Vec::new();
                for (key, new) in &self.objects {
                    let before = old.get(key);
                    if !before.is_some_and(|b| same_version(&**b, &**new)) {
                        changes.push((key.clone(), before.cloned(), Some(Arc::clone(new))));
                    }
                }
                for (key, gone) in old {
                    if !self.objects.contains_key(&key) {
                        changes.push((key, Some(gone), None));
                    }
                }
                changes
            }
            Event::Apply(obj) => {
                let key = key_of(&obj);
                let new = Arc::new(obj);
                let before = self.objects.insert(key.clone(), Arc::clone(&new));
                if before.as_ref().is_some_and(|b| same_version(&**b, &*new)) {
                    return Vec::new();
                }
                vec![(key, before, Some(new))]
            }
            Event::Delete(obj) => {
                let key = key_of(&obj);
                match self.objects.remove(&key) {
                    Some(before) => vec![(key, Some(before), None)],
                    None => Vec::new(),
                }
            }
        }
    }

    /// Whether the first full listing is done.
    pub(super) fn listed(&self) -> bool {
        self.listed
    }

    /// The object with this key.
    pub(super) fn get(&self, key: &Key) -> Option<&Arc<K>> {
        self.objects.get(key)
    }

    /// All objects, by key.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&Key, &Arc<K>)> {
        self.objects.iter()
    }

    /// How many objects are held.
    pub(super) fn len(&self) -> usize {
        self.objects.len()
    }
}

/// Equal, non-empty resourceVersions mean the same object (the API server's promise).
fn same_version<K: Resource>(a: &K, b: &K) -> bool {
    let (a, b) = (a.resource_version(), b.resource_version());
    a.is_some() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use kube::api::ObjectMeta;

    fn svc(name: &str, rv: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    #[test]
    fn a_listing_is_invisible_until_init_done_then_swapped_whole() {
        let mut store = Store::default();
        assert!(store.apply(Event::Init).is_empty());
        assert!(store.apply(Event::InitApply(svc("a", "1"))).is_empty());
        assert_eq!(store.len(), 0);
        assert!(!store.listed());
        assert_eq!(store.apply(Event::InitDone).len(), 1);
        assert!(store.listed());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_relist_of_identical_objects_reports_no_change() {
        let mut store = Store::default();
        for e in [
            Event::Init,
            Event::InitApply(svc("a", "1")),
            Event::InitDone,
        ] {
            store.apply(e);
        }
        store.apply(Event::Init);
        store.apply(Event::InitApply(svc("a", "1")));
        assert!(store.apply(Event::InitDone).is_empty());
    }

    #[test]
    fn a_relist_reports_objects_that_went_away_while_not_watching() {
        let mut store = Store::default();
        for e in [
            Event::Init,
            Event::InitApply(svc("a", "1")),
            Event::InitApply(svc("b", "1")),
            Event::InitDone,
        ] {
            store.apply(e);
        }
        store.apply(Event::Init);
        store.apply(Event::InitApply(svc("a", "2")));
        let changes = store.apply(Event::InitDone);
        assert_eq!(changes.len(), 2);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn applying_the_same_version_again_is_not_a_change() {
        let mut store = Store::default();
        assert_eq!(store.apply(Event::Apply(svc("a", "1"))).len(), 1);
        assert!(store.apply(Event::Apply(svc("a", "1"))).is_empty());
        assert_eq!(store.apply(Event::Delete(svc("a", "1"))).len(), 1);
    }
}

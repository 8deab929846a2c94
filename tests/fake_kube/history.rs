//! The fake API server's objects and history: apply and delete bump the one global
//! resourceVersion and record an event that open watches receive; bookmarks and compaction
//! (an ERROR 410 on every watch, forcing a relist).

use super::server::gone_event;
use super::{FakeKube, State, key_of, plural};
use serde_json::{Value, json};

impl FakeKube {
    /// Creates or replaces an object (ADDED or MODIFIED), with the next resourceVersion.
    pub fn apply<T: serde::Serialize>(&self, obj: &T) {
        let mut obj = serde_json::to_value(obj).unwrap();
        let kind = obj["kind"].as_str().unwrap().to_owned();
        let (resource, _) = plural(&kind);
        let mut s = self.state.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        if obj["metadata"]["creationTimestamp"].is_null() {
            let ts = format!("2025-01-01T00:{:02}:{:02}Z", (rv / 60) % 60, rv % 60);
            obj["metadata"]["creationTimestamp"] = json!(ts);
        }
        let key = key_of(&obj);
        let map = s.objects.entry(resource.to_owned()).or_default();
        // metadata.generation as the real server keeps it: 1 at creation (unless given), +1
        // when the spec changes, unchanged by status writes; a larger one given is kept.
        let given = obj["metadata"]["generation"].as_i64();
        let generation = match map.get(&key) {
            None => given.unwrap_or(1),
            Some(old) => {
                let before = old["metadata"]["generation"].as_i64().unwrap_or(1);
                let bumped = before + i64::from(old["spec"] != obj["spec"]);
                given.filter(|g| *g > before).unwrap_or(bumped)
            }
        };
        obj["metadata"]["generation"] = json!(generation);
        let ty = if map.insert(key, obj.clone()).is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        self.record(&mut s, resource, ty, obj);
    }

    /// Deletes an object (DELETED).
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) {
        let (resource, _) = plural(kind);
        let mut s = self.state.lock().unwrap();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(mut obj) = s.objects.get_mut(resource).and_then(|m| m.remove(&key)) else {
            return;
        };
        s.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(s.rv.to_string());
        self.record(&mut s, resource, "DELETED", obj);
    }

    fn record(&self, s: &mut State, resource: &str, ty: &'static str, obj: Value) {
        let line = json!({"type": ty, "object": obj}).to_string();
        s.history.push((s.rv, resource.to_owned(), ty, obj));
        let _ = self.events.send((resource.to_owned(), line));
    }

    /// Sends a BOOKMARK at the current resourceVersion on every open watch.
    pub fn bookmark(&self) {
        let s = self.state.lock().unwrap();
        for kind in [
            "Service",
            "EndpointSlice",
            "Ingress",
            "IngressClass",
            "Secret",
        ] {
            let (resource, _) = plural(kind);
            let api = if matches!(kind, "Service" | "Secret") {
                "v1"
            } else if kind == "EndpointSlice" {
                "discovery.k8s.io/v1"
            } else {
                "networking.k8s.io/v1"
            };
            let line = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api,
                "metadata": {"resourceVersion": s.rv.to_string()}}})
            .to_string();
            let _ = self.events.send((resource.to_owned(), line));
        }
    }

    /// Compacts the history: open watches get an ERROR 410 event (and so does any watch
    /// resuming from before now), which makes clients relist.
    pub fn compact(&self) {
        let mut s = self.state.lock().unwrap();
        s.compacted = s.rv + 1;
        for resource in [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
            "gatewayclasses",
            "gateways",
            "httproutes",
            "tlsroutes",
            "grpcroutes",
            "referencegrants",
            "backendtlspolicies",
            "configmaps",
            "namespaces",
        ] {
            let _ = self.events.send((resource.to_owned(), gone_event()));
        }
    }
}

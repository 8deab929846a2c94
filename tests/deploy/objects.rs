//! The objects of one deployment, read from YAML: every document goes into its k8s-openapi
//! type and must come back out unchanged ([`typed`]), so a field the type does not know is
//! caught as `kubectl apply --validate=strict` would; [`first_difference`] says where two
//! documents differ.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Every non-empty document of a YAML stream, as JSON.
pub(crate) fn yaml_docs(text: &str, origin: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| {
            <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Reads `doc` as a `T` and insists that writing it back gives `doc` again.
pub(crate) fn typed<T: DeserializeOwned + Serialize>(doc: &Value, origin: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(at) = first_difference(doc, &back, String::new()) {
        panic!(
            "{origin}: {} {}: {at}: a field its type does not know, or a wrong type",
            doc["kind"], doc["metadata"]["name"]
        );
    }
    object
}

/// Where two JSON values first differ, as a path (`spec.template.spec.containers[0].x`).
pub(crate) fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .find_map(|(k, v)| match b.get(k) {
                Some(w) => first_difference(v, w, format!("{at}.{k}")),
                None => Some(format!("{at}.{k}")),
            })
            .or_else(|| {
                b.keys()
                    .find(|k| !a.contains_key(*k))
                    .map(|k| format!("{at}.{k}"))
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]"))),
        _ => (a != b).then_some(if at.is_empty() { ".".to_owned() } else { at }),
    }
}

/// The objects of one deployment (the plain manifests, or one rendering of the chart).
#[derive(Default)]
pub(crate) struct Objects {
    pub(crate) origin: String,
    /// Every document as JSON, to compare deployments with each other.
    pub(crate) raw: Vec<Value>,
    pub(crate) namespaces: Vec<Namespace>,
    pub(crate) service_accounts: Vec<ServiceAccount>,
    pub(crate) cluster_roles: Vec<ClusterRole>,
    pub(crate) bindings: Vec<ClusterRoleBinding>,
    pub(crate) ingress_classes: Vec<IngressClass>,
    pub(crate) config_maps: Vec<ConfigMap>,
    pub(crate) daemon_sets: Vec<DaemonSet>,
    pub(crate) secrets: Vec<Secret>,
    /// As JSON: `deploy/gateway_api.rs` reads them (no k8s-openapi type).
    pub(crate) gateway_classes: Vec<Value>,
}

impl Objects {
    pub(crate) fn add(&mut self, doc: Value) {
        let origin = self.origin.clone();
        match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
            (Some("v1"), Some("Namespace")) => self.namespaces.push(typed(&doc, &origin)),
            (Some("v1"), Some("ServiceAccount")) => {
                self.service_accounts.push(typed(&doc, &origin))
            }
            (Some("v1"), Some("ConfigMap")) => self.config_maps.push(typed(&doc, &origin)),
            (Some("v1"), Some("Secret")) => self.secrets.push(typed(&doc, &origin)),
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRole")) => {
                self.cluster_roles.push(typed(&doc, &origin))
            }
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRoleBinding")) => {
                self.bindings.push(typed(&doc, &origin))
            }
            (Some("networking.k8s.io/v1"), Some("IngressClass")) => {
                self.ingress_classes.push(typed(&doc, &origin))
            }
            (Some("apps/v1"), Some("DaemonSet")) => self.daemon_sets.push(typed(&doc, &origin)),
            (Some("gateway.networking.k8s.io/v1"), Some("GatewayClass")) => {
                self.gateway_classes.push(doc.clone())
            }
            (api, kind) => panic!("{origin}: unexpected object {api:?} {kind:?}"),
        }
        self.raw.push(doc);
    }

    pub(crate) fn from_text(origin: &str, text: &str) -> Objects {
        let mut objects = Objects {
            origin: origin.to_owned(),
            ..Objects::default()
        };
        for doc in yaml_docs(text, origin) {
            objects.add(doc);
        }
        objects
    }

    pub(crate) fn raw(&self, kind: &str, name: &str) -> Option<&Value> {
        self.raw
            .iter()
            .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
    }
}

pub(crate) fn one<'a, T>(items: &'a [T], what: &str, origin: &str) -> &'a T {
    assert_eq!(items.len(), 1, "{origin}: want exactly one {what}");
    &items[0]
}

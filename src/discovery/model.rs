//! The model task's state: every watched object, and what was translated from them.
//!
//! Events land in per-kind [`Store`]s; what they touch is marked dirty and only that is
//! translated again when the next [`KubeParts`] is built: a Service whose EndpointSlices
//! changed is re-translated alone (O(that Service)); the Ingress pass reruns only when an
//! Ingress, IngressClass, Secret or a Service's spec changed. Parts are only built once every
//! kind has completed its first listing.

use super::ingress::{self, CertCache, IngressParts};
use super::report::Reporter;
use super::state::{Key, Store, key_of};
use super::translate::{KubeService, service_entries};
use super::{KubeParts, Msg};
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressLoadBalancerIngress};
use kube::ResourceExt;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The label EndpointSlices carry with their Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Marks the cluster's default IngressClass.
const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// The class annotation of Ingresses from before `spec.ingressClassName`.
const LEGACY_CLASS: &str = "kubernetes.io/ingress.class";

/// All watched objects and their translations.
#[derive(Debug, Default)]
pub(super) struct Model {
    class: String,
    status: Vec<IngressLoadBalancerIngress>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    ingresses: Store<Ingress>,
    classes: Store<IngressClass>,
    secrets: Store<Secret>,
    slices_of: HashMap<Key, BTreeSet<Key>>,
    entries: BTreeMap<Key, Vec<KubeService>>,
    dirty: BTreeSet<Key>,
    ingress_dirty: bool,
    ingress: IngressParts,
    certs: CertCache,
    report: Reporter,
    /// Whether parts were built once (the first build always publishes, even if empty).
    published: bool,
    /// The `--default-ssl-certificate` Secret.
    default_cert: Option<Key>,
    /// `--enable-ssl-passthrough`.
    ssl_passthrough: bool,
    /// The Gateway API kinds (`--gateway-api`).
    gateway: Option<super::gateway::GatewayState>,
    /// A Gateway API object changed since the last build.
    gateway_dirty: bool,
    /// The Gateway listeners to open, from the last build.
    gateway_listeners: Vec<super::gateway::listeners::GatewayListener>,
    /// The HTTPS Gateway listeners' certificates, from the last build.
    gateway_certs: Vec<crate::tls::CertSpec>,
    /// The HTTPRoutes' routes and their origins, from the last build.
    gateway_routes: (Vec<crate::config::RouteConfig>, Vec<Arc<str>>),
    /// The TLSRoutes' passthrough entries, from the last build.
    gateway_passthrough: Vec<crate::config::PassthroughConfig>,
}

impl Model {
    /// A model serving IngressClass `class`, writing `status` into Ingresses it serves.
    pub(super) fn new(class: String, status: Vec<IngressLoadBalancerIngress>) -> Model {
        Model {
            class,
            status,
            ..Model::default()
        }
    }

    /// The same model, with the TLS edge flags (`--default-ssl-certificate`,
    /// `--enable-ssl-passthrough`).
    pub(super) fn with_edge(self, default_cert: Option<Key>, ssl_passthrough: bool) -> Model {
        Model {
            default_cert,
            ssl_passthrough,
            ..self
        }
    }

    /// The same model, also serving the Gateway API for controller name `controller`.
    pub(super) fn with_gateway_api(self, controller: String, addresses: Vec<String>) -> Model {
        Model {
            gateway: Some(super::gateway::GatewayState::new(controller, addresses)),
            ..self
        }
    }

    /// Gateway API status writes now due (none without `--gateway-api`).
    pub(super) fn gateway_status(&mut self) -> Vec<super::gateway::StatusPatch> {
        let core = self.listed_core();
        match &mut self.gateway {
            Some(g) if core => g.status_patches(),
            _ => Vec::new(),
        }
    }

    /// Applies one watcher event.
    pub(super) fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Service(e) => {
                for (key, before, after) in self.services.apply(e) {
                    let spec = |s: &Option<Arc<Service>>| s.as_ref().map(|s| s.spec.clone());
                    if spec(&before) != spec(&after) {
                        self.ingress_dirty = true;
                    }
                    self.dirty.insert(key);
                }
            }
            Msg::Slice(e) => {
                for (key, before, after) in self.slices.apply(e) {
                    if let Some(svc) = before.as_deref().and_then(owner) {
                        if let Some(set) = self.slices_of.get_mut(&svc) {
                            set.remove(&key);
                        }
                        self.dirty.insert(svc);
                    }
                    if let Some(svc) = after.as_deref().and_then(owner) {
                        self.slices_of.entry(svc.clone()).or_default().insert(key);
                        self.dirty.insert(svc);
                    }
                }
            }
            Msg::Ingress(e) => self.ingress_dirty |= !self.ingresses.apply(e).is_empty(),
            Msg::Class(e) => self.ingress_dirty |= !self.classes.apply(e).is_empty(),
            Msg::Secret(e) => self.ingress_dirty |= !self.secrets.apply(e).is_empty(),
            Msg::Gateway(m) => {
                if let Some(g) = &mut self.gateway {
                    self.gateway_dirty |= g.handle(m);
                }
            }
        }
    }

    /// Whether every kind has completed its first listing.
    pub(super) fn listed(&self) -> bool {
        self.listed_core() && self.gateway.as_ref().is_none_or(|g| g.listed())
    }

    /// Whether the Service, EndpointSlice, Ingress, IngressClass and Secret listings are done.
    fn listed_core(&self) -> bool {
        self.services.listed()
            && self.slices.listed()
            && self.ingresses.listed()
            && self.classes.listed()
            && self.secrets.listed()
    }

    /// Translates what changed; `None` when nothing did (or the listings are not complete).
    pub(super) fn build(&mut self) -> Option<KubeParts> {
        if !self.listed() {
            return None;
        }
        crate::telemetry::metrics::kube_objects("Service", self.services.len());
        crate::telemetry::metrics::kube_objects("EndpointSlice", self.slices.len());
        crate::telemetry::metrics::kube_objects("Ingress", self.ingresses.len());
        crate::telemetry::metrics::kube_objects("IngressClass", self.classes.len());
        crate::telemetry::metrics::kube_objects("Secret", self.secrets.len());
        let ingress_dirty = std::mem::take(&mut self.ingress_dirty) || !self.published;
        let gateway_dirty = std::mem::take(&mut self.gateway_dirty) || !self.published;
        let mut changed = ingress_dirty || gateway_dirty;
        for key in std::mem::take(&mut self.dirty) {
            let next = self.services.get(&key).map(|svc| {
                let slices: Vec<&EndpointSlice> = self
                    .slices_of
                    .get(&key)
                    .into_iter()
                    .flatten()
                    .filter_map(|k| self.slices.get(k).map(|s| &**s))
                    .collect();
                service_entries(svc, &slices)
            });
            let prev = match next {
                Some(n) => self.entries.insert(key.clone(), n),
                None => self.entries.remove(&key),
            };
            changed |= prev.as_ref() != self.entries.get(&key);
        }
        if !changed {
            return None;
        }
        if ingress_dirty {
            self.translate_ingresses();
        }
        if let Some(g) = &mut self.gateway {
            // Secrets count like an Ingress's (HTTPS listeners' certificates).
            if gateway_dirty || ingress_dirty {
                let (listeners, certs) =
                    g.listeners(&self.secrets, &mut self.certs, &mut self.report);
                self.gateway_listeners = listeners;
                self.gateway_certs = certs;
            }
            // Backends resolve against Services: their specs count like an Ingress's.
            if gateway_dirty || ingress_dirty {
                let (routes, origins) = g.routes(&self.services, &mut self.report);
                self.gateway_routes = (routes, origins);
                let listeners = &self.gateway_listeners;
                self.gateway_passthrough =
                    g.passthrough(&self.services, listeners, &mut self.report);
            }
        }
        self.published = true;
        Some(self.assemble())
    }

    fn translate_ingresses(&mut self) {
        let default_class = self
            .classes
            .get(&(String::new(), self.class.clone()))
            .is_some_and(|c| {
                c.annotations().get(DEFAULT_CLASS).map(String::as_str) == Some("true")
            });
        let mut served: Vec<&Arc<Ingress>> = self
            .ingresses
            .iter()
            .map(|(_, i)| i)
            .filter(|i| serves(i, &self.class, default_class))
            .collect();
        served.sort_by(|a, b| {
            let age = |i: &Ingress| i.metadata.creation_timestamp.clone();
            age(a)
                .cmp(&age(b))
                .then_with(|| key_of(&***a).cmp(&key_of(&***b)))
        });
        self.ingress = ingress::translate(
            &served,
            ingress::Input {
                services: &self.services,
                secrets: &self.secrets,
                certs: &mut self.certs,
                report: &mut self.report,
                ssl_passthrough: self.ssl_passthrough,
            },
        );
        self.ingress.default_certificate = super::edge::default_certificate(
            self.default_cert.as_ref(),
            &self.secrets,
            &mut self.certs,
            &mut self.report,
        );
        let ingresses = &self.ingresses;
        self.report
            .retain("Ingress", |k| ingresses.get(k).is_some());
        let secrets = &self.secrets;
        self.certs.retain(|(k, _), _| secrets.get(k).is_some());
    }

    fn assemble(&self) -> KubeParts {
        let services = self
            .entries
            .values()
            .flatten()
            .map(|s| {
                let mut s = s.clone();
                if let Some(o) = self.ingress.overrides.get(&s.config.name) {
                    o.apply(&mut s.config);
                }
                // GRPCRoute backends speak h2c (super::gateway::grpc_routes).
                if let Some(g) = &self.gateway
                    && g.h2c_services().contains(&s.config.name)
                {
                    s.config.upstream_protocol = crate::config::UpstreamProtocol::H2c;
                }
                // BackendTLSPolicies and appProtocol (super::gateway::backend_upstreams).
                if let Some(g) = &self.gateway {
                    g.backend_upstream(&mut s.config);
                }
                s
            })
            .collect();
        let status_pending = if self.status.is_empty() {
            Vec::new()
        } else {
            self.ingress
                .served
                .iter()
                .filter(|k| {
                    let current = self
                        .ingresses
                        .get(k)
                        .and_then(|i| i.status.as_ref()?.load_balancer.as_ref()?.ingress.clone());
                    current.unwrap_or_default() != self.status
                })
                .cloned()
                .collect()
        };
        KubeParts {
            services,
            routes: [&self.ingress.routes, &self.gateway_routes.0]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            route_origins: [&self.ingress.origins, &self.gateway_routes.1]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            hosts: self.ingress.hosts.clone(),
            certificates: [&self.ingress.certificates, &self.gateway_certs]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            default_service: self.ingress.default_service.clone(),
            passthrough: [&self.ingress.passthrough, &self.gateway_passthrough]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            default_certificate: self.ingress.default_certificate.clone(),
            status_pending,
            gateway_listeners: self.gateway_listeners.clone(),
        }
    }
}

/// The Service an EndpointSlice belongs to.
fn owner(slice: &EndpointSlice) -> Option<Key> {
    let name = slice.labels().get(SERVICE_NAME_LABEL)?;
    Some((slice.namespace().unwrap_or_default(), name.clone()))
}

/// Whether this controller serves the Ingress: its class (field, else legacy annotation) is
/// ours, or it names none and ours is the cluster's default class.
fn serves(ing: &Ingress, class: &str, default_class: bool) -> bool {
    let field = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref());
    let legacy = ing.annotations().get(LEGACY_CLASS).map(String::as_str);
    match field.or(legacy) {
        Some(c) => c == class,
        None => default_class,
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;

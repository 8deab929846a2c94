//! The Gateway API watchers, all started in one place: GatewayClasses and Namespaces
//! cluster-wide, every other kind in the watched namespaces. Each is a
//! [`crate::discovery::kube::Watch`] task wrapping its events as a [`GatewayMsg`]; ConfigMaps
//! are trimmed to what BackendTLSPolicies read as they arrive.

use super::GatewayMsg as G;
use super::backend_upstreams::trim;
use crate::discovery::Msg;
use crate::discovery::kube::{Watch, api};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::watcher::{Config, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// Starts the Gateway API watchers (in namespace `ns`, if given, for the namespaced kinds).
pub(in crate::discovery) fn spawn_watchers(
    w: &Watch,
    client: &Client,
    ns: Option<&str>,
    base: &Config,
) {
    one(w, base, Api::all(client.clone()), "GatewayClass", |e| {
        Msg::Gateway(G::Class(e))
    });
    one(w, base, api(client, ns), "Gateway", |e| {
        Msg::Gateway(G::Gateway(e))
    });
    one(w, base, api(client, ns), "HTTPRoute", |e| {
        Msg::Gateway(G::Route(e))
    });
    one(w, base, api(client, ns), "GRPCRoute", |e| {
        Msg::Gateway(G::GrpcRoute(e))
    });
    one(w, base, api(client, ns), "TLSRoute", |e| {
        Msg::Gateway(G::TlsRoute(e))
    });
    one(w, base, api(client, ns), "BackendTLSPolicy", |e| {
        Msg::Gateway(G::TlsPolicy(e))
    });
    one(
        w,
        base,
        api(client, ns),
        "ConfigMap",
        |e: Event<ConfigMap>| Msg::Gateway(G::ConfigMap(e.modify(trim))),
    );
    one(w, base, api(client, ns), "ReferenceGrant", |e| {
        Msg::Gateway(G::Grant(e))
    });
    one(w, base, Api::all(client.clone()), "Namespace", |e| {
        Msg::Gateway(G::Namespace(e))
    });
}

/// Starts the watcher of one kind.
fn one<K>(w: &Watch, base: &Config, api: Api<K>, kind: &'static str, wrap: fn(Event<K>) -> Msg)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    tokio::spawn(w.clone().run(api, base.clone(), kind, wrap));
}

//! Serde types of our own for TLSRoute (gateway.networking.k8s.io/v1alpha2, the experimental
//! channel), the fields Switchyard reads; unknown fields are ignored, for the reasons given
//! in [`super::types`]. v1alpha2 is read since it is the version every experimental-channel
//! release so far serves (v1alpha3 has the same fields we read).

use super::route_types::HttpRouteStatus;
use super::types::ObjectRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A TLSRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsRoute {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    #[serde(default)]
    pub spec: TlsRouteSpec,
    /// What controllers wrote (`parents`, as HTTPRoute's).
    #[serde(default)]
    pub status: Option<HttpRouteStatus>,
}

super::types::gateway_resource!(
    TlsRoute,
    "TLSRoute",
    "v1alpha2",
    "tlsroutes",
    k8s_openapi::NamespaceResourceScope
);

/// `TLSRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// SNI hostnames; empty: the listeners'.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules (backends only).
    #[serde(default)]
    pub rules: Vec<TlsRouteRule>,
}

/// One TLSRoute rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRouteRule {
    /// The backends.
    #[serde(default)]
    pub backend_refs: Vec<ObjectRef>,
}

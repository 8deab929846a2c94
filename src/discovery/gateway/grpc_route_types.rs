//! Serde types of our own for GRPCRoute (gateway.networking.k8s.io/v1), the fields Switchyard
//! reads; unknown fields are ignored, for the reasons given in [`super::types`].

use super::route_types::{HttpRouteFilter, HttpRouteStatus, ValueMatch};
use super::types::ObjectRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A GRPCRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcRoute {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    #[serde(default)]
    pub spec: GrpcRouteSpec,
    /// What controllers wrote (`parents`, as HTTPRoute's).
    #[serde(default)]
    pub status: Option<HttpRouteStatus>,
}

super::types::gateway_resource!(
    GrpcRoute,
    "GRPCRoute",
    "v1",
    "grpcroutes",
    k8s_openapi::NamespaceResourceScope
);

/// `GRPCRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// Hostnames; empty: the listeners'.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule: matches, filters, weighted backends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteRule {
    /// The rule's name (optional).
    #[serde(default)]
    pub name: Option<String>,
    /// Matches (any of them); empty: every gRPC request.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// Filters, in order (the HTTPRoute filter shapes).
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<ObjectRef>,
}

/// One match: the method and the headers must all hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRouteMatch {
    /// The gRPC service and method.
    #[serde(default)]
    pub method: Option<GrpcMethodMatch>,
    /// Header matches.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
}

/// `matches[].method`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrpcMethodMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The fully qualified service (`pkg.Service`); `None`: any.
    #[serde(default)]
    pub service: Option<String>,
    /// The method; `None`: any.
    #[serde(default)]
    pub method: Option<String>,
}

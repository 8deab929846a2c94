//! Serde types of our own for HTTPRoute (gateway.networking.k8s.io/v1), the fields Switchyard
//! reads; unknown fields are ignored, for the reasons given in [`super::types`].

use super::types::ObjectRef;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// An HTTPRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    #[serde(default)]
    pub spec: HttpRouteSpec,
    /// What controllers wrote.
    #[serde(default)]
    pub status: Option<HttpRouteStatus>,
}

/// `HTTPRoute.status`: one entry per parent and controller, kept as JSON so that the other
/// controllers' entries are written back exactly as read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRouteStatus {
    /// The entries.
    #[serde(default)]
    pub parents: Vec<serde_json::Value>,
}

super::types::gateway_resource!(
    HttpRoute,
    "HTTPRoute",
    "v1",
    "httproutes",
    k8s_openapi::NamespaceResourceScope
);

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub parent_refs: Vec<ObjectRef>,
    /// Hostnames; empty: the listeners'.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// One rule: matches, filters, backends, timeouts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// The rule's name (optional).
    #[serde(default)]
    pub name: Option<String>,
    /// Matches (any of them); empty: `PathPrefix /`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Filters, in order.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<ObjectRef>,
    /// Request and backend-request timeouts (Gateway API durations, e.g. `10s`, `500ms`).
    #[serde(default)]
    pub timeouts: Option<HttpRouteTimeouts>,
}

/// `rules[].timeouts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteTimeouts {
    /// The whole request.
    #[serde(default)]
    pub request: Option<String>,
    /// One request to a backend.
    #[serde(default)]
    pub backend_request: Option<String>,
}

/// One match: all of its parts must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// The path match; `None` is `PathPrefix /`.
    #[serde(default)]
    pub path: Option<ValueMatch>,
    /// Header matches.
    #[serde(default)]
    pub headers: Vec<ValueMatch>,
    /// Query parameter matches.
    #[serde(default)]
    pub query_params: Vec<ValueMatch>,
    /// The method.
    #[serde(default)]
    pub method: Option<String>,
}

/// A path, header or query match: its type, name (headers, query) and value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueMatch {
    /// `Exact`, `PathPrefix`, `RegularExpression`; `None` is the field's default.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The header or parameter name (not for paths).
    #[serde(default)]
    pub name: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
}

/// One filter; the field named by `type` holds its settings, kept as JSON until translated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestRedirect`, `URLRewrite`,
    /// `RequestMirror`, `ExtensionRef`, …
    #[serde(default, rename = "type")]
    pub kind: String,
    /// `requestHeaderModifier`.
    #[serde(default)]
    pub request_header_modifier: Option<serde_json::Value>,
    /// `responseHeaderModifier`.
    #[serde(default)]
    pub response_header_modifier: Option<serde_json::Value>,
    /// `requestRedirect`.
    #[serde(default)]
    pub request_redirect: Option<serde_json::Value>,
    /// `urlRewrite`.
    #[serde(default)]
    pub url_rewrite: Option<serde_json::Value>,
    /// `requestMirror`.
    #[serde(default)]
    pub request_mirror: Option<serde_json::Value>,
}

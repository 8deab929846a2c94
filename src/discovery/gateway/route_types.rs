//! Serde types of our own for HTTPRoute (gateway.networking.k8s.io/v1), the fields Switchyard
//! reads; unknown fields are ignored, for the reasons given in [`super::types`].

use super::types::{GROUP, ObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// An HTTPRoute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct HttpRoute {
    /// Standard metadata.
    #[serde(default)]
    pub(crate) metadata: ObjectMeta,
    /// Parents, hostnames and rules.
    #[serde(default)]
    pub(crate) spec: HttpRouteSpec,
}

impl kube::Resource for HttpRoute {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;
    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("HTTPRoute")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(GROUP)
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("httproutes")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteSpec {
    /// The Gateways (and listeners) it attaches to.
    #[serde(default)]
    pub(crate) parent_refs: Vec<ObjectRef>,
    /// Hostnames; empty: the listeners'.
    #[serde(default)]
    pub(crate) hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub(crate) rules: Vec<HttpRouteRule>,
}

/// One rule: matches, filters, backends, timeouts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteRule {
    /// The rule's name (optional).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Matches (any of them); empty: `PathPrefix /`.
    #[serde(default)]
    pub(crate) matches: Vec<HttpRouteMatch>,
    /// Filters, in order.
    #[serde(default)]
    pub(crate) filters: Vec<HttpRouteFilter>,
    /// Weighted backends.
    #[serde(default)]
    pub(crate) backend_refs: Vec<ObjectRef>,
    /// Request and backend-request timeouts (Gateway API durations, e.g. `10s`, `500ms`).
    #[serde(default)]
    pub(crate) timeouts: Option<HttpRouteTimeouts>,
}

/// `rules[].timeouts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteTimeouts {
    /// The whole request.
    #[serde(default)]
    pub(crate) request: Option<String>,
    /// One request to a backend.
    #[serde(default)]
    pub(crate) backend_request: Option<String>,
}

/// One match: all of its parts must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteMatch {
    /// The path match; `None` is `PathPrefix /`.
    #[serde(default)]
    pub(crate) path: Option<ValueMatch>,
    /// Header matches.
    #[serde(default)]
    pub(crate) headers: Vec<ValueMatch>,
    /// Query parameter matches.
    #[serde(default)]
    pub(crate) query_params: Vec<ValueMatch>,
    /// The method.
    #[serde(default)]
    pub(crate) method: Option<String>,
}

/// A path, header or query match: its type, name (headers, query) and value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValueMatch {
    /// `Exact`, `PathPrefix`, `RegularExpression`; `None` is the field's default.
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    /// The header or parameter name (not for paths).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// The value.
    #[serde(default)]
    pub(crate) value: Option<String>,
}

/// One filter; the field named by `type` holds its settings, kept as JSON until translated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HttpRouteFilter {
    /// `RequestHeaderModifier`, `ResponseHeaderModifier`, `RequestRedirect`, `URLRewrite`,
    /// `RequestMirror`, `ExtensionRef`, …
    #[serde(default, rename = "type")]
    pub(crate) kind: String,
    /// `requestHeaderModifier`.
    #[serde(default)]
    pub(crate) request_header_modifier: Option<serde_json::Value>,
    /// `responseHeaderModifier`.
    #[serde(default)]
    pub(crate) response_header_modifier: Option<serde_json::Value>,
    /// `requestRedirect`.
    #[serde(default)]
    pub(crate) request_redirect: Option<serde_json::Value>,
    /// `urlRewrite`.
    #[serde(default)]
    pub(crate) url_rewrite: Option<serde_json::Value>,
    /// `requestMirror`.
    #[serde(default)]
    pub(crate) request_mirror: Option<serde_json::Value>,
}

//! Gateway API objects as the standard-channel CRDs (v1.4) accept them, for the fields our
//! deploy files use: strict serde types (`deny_unknown_fields`, enums for the CRDs' enums)
//! and the CRDs' patterns and CEL rules that matter here, checked in [`validate_gateway`] and
//! [`validate_route`].
//!
//! Written here rather than taken from `src/` (whose types read what the controller serves,
//! leniently) or from the kube-rs `gateway-api` crate (built on another kube): the question
//! is "would the API server take this YAML", without a cluster. With one, `tests/deploy_gateway.rs`
//! also asks it (`kubectl apply --dry-run=server`).

use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Meta {
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    #[allow(dead_code, reason = "accepted, not checked")]
    pub(crate) labels: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Object<S> {
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) metadata: Meta,
    pub(crate) spec: S,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GatewayClassSpec {
    pub(crate) controller_name: String,
    pub(crate) description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GatewaySpec {
    pub(crate) gateway_class_name: String,
    pub(crate) listeners: Vec<Listener>,
}

#[derive(Deserialize, PartialEq, Debug, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Protocol {
    Http,
    Https,
    Tls,
    Tcp,
    Udp,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Listener {
    pub(crate) name: String,
    pub(crate) hostname: Option<String>,
    pub(crate) port: i64,
    pub(crate) protocol: Protocol,
    pub(crate) tls: Option<ListenerTls>,
    pub(crate) allowed_routes: Option<AllowedRoutes>,
}

#[derive(Deserialize, PartialEq, Debug)]
pub(crate) enum TlsMode {
    Terminate,
    Passthrough,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListenerTls {
    pub(crate) mode: Option<TlsMode>,
    #[serde(default)]
    pub(crate) certificate_refs: Vec<SecretRef>,
}

/// `certificateRefs[]` (SecretObjectReference).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SecretRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
}

/// `parentRefs[]` (ParentReference).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ParentRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) section_name: Option<String>,
    pub(crate) port: Option<i64>,
}

/// `backendRefs[]` (HTTPBackendRef, without its filters).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct BackendRef {
    pub(crate) group: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) port: Option<i64>,
    pub(crate) weight: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct AllowedRoutes {
    pub(crate) namespaces: Option<RouteNamespaces>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RouteNamespaces {
    pub(crate) from: FromNamespaces,
}

#[derive(Deserialize, PartialEq, Debug)]
pub(crate) enum FromNamespaces {
    All,
    Same,
    Selector,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HttpRouteSpec {
    #[serde(default)]
    pub(crate) parent_refs: Vec<ParentRef>,
    #[serde(default)]
    pub(crate) hostnames: Vec<String>,
    #[serde(default)]
    pub(crate) rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Rule {
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) matches: Vec<Match>,
    #[serde(default)]
    pub(crate) filters: Vec<Filter>,
    #[serde(default)]
    pub(crate) backend_refs: Vec<BackendRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Match {
    pub(crate) path: Option<PathMatch>,
    #[serde(default)]
    pub(crate) headers: Vec<HeaderMatch>,
}

#[derive(Deserialize, PartialEq, Debug)]
pub(crate) enum PathType {
    Exact,
    PathPrefix,
    RegularExpression,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PathMatch {
    #[serde(rename = "type")]
    pub(crate) type_: PathType,
    pub(crate) value: String,
}

#[derive(Deserialize, PartialEq, Debug)]
pub(crate) enum HeaderMatchType {
    Exact,
    RegularExpression,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HeaderMatch {
    #[serde(rename = "type")]
    pub(crate) type_: Option<HeaderMatchType>,
    pub(crate) name: String,
    pub(crate) value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct Filter {
    #[serde(rename = "type")]
    pub(crate) type_: String,
    pub(crate) request_header_modifier: Option<HeaderModifier>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HeaderModifier {
    #[serde(default)]
    pub(crate) set: Vec<HeaderValue>,
    #[serde(default)]
    pub(crate) add: Vec<HeaderValue>,
    #[serde(default)]
    pub(crate) remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct HeaderValue {
    pub(crate) name: String,
    pub(crate) value: String,
}

/// Reads `doc` strictly as a `T`, naming the object on failure.
pub(crate) fn strict<T: serde::de::DeserializeOwned>(doc: &Value, origin: &str) -> T {
    serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]))
}

/// RFC 1123 DNS label (listener and rule names, CRD pattern `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).
pub(crate) fn is_dns_label(s: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| ok(c) || c == '-')
        && s.starts_with(ok)
        && s.ends_with(ok)
}

/// A listener or route hostname: DNS labels, optionally after a leading `*.`; no IP address.
pub(crate) fn is_hostname(s: &str) -> bool {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    s.len() <= 253 && rest.split('.').all(is_dns_label) && rest.parse::<std::net::IpAddr>().is_err()
}

/// A `controllerName`: `DOMAIN/PATH` (CRD pattern of `GatewayController`).
pub(crate) fn is_controller_name(s: &str) -> bool {
    s.split_once('/').is_some_and(|(domain, path)| {
        is_hostname(domain) && !domain.starts_with('*') && !path.is_empty()
    })
}

/// An HTTP header name (RFC 7230 token, CRD pattern of `HTTPHeaderName`).
pub(crate) fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

//! Serde types of our own for the Gateway API kinds served (gateway.networking.k8s.io v1:
//! GatewayClass, Gateway, HTTPRoute; v1beta1: ReferenceGrant).
//!
//! Why not the kube-rs `gateway-api` crate: it is built on kube 4 / k8s-openapi 0.28 and we
//! are on kube 5 / 0.29, so its types do not implement our `kube::Resource`. Generating them
//! from the CRDs would bring hundreds of fields we do not serve. These types hold only the
//! fields Switchyard reads; **unknown fields are ignored** (no `deny_unknown_fields`), so a
//! newer CRD version with more fields still parses, and fields we do not serve cannot fail an
//! object. Status is written with JSON merge patches of the fields we own, never by
//! round-tripping these types, so nothing we do not know is lost.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};

/// The API group of every kind here.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// `kube::Resource` for a kind of [`GROUP`]: kind, version, plural, scope.
macro_rules! gateway_resource {
    ($ty:ident, $kind:literal, $version:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = $scope;
            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($kind)
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($crate::discovery::gateway::types::GROUP)
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($version)
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                std::borrow::Cow::Borrowed($plural)
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(super) use gateway_resource;

/// A GatewayClass (cluster-scoped).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayClass {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the class asks for.
    #[serde(default)]
    pub spec: GatewayClassSpec,
    /// What controllers wrote.
    #[serde(default)]
    pub status: Option<GatewayClassStatus>,
}
gateway_resource!(
    GatewayClass,
    "GatewayClass",
    "v1",
    "gatewayclasses",
    k8s_openapi::ClusterResourceScope
);

/// `GatewayClass.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    /// The controller that owns the class.
    #[serde(default)]
    pub controller_name: String,
}

/// `GatewayClass.status` (as we read it back): conditions and the features claimed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayClassStatus {
    /// The conditions.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `supportedFeatures`: each `{name}`.
    #[serde(default, rename = "supportedFeatures")]
    pub supported_features: Vec<FeatureName>,
}

/// One entry of `supportedFeatures`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureName {
    /// The feature, as the conformance suite names it.
    #[serde(default)]
    pub name: String,
}

/// A Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Class and listeners.
    #[serde(default)]
    pub spec: GatewaySpec,
    /// What controllers wrote (read back as JSON, compared with what we would write).
    #[serde(default)]
    pub status: Option<serde_json::Value>,
}
gateway_resource!(
    Gateway,
    "Gateway",
    "v1",
    "gateways",
    k8s_openapi::NamespaceResourceScope
);

/// `Gateway.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The GatewayClass.
    #[serde(default)]
    pub gateway_class_name: String,
    /// The listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

/// One Gateway listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Its name (unique in the Gateway; routes attach by it as `sectionName`).
    #[serde(default)]
    pub name: String,
    /// The hostname it serves; `None` is any.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The port.
    #[serde(default)]
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`.
    #[serde(default)]
    pub protocol: String,
    /// TLS settings (HTTPS, TLS).
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `Listener.tls`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<String>,
    /// The certificates (Secrets).
    #[serde(default)]
    pub certificate_refs: Vec<ObjectRef>,
}

/// `Listener.allowedRoutes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// Namespaces routes may come from.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds; empty: the protocol's default kinds.
    #[serde(default)]
    pub kinds: Vec<GroupKind>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `Same` (default), `All` or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// The namespace label selector for `Selector`.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A group and kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupKind {
    /// The API group; `None` or empty is the core group.
    #[serde(default)]
    pub group: Option<String>,
    /// The kind.
    #[serde(default)]
    pub kind: String,
}

/// A reference to an object (certificateRefs, backendRefs, parentRefs, mirror targets).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// The API group; `None` or empty is the core group (except for parentRefs).
    #[serde(default)]
    pub group: Option<String>,
    /// The kind; `None` is the field's default (Secret, Service, Gateway).
    #[serde(default)]
    pub kind: Option<String>,
    /// The name.
    #[serde(default)]
    pub name: String,
    /// The namespace; `None` is the referring object's.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The port (backendRefs, parentRefs).
    #[serde(default)]
    pub port: Option<i32>,
    /// The listener name (parentRefs).
    #[serde(default)]
    pub section_name: Option<String>,
    /// The share of requests (backendRefs; default 1).
    #[serde(default)]
    pub weight: Option<i32>,
}

/// A ReferenceGrant (v1beta1): lets objects of other namespaces refer to this one's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrant {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Who may refer to what.
    #[serde(default)]
    pub spec: ReferenceGrantSpec,
}
gateway_resource!(
    ReferenceGrant,
    "ReferenceGrant",
    "v1beta1",
    "referencegrants",
    k8s_openapi::NamespaceResourceScope
);

/// `ReferenceGrant.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrantSpec {
    /// The referring kinds and namespaces.
    #[serde(default)]
    pub from: Vec<GrantFrom>,
    /// The kinds (and optionally names) in this namespace they may refer to.
    #[serde(default)]
    pub to: Vec<GrantTo>,
}

/// `ReferenceGrant.spec.from[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantFrom {
    /// The referring object's group.
    #[serde(default)]
    pub group: String,
    /// The referring object's kind.
    #[serde(default)]
    pub kind: String,
    /// The referring object's namespace.
    #[serde(default)]
    pub namespace: String,
}

/// `ReferenceGrant.spec.to[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantTo {
    /// The referred-to group.
    #[serde(default)]
    pub group: String,
    /// The referred-to kind.
    #[serde(default)]
    pub kind: String,
    /// One name only; `None` is every object of the kind.
    #[serde(default)]
    pub name: Option<String>,
}

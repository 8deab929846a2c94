//! Serde types of our own for BackendTLSPolicy (gateway.networking.k8s.io/v1, standard channel
//! since Gateway API v1.4): the fields Switchyard reads, unknown fields ignored, for the
//! reasons given in [`super::types`].

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A BackendTLSPolicy: how to speak TLS to the Service ports it targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendTlsPolicy {
    /// Standard metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Targets and validation.
    #[serde(default)]
    pub spec: BackendTlsPolicySpec,
    /// What controllers wrote (`ancestors`, kept as read).
    #[serde(default)]
    pub status: Option<PolicyStatus>,
}

super::types::gateway_resource!(
    BackendTlsPolicy,
    "BackendTLSPolicy",
    "v1",
    "backendtlspolicies",
    k8s_openapi::NamespaceResourceScope
);

/// `BackendTLSPolicy.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTlsPolicySpec {
    /// The Services (and ports, by `sectionName`) it applies to.
    #[serde(default)]
    pub target_refs: Vec<TargetRef>,
    /// How the endpoints' certificates are checked.
    #[serde(default)]
    pub validation: Validation,
}

/// One `targetRefs` entry (a LocalPolicyTargetReferenceWithSectionName).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// API group ("" for core).
    #[serde(default)]
    pub group: String,
    /// Kind (Service).
    #[serde(default)]
    pub kind: String,
    /// Name, in the policy's namespace.
    #[serde(default)]
    pub name: String,
    /// The Service port's name; `None`: every port.
    #[serde(default)]
    pub section_name: Option<String>,
}

/// `spec.validation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// ConfigMaps (key `ca.crt`) of the CAs to trust.
    #[serde(default)]
    pub ca_certificate_refs: Vec<LocalRef>,
    /// `System`: the well-known roots instead.
    #[serde(default, rename = "wellKnownCACertificates")]
    pub well_known_ca_certificates: Option<String>,
    /// The SNI, and the name verified unless `subjectAltNames` are given.
    #[serde(default)]
    pub hostname: String,
    /// Names verified instead of `hostname`.
    #[serde(default)]
    pub subject_alt_names: Vec<SubjectAltName>,
}

/// A reference to an object in the policy's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalRef {
    /// API group ("" for core).
    #[serde(default)]
    pub group: String,
    /// Kind (ConfigMap).
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
}

/// One `subjectAltNames` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubjectAltName {
    /// `Hostname` or `URI`.
    #[serde(default, rename = "type")]
    pub type_: String,
    /// For `Hostname`.
    #[serde(default)]
    pub hostname: Option<String>,
    /// For `URI`.
    #[serde(default)]
    pub uri: Option<String>,
}

/// `status` of a policy (PolicyStatus): one entry per ancestor and controller.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// The entries as read (JSON, so other controllers' are written back unchanged).
    #[serde(default)]
    pub ancestors: Vec<serde_json::Value>,
}

//! BackendTLSPolicies → TLS settings of the Service ports they target (a pure function of the
//! policies, ConfigMaps and Services; applied in [`super::backend_upstreams`]).
//!
//! Rules (Gateway API v1.4, and its conformance tests BackendTLSPolicy, -SANValidation,
//! -ConflictResolution, -InvalidCACertificateRef, -InvalidKind):
//! - `targetRefs`: core Services in the policy's namespace, every port, or the one named by
//!   `sectionName`. A port targeted by its name takes that policy over one for the whole
//!   Service (both are `Accepted`);
//! - two policies for the same Service and `sectionName`: the older (creation time, then
//!   namespace/name) wins, the other is `Accepted: False, Conflicted` and not applied;
//! - `caCertificateRefs`: core ConfigMaps of the same namespace, PEM under `ca.crt`. A ref of
//!   another kind is `ResolvedRefs: False, InvalidKind`; a missing ConfigMap, or one without
//!   a certificate under `ca.crt`, `InvalidCACertificateRef`. No usable CA at all:
//!   `Accepted: False, NoValidCACertificate`, and the ports it targets answer 502 (the
//!   conformance tests accept 500, 502 or 503: we never fall back to plain text or to no
//!   verification). `wellKnownCACertificates: System` trusts the system roots
//!   ([`crate::upstream::trust`]);
//! - `hostname` is the SNI, and the name verified unless `subjectAltNames` are given
//!   (`Hostname` and `URI` entries: `upstream_verify_names`).

use super::tls_policy_types::BackendTlsPolicy;
use crate::config::{SubjectName, Trust};
use crate::discovery::state::{Key, Store};
use crate::discovery::translate::service_name;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use std::collections::HashMap;
use std::sync::Arc;

/// The ConfigMap key the CA certificates are read from.
pub const CA_KEY: &str = "ca.crt";

/// How to speak TLS to a Service port.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendTls {
    /// The CAs trusted; `None`: no usable CA (requests answer 502).
    pub trust: Option<Trust>,
    /// SNI (`validation.hostname`).
    pub sni: String,
    /// `subjectAltNames`, verified instead of the SNI.
    pub names: Vec<SubjectName>,
}

/// What a policy's status says, and the service ports it applies to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyVerdict {
    /// `Accepted: False` with this reason; `None`: accepted.
    pub refused: Option<&'static str>,
    /// `ResolvedRefs: False` with this reason; `None`: resolved.
    pub unresolved: Option<&'static str>,
    /// The Switchyard names of the Service ports it applies to.
    pub services: Vec<Arc<str>>,
}

/// Every policy's verdict, and the TLS of each targeted service port.
#[derive(Debug, Clone, Default, PartialEq)]
pub(in crate::discovery) struct Resolved {
    /// By service name.
    pub(in crate::discovery) upstream: HashMap<Arc<str>, Arc<BackendTls>>,
    /// By policy.
    pub(in crate::discovery) verdicts: Vec<(Key, PolicyVerdict)>,
}

/// Resolves every policy (see the module docs).
pub(in crate::discovery) fn resolve(
    policies: &Store<BackendTlsPolicy>,
    config_maps: &Store<ConfigMap>,
    services: &Store<Service>,
) -> Resolved {
    let mut sorted: Vec<(&Key, &Arc<BackendTlsPolicy>)> = policies.iter().collect();
    sorted.sort_by(|a, b| {
        let age = |p: &BackendTlsPolicy| p.metadata.creation_timestamp.clone();
        age(a.1).cmp(&age(b.1)).then_with(|| a.0.cmp(b.0))
    });
    let mut claimed: HashMap<(String, Option<String>), &Key> = HashMap::new();
    let mut out = Resolved::default();
    // Whole-Service policies first, so a port named by a policy of its own overrides them.
    let mut by_port: Vec<(Arc<str>, bool, Arc<BackendTls>)> = Vec::new();
    for (key, policy) in sorted {
        let targets: Vec<_> = policy
            .spec
            .target_refs
            .iter()
            .filter(|t| t.group.is_empty() && t.kind == "Service")
            .map(|t| (t.name.clone(), t.section_name.clone()))
            .collect();
        if targets.iter().any(|t| claimed.contains_key(t)) {
            // Not applied; its status still names the Gateways its targets are reached by.
            let v = PolicyVerdict {
                refused: Some("Conflicted"),
                unresolved: None,
                services: targets
                    .iter()
                    .flat_map(|(n, s)| ports(services, &key.0, n, s.as_deref()))
                    .collect(),
            };
            out.verdicts.push((key.clone(), v));
            continue;
        }
        let (tls, mut v) = validate(&key.0, policy, config_maps);
        let tls = Arc::new(tls);
        for (name, section) in &targets {
            claimed.insert((name.clone(), section.clone()), key);
            for port in ports(services, &key.0, name, section.as_deref()) {
                v.services.push(Arc::clone(&port));
                by_port.push((port, section.is_some(), Arc::clone(&tls)));
            }
        }
        out.verdicts.push((key.clone(), v));
    }
    by_port.sort_by_key(|(_, named, _)| *named);
    for (port, _, tls) in by_port {
        out.upstream.insert(port, tls);
    }
    out
}

/// The service names of the ports of Service `ns/name` (only the one named `section`).
fn ports(services: &Store<Service>, ns: &str, name: &str, section: Option<&str>) -> Vec<Arc<str>> {
    let Some(svc) = services.get(&(ns.to_owned(), name.to_owned())) else {
        return Vec::new();
    };
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter(|p| section.is_none() || p.name.as_deref() == section)
        .filter_map(|p| service_name(ns, name, p))
        .collect()
}

/// The TLS a (not conflicted) policy asks for, and its conditions.
fn validate(
    ns: &str,
    policy: &BackendTlsPolicy,
    config_maps: &Store<ConfigMap>,
) -> (BackendTls, PolicyVerdict) {
    let validation = &policy.spec.validation;
    let mut v = PolicyVerdict::default();
    let mut pem = String::new();
    for r in &validation.ca_certificate_refs {
        if !r.group.is_empty() || r.kind != "ConfigMap" {
            v.unresolved.get_or_insert("InvalidKind");
            continue;
        }
        let text = config_maps
            .get(&(ns.to_owned(), r.name.clone()))
            .and_then(|cm| cm.data.as_ref()?.get(CA_KEY).cloned())
            .filter(|t| crate::upstream::trust::pem_certificates(t).is_ok());
        match text {
            Some(t) => {
                pem.push_str(&t);
                pem.push('\n');
            }
            None => {
                v.unresolved.get_or_insert("InvalidCACertificateRef");
            }
        }
    }
    let trust = if !pem.is_empty() {
        Some(Trust::Pem(Arc::from(pem)))
    } else if validation.well_known_ca_certificates.as_deref() == Some("System")
        && validation.ca_certificate_refs.is_empty()
    {
        Some(Trust::System)
    } else {
        v.refused = Some("NoValidCACertificate");
        None
    };
    let names = validation
        .subject_alt_names
        .iter()
        .filter_map(|san| match san.type_.as_str() {
            "Hostname" => Some(SubjectName::Dns(Arc::from(san.hostname.as_deref()?))),
            "URI" => Some(SubjectName::Uri(Arc::from(san.uri.as_deref()?))),
            _ => None,
        })
        .collect();
    let tls = BackendTls {
        trust,
        sni: validation.hostname.clone(),
        names,
    };
    (tls, v)
}

#[cfg(test)]
#[path = "tls_policies_tests.rs"]
mod tests;

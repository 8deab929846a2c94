//! The certificates loaded right now, as the admin page and `/metrics` show them: names,
//! source and notAfter, read from each leaf with `x509-parser`.
//!
//! The view is built when a certificate store is swapped in (a reload, a changed file), not
//! per request: parsing a few leaves costs microseconds and then costs nothing until the next
//! swap. It holds what an operator needs to renew a certificate and nothing a client could
//! not see in a handshake — never the key, nor the key's path.

use crate::tls::{CertSpec, CertStore};
use arc_swap::ArcSwap;
use serde::Serialize;
use std::sync::Arc;
use x509_parser::extensions::GeneralName;

/// The certificates in service, shared between the HTTP listeners (writer) and the admin.
pub type CertBoard = Arc<ArcSwap<Vec<CertInfo>>>;

/// One loaded certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Its first DNS name (else its common name, else `-`): the metric's `name` label.
    pub name: String,
    /// Every DNS name it covers.
    pub names: Vec<String>,
    /// The names it serves when the config lists them (empty: its DNS names).
    pub hosts: Vec<String>,
    /// Where it came from: the certificate file's path, or `secret/namespace/name`.
    pub source: String,
    /// Its issuer's distinguished name.
    pub issuer: String,
    /// notBefore (Unix seconds).
    pub not_before: i64,
    /// notAfter (Unix seconds).
    pub not_after: i64,
    /// Served to clients whose SNI matches nothing.
    pub default: bool,
}

/// Describes every spec that `store` loaded (the two are in the same order).
pub fn describe(specs: &[CertSpec], default: Option<usize>, store: &CertStore) -> Vec<CertInfo> {
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let leaf = store.leaf(i)?;
            Some(describe_one(spec, leaf, default == Some(i)))
        })
        .collect()
}

/// Where a spec came from: in-memory PEM is named `secret/ns/name/tls.crt`; the file path
/// otherwise.
fn source(spec: &CertSpec) -> String {
    let path = spec.cert.display().to_string();
    match (&spec.pem, path.strip_suffix("/tls.crt")) {
        (Some(_), Some(secret)) => secret.to_owned(),
        _ => path,
    }
}

fn describe_one(spec: &CertSpec, leaf: &[u8], default: bool) -> CertInfo {
    let mut info = CertInfo {
        name: "-".into(),
        names: Vec::new(),
        hosts: spec.hosts.clone(),
        source: source(spec),
        issuer: String::new(),
        not_before: 0,
        not_after: 0,
        default,
    };
    // The store already accepted this DER; a parse failure here leaves the fields empty.
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return info;
    };
    info.not_before = cert.validity().not_before.timestamp();
    info.not_after = cert.validity().not_after.timestamp();
    info.issuer = cert.issuer().to_string();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        info.names = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(name) => Some((*name).to_owned()),
                _ => None,
            })
            .collect();
    }
    let common = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    if let Some(first) = info.names.first().cloned().or(common) {
        info.name = first;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(names: &[&str]) -> (CertSpec, rcgen::CertifiedKey<rcgen::KeyPair>) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let issued = rcgen::generate_simple_self_signed(names).unwrap();
        let spec = CertSpec::from_pem(
            "secret/shop/tls",
            issued.cert.pem().into_bytes(),
            issued.signing_key.serialize_pem().into_bytes(),
            Vec::new(),
        );
        (spec, issued)
    }

    #[test]
    fn a_secret_certificate_is_described_by_its_names_source_and_expiry() {
        let (spec, issued) = spec_for(&["shop.test", "www.shop.test"]);
        let store = CertStore::load(std::slice::from_ref(&spec), Some(0)).unwrap();
        let infos = describe(&[spec], Some(0), &store);
        assert_eq!(infos.len(), 1);
        let info = &infos[0];
        assert_eq!(info.name, "shop.test");
        assert_eq!(info.names, ["shop.test", "www.shop.test"]);
        assert_eq!(info.source, "secret/shop/tls");
        assert!(info.default);
        // rcgen's default validity: 1975-01-01 to 4096-01-01.
        assert_eq!(info.not_before, 157_766_400);
        assert_eq!(info.not_after, 67_090_118_400);
        let json = serde_json::to_string(info).unwrap();
        let key = issued.signing_key.serialize_pem();
        let body: String = key.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!json.contains(&body[..40]), "no key material in {json}");
        assert!(!json.contains("tls.key"), "not even the key's name: {json}");
    }

    #[test]
    fn a_file_certificate_keeps_its_path_as_source() {
        let mut spec = spec_for(&["a.test"]).0;
        spec.pem = None;
        spec.cert = "/etc/switchyard/tls.crt".into();
        assert_eq!(source(&spec), "/etc/switchyard/tls.crt");
    }
}

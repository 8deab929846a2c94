//! What TLS to a service's endpoints trusts and which names it accepts: the validated form of
//! `upstream_ca` and `upstream_verify_names` (and of a Gateway API BackendTLSPolicy's
//! `validation`, which discovery translates into the same two fields).
//!
//! These are plain data so that the config layer needs nothing from the upstream layer;
//! [`crate::upstream::trust`] turns them into a rustls trust store and verifier.
//!
//! Spelling in the file, like Envoy's `trusted_ca` (a file or an inline string) plus
//! BackendTLSPolicy's `wellKnownCACertificates: System`:
//!
//! - `upstream_ca = "system"`: the platform's well-known roots;
//! - `upstream_ca = "-----BEGIN CERTIFICATE-----..."`: the PEM text itself;
//! - anything else is the path of a PEM file (`./system` for a file named `system`).

use std::path::PathBuf;
use std::sync::Arc;

/// The certificate authorities an upstream TLS connection trusts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// A PEM file of CA certificates, read when the service's client is built.
    File(PathBuf),
    /// PEM text of CA certificates (from a Kubernetes ConfigMap, or inline in the file).
    Pem(Arc<str>),
    /// The platform's well-known roots (see [`crate::upstream::trust`]).
    System,
}

impl Trust {
    /// The trust an `upstream_ca` value names (see the module docs).
    pub fn parse(value: &str) -> Trust {
        if value == "system" {
            Trust::System
        } else if value.trim_start().starts_with("-----BEGIN") {
            Trust::Pem(Arc::from(value))
        } else {
            Trust::File(PathBuf::from(value))
        }
    }
}

/// A name the endpoint's certificate must carry (instead of the SNI), as a subject
/// alternative name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubjectName {
    /// A DNS name (or an IP address), checked like a server name.
    Dns(Arc<str>),
    /// A URI SAN, such as a SPIFFE ID (`spiffe://cluster.local/ns/a/sa/b`), compared exactly.
    Uri(Arc<str>),
}

/// Why a verify name is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectNameError {
    /// Neither a DNS name, an IP address nor an absolute URI.
    #[error("{0:?} is neither a DNS name nor an absolute URI (scheme://...)")]
    Invalid(String),
}

impl SubjectName {
    /// A URI when the value has a scheme (`scheme:` before any `/`), else a DNS name.
    pub fn parse(value: &str) -> Result<SubjectName, SubjectNameError> {
        let bad = || SubjectNameError::Invalid(value.to_owned());
        if let Some((scheme, rest)) = value.split_once(':')
            && !scheme.contains('/')
        {
            let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            // An IPv6 address also holds colons: it is a server name, not a URI.
            if value.parse::<std::net::Ipv6Addr>().is_ok() {
                return Ok(SubjectName::Dns(Arc::from(value)));
            }
            if !scheme_ok || rest.is_empty() || rest.contains(char::is_whitespace) {
                return Err(bad());
            }
            return Ok(SubjectName::Uri(Arc::from(value)));
        }
        rustls::pki_types::ServerName::try_from(value).map_err(|_| bad())?;
        Ok(SubjectName::Dns(Arc::from(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_ca_values_name_the_system_roots_pem_text_or_a_file() {
        assert_eq!(Trust::parse("system"), Trust::System);
        assert_eq!(
            Trust::parse("./system"),
            Trust::File(PathBuf::from("./system"))
        );
        let pem = "-----BEGIN CERTIFICATE-----\nMII=\n-----END CERTIFICATE-----\n";
        assert_eq!(Trust::parse(pem), Trust::Pem(Arc::from(pem)));
        assert_eq!(
            Trust::parse("/etc/ca.pem"),
            Trust::File(PathBuf::from("/etc/ca.pem"))
        );
    }

    #[test]
    fn verify_names_are_dns_names_ip_addresses_or_uris() {
        let dns = |s: &str| Ok(SubjectName::Dns(Arc::from(s)));
        assert_eq!(
            SubjectName::parse("backend.internal"),
            dns("backend.internal")
        );
        assert_eq!(SubjectName::parse("10.0.0.1"), dns("10.0.0.1"));
        assert_eq!(SubjectName::parse("::1"), dns("::1"));
        assert_eq!(
            SubjectName::parse("spiffe://cluster.local/ns/a/sa/b"),
            Ok(SubjectName::Uri(Arc::from(
                "spiffe://cluster.local/ns/a/sa/b"
            )))
        );
        for bad in ["", "bad name", "1http://x", "spiffe:", "a b:c"] {
            assert!(SubjectName::parse(bad).is_err(), "{bad:?}");
        }
    }
}

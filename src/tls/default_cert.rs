//! The certificate served when no configured one matches the SNI (or none was sent) and no
//! default is configured: self-signed, generated once per process.
//!
//! Why: without it, an unmatched name either got some other host's certificate (showing a
//! stranger that host's names) or, with no certificate loaded at all (Kubernetes mode after the
//! last TLS Ingress is deleted, a TLS listener still waiting for its Secrets), the handshake
//! failed, turning the clean 404 the HTTP layer would give into a TLS error. ingress-nginx
//! ("Kubernetes Ingress Controller Fake Certificate") and Traefik ("TRAEFIK DEFAULT CERT") serve
//! a generated certificate instead; so do we. It carries no host name at all, only the common
//! name [`DEFAULT_CERT_NAME`], so no client verifies it and it tells nobody anything.
//!
//! It is generated once (an ECDSA P-256 key, about a millisecond) and shared by every store the
//! process loads, so reloads do not change it and resumed sessions keep matching it.

use super::TlsError;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, OnceLock};

/// Subject common name of the generated default certificate.
pub const DEFAULT_CERT_NAME: &str = "Switchyard Default Certificate";

static GENERATED: OnceLock<Arc<CertifiedKey>> = OnceLock::new();

/// The process's generated default certificate, made on first use.
pub fn generated() -> Result<Arc<CertifiedKey>, TlsError> {
    if let Some(key) = GENERATED.get() {
        return Ok(Arc::clone(key));
    }
    let key = Arc::new(generate()?);
    // Two first callers at once: both generate, one is kept, both return the kept one.
    Ok(Arc::clone(GENERATED.get_or_init(|| key)))
}

fn generate() -> Result<CertifiedKey, TlsError> {
    let err = |source: rcgen::Error| TlsError::Generate {
        reason: source.to_string(),
    };
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, DEFAULT_CERT_NAME);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Switchyard");
    let key_pair = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key_pair).map_err(err)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_pair.serialize_der()));
    let signing_key = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|source| TlsError::Generate {
            reason: source.to_string(),
        })?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_certificate_names_no_host_and_is_made_once() {
        let key = generated().unwrap();
        assert!(Arc::ptr_eq(&key, &generated().unwrap()));
        let leaf = webpki::EndEntityCert::try_from(&key.cert[0]).unwrap();
        assert_eq!(leaf.valid_dns_names().count(), 0);
        assert!(key.keys_match().is_ok());
        let text = String::from_utf8_lossy(key.cert[0].as_ref()).into_owned();
        assert!(text.contains(DEFAULT_CERT_NAME));
    }
}

//! The rustls client config of a TLS upstream (`https`, `h2`): which CAs it trusts
//! ([`Trust`]) and which names the endpoint's certificate must carry.
//!
//! - A CA file is read each time the service's client is built (a settings change), as
//!   before; PEM text comes from a Kubernetes ConfigMap (BackendTLSPolicy) or the file itself.
//! - `System` is the platform's CA store, read with `rustls-native-certs` (the container's
//!   `/etc/ssl/certs`, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), once per process. We chose it over
//!   `webpki-roots` because it is already in the tree (kube's client uses it), and because it
//!   is what the operator controls: an image's or a cluster's own CA bundle (distroless ships
//!   Mozilla's set) is trusted without rebuilding Switchyard, as Envoy and Go programs do.
//! - With `upstream_verify_names`, the certificate is checked against those names instead of
//!   the SNI by [`super::verify_names`]; without them, rustls' own verifier checks the SNI (or
//!   the endpoint's IP address).
//! - `upstream_verify = false` uses [`super::unverified`].

use super::http::{ClientError, ClientSettings};
use crate::config::{Trust, UpstreamProtocol};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, pem::PemObject};
use std::sync::{Arc, OnceLock};

/// Why a set of CA certificates is not usable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrustError {
    /// The PEM could not be read.
    #[error("{0}")]
    Pem(String),
    /// It holds no certificate rustls can use as a trust anchor.
    #[error("no usable certificate")]
    Empty,
}

/// The certificates of a PEM text (at least one, each a usable trust anchor).
pub fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrustError::Pem(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    if roots.add_parsable_certificates(certs.iter().cloned()).0 == 0 {
        return Err(TrustError::Empty);
    }
    Ok(certs)
}

/// The trust store `trust` names.
pub(super) fn roots(trust: &Trust) -> Result<Arc<RootCertStore>, ClientError> {
    let bad = |reason: String| ClientError::Ca {
        what: describe(trust),
        reason,
    };
    let certs = match trust {
        Trust::System => return system().map_err(|e| bad(e.to_string())),
        Trust::Pem(pem) => pem_certificates(pem).map_err(|e| bad(e.to_string()))?,
        Trust::File(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?,
    };
    let mut roots = RootCertStore::empty();
    if roots.add_parsable_certificates(certs).0 == 0 {
        return Err(bad("no usable certificate".into()));
    }
    Ok(Arc::new(roots))
}

/// How a trust is named in errors and logs.
fn describe(trust: &Trust) -> String {
    match trust {
        Trust::File(path) => path.display().to_string(),
        Trust::Pem(_) => "(inline PEM)".into(),
        Trust::System => "(system roots)".into(),
    }
}

/// The platform's roots, loaded once (a container's CA store does not change under it).
fn system() -> Result<Arc<RootCertStore>, TrustError> {
    static SYSTEM: OnceLock<Result<Arc<RootCertStore>, TrustError>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            if let Some(error) = found.errors.first() {
                tracing::warn!(%error, "reading the system CA store");
            }
            let mut roots = RootCertStore::empty();
            if roots.add_parsable_certificates(found.certs).0 == 0 {
                return Err(TrustError::Empty);
            }
            Ok(Arc::new(roots))
        })
        .clone()
}

/// The rustls client config: TLS 1.2/1.3 with aws-lc-rs, trusting the service's CAs and
/// checking its verify names (plain services get an empty trust store: they never use TLS).
pub(super) fn tls_config(settings: &ClientSettings) -> Result<rustls::ClientConfig, ClientError> {
    let tls = matches!(
        settings.protocol,
        UpstreamProtocol::Https | UpstreamProtocol::H2
    );
    let roots = match &settings.ca {
        Some(trust) => roots(trust)?,
        None if tls && settings.verify => return Err(ClientError::NoCa),
        None => Arc::new(RootCertStore::empty()),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let config = if !settings.verify {
        let unverified = super::unverified::Unverified(provider);
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(unverified))
    } else if settings.verify_names.is_empty() {
        builder.with_root_certificates(roots)
    } else {
        let verifier =
            super::verify_names::VerifyNames::new(roots, provider, &settings.verify_names)?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    Ok(config.with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_roots_come_from_the_platform_store() {
        // This machine (like the distroless image) has a CA bundle.
        let roots = roots(&Trust::System).unwrap();
        assert!(roots.len() > 10, "{} roots", roots.len());
    }

    #[test]
    fn pem_text_without_a_certificate_is_refused() {
        assert!(matches!(pem_certificates(""), Err(TrustError::Empty)));
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(pem_certificates(junk).is_err());
        let err = roots(&Trust::Pem(junk.into())).unwrap_err().to_string();
        assert!(err.starts_with("upstream CA (inline PEM): "), "{err}");
    }
}

//! `upstream_verify_names` (a BackendTLSPolicy's `subjectAltNames`): the endpoint's
//! certificate must carry one of a list of names, which may differ from the SNI sent.
//!
//! A thin wrapper around rustls' [`WebPkiServerVerifier`], so the chain, expiry and handshake
//! signatures are checked exactly as for any other upstream: the inner verifier runs with the
//! SNI, and of its answers only "not valid for this name" is set aside (webpki checks the
//! name last, after the chain, so that answer means the chain is good); then the listed names
//! are checked. DNS names and IP addresses go through webpki's own name matching (wildcards as
//! RFC 6125 says); URI SANs, which webpki does not expose, are read with `x509-parser` and
//! compared exactly (as Gateway API and SPIFFE ask).

use super::http::ClientError;
use crate::config::SubjectName;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// Checks the chain like rustls, then the certificate against any of `names`.
#[derive(Debug)]
pub(super) struct VerifyNames {
    inner: Arc<WebPkiServerVerifier>,
    names: Vec<SubjectName>,
}

impl VerifyNames {
    /// A verifier trusting `roots` that accepts a certificate carrying any of `names`.
    pub(super) fn new(
        roots: Arc<RootCertStore>,
        provider: Arc<CryptoProvider>,
        names: &[SubjectName],
    ) -> Result<Self, ClientError> {
        let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| ClientError::Verifier(e.to_string()))?;
        Ok(VerifyNames {
            inner,
            names: names.to_vec(),
        })
    }

    /// Whether `cert` carries one of the names.
    fn carries_a_name(&self, cert: &CertificateDer<'_>) -> Result<bool, rustls::Error> {
        let parsed = rustls::server::ParsedCertificate::try_from(cert)?;
        let mut uris: Option<Vec<String>> = None;
        for name in &self.names {
            let found = match name {
                SubjectName::Dns(dns) => ServerName::try_from(&**dns)
                    .is_ok_and(|n| rustls::client::verify_server_name(&parsed, &n).is_ok()),
                SubjectName::Uri(uri) => uris
                    .get_or_insert_with(|| uri_sans(cert))
                    .iter()
                    .any(|u| u == &**uri),
            };
            if found {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The URI subject alternative names of a certificate (none if it does not parse).
fn uri_sans(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let Ok((_, parsed)) = X509Certificate::from_der(cert) else {
        return Vec::new();
    };
    let Ok(Some(san)) = parsed.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some((*u).to_owned()),
            _ => None,
        })
        .collect()
}

impl ServerCertVerifier for VerifyNames {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(_)
            | Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {}
            Err(e) => return Err(e),
        }
        if self.carries_a_name(end_entity)? {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(sans: &[&str]) -> (CertificateDer<'static>, Arc<RootCertStore>) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        for san in sans {
            params.subject_alt_names.push(if san.contains("://") {
                rcgen::SanType::URI((*san).try_into().unwrap())
            } else {
                rcgen::SanType::DnsName((*san).try_into().unwrap())
            });
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        let mut roots = RootCertStore::empty();
        roots.add(der.clone()).unwrap();
        (der, Arc::new(roots))
    }

    fn verify(sans: &[&str], names: &[&str], sni: &str) -> Result<(), rustls::Error> {
        let (cert, roots) = issued(sans);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let names: Vec<_> = names
            .iter()
            .map(|n| SubjectName::parse(n).unwrap())
            .collect();
        let v = VerifyNames::new(roots, provider, &names).unwrap();
        let sni = ServerName::try_from(sni.to_owned()).unwrap();
        v.verify_server_cert(&cert, &[], &sni, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn a_listed_name_is_enough_whatever_the_sni() {
        assert!(verify(&["api.internal"], &["other", "api.internal"], "sni.test").is_ok());
        assert!(verify(&["*.svc.local"], &["a.svc.local"], "x").is_ok());
        let uri = "spiffe://cluster.local/ns/a/sa/b";
        assert!(verify(&["x.test", uri], &[uri], "x.test").is_ok());
    }

    #[test]
    fn a_certificate_without_a_listed_name_is_refused_even_when_the_sni_matches() {
        let refused = Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName,
        ));
        assert_eq!(
            verify(&["sni.test"], &["api.internal"], "sni.test"),
            refused
        );
        assert_eq!(
            verify(
                &["spiffe://cluster.local/ns/a/sa/b"],
                &["spiffe://cluster.local/ns/a/sa/c"],
                "x"
            ),
            refused
        );
    }
}

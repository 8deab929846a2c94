//! TLS for the HTTPS integration tests: a throwaway CA (rcgen) issuing certificates into a
//! temp dir, `[[certificates]]` config entries, and client connections (tokio-rustls with the
//! aws-lc-rs provider, trusting that CA) that hand over to hyper HTTP/1.1 or HTTP/2.

use super::https::{H1, H2c};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub const H2: &[u8] = b"h2";
pub const HTTP1: &[u8] = b"http/1.1";

/// Bounds every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(5);

pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out after {WAIT:?}"))
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A throwaway CA and a temp dir to write certificates and keys into.
pub struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate written to disk.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The leaf, to compare with what a client received.
    pub leaf: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "switchyard https test ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
        }
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues an ECDSA P-256 leaf for `names` into `<stem>.crt` (leaf, then CA) and
    /// `<stem>.key` (PKCS#8), overwriting what was there.
    pub fn issue(&self, stem: &str, names: &[&str]) -> Issued {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let leaf = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        let cert = self.path(&format!("{stem}.crt"));
        let key_path = self.path(&format!("{stem}.key"));
        std::fs::write(&cert, format!("{}{}", leaf.pem(), self.ca.pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Issued {
            cert,
            key: key_path,
            leaf: leaf.der().clone(),
        }
    }
}

/// `[[certificates]]` entries: (certificate, is the default).
pub fn certificates(certs: &[(&Issued, bool)]) -> String {
    certs
        .iter()
        .map(|(c, default)| {
            format!(
                "[[certificates]]\ncert = {:?}\nkey = {:?}\ndefault = {default}\n",
                c.cert.display().to_string(),
                c.key.display().to_string()
            )
        })
        .collect()
}

/// The DNS names in a leaf's subjectAltName.
pub fn dns_names(leaf: &CertificateDer<'_>) -> Vec<String> {
    let cert = webpki::EndEntityCert::try_from(leaf).unwrap();
    cert.valid_dns_names().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// Clients

/// Verifies the chain against the test CA and the leaf against `name`, whatever SNI was sent
/// (to check the default certificate served for an unknown name).
#[derive(Debug)]
pub struct VerifyAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
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

/// A client config trusting `roots`, offering `alpn`, without resumption (so every handshake
/// is a full one and shows the certificate the server picks now). With `verify_as`, the leaf
/// is checked against that name instead of the SNI.
pub fn client_config(
    roots: RootCertStore,
    alpn: &[&[u8]],
    verify_as: Option<&str>,
) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap();
    let mut config = match verify_as {
        None => builder.with_root_certificates(roots).with_no_client_auth(),
        Some(name) => {
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            let verifier = VerifyAs {
                inner,
                name: ServerName::try_from(name.to_owned()).unwrap(),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = Resumption::disabled();
    config
}

/// A TLS connection that completed its handshake.
pub struct Tls {
    pub stream: TlsStream<TcpStream>,
}

impl Tls {
    pub async fn connect(addr: SocketAddr, config: ClientConfig, sni: &str) -> Tls {
        let connector = TlsConnector::from(Arc::new(config));
        let tcp = within("tcp connect", TcpStream::connect(addr))
            .await
            .unwrap();
        let name = ServerName::try_from(sni.to_owned()).unwrap();
        let stream = within("tls handshake", connector.connect(name, tcp))
            .await
            .unwrap();
        Tls { stream }
    }

    /// Connects trusting `pki`'s CA and verifying the leaf for `sni`.
    pub async fn to(addr: SocketAddr, pki: &Pki, sni: &str, alpn: &[&[u8]]) -> Tls {
        Tls::connect(addr, client_config(pki.roots(), alpn, None), sni).await
    }

    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }

    pub fn leaf(&self) -> CertificateDer<'static> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    }

    pub async fn h1(self) -> H1 {
        let (send, conn) = within(
            "h1 handshake",
            hyper::client::conn::http1::handshake(TokioIo::new(self.stream)),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        H1(send)
    }

    pub async fn h2(self) -> H2c {
        let (send, conn) = within(
            "h2 handshake",
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(self.stream)),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        H2c(send)
    }
}

//! For the upstream TLS tests: a throwaway CA and TLS backends it certifies that answer over
//! HTTP/1.1 or HTTP/2 (by ALPN) and say what they saw: the HTTP version, the negotiated ALPN
//! and the SNI.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// A CA that issues the backends' certificates.
pub struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// The CA certificate as PEM (what `upstream_ca` or a ConfigMap's `ca.crt` holds).
    pub fn pem(&self) -> String {
        self.0.pem()
    }

    /// A leaf with these subject alternative names (a name with `://` is a URI SAN).
    fn issue(&self, sans: &[&str]) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        for san in sans {
            params.subject_alt_names.push(if san.contains("://") {
                SanType::URI((*san).try_into().unwrap())
            } else if let Ok(ip) = san.parse() {
                SanType::IpAddress(ip)
            } else {
                SanType::DnsName((*san).try_into().unwrap())
            });
        }
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.0).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (leaf.der().clone(), key)
    }
}

/// A TLS backend whose certificate `ca` issued for `sans`, offering ALPN h2 and http/1.1 and
/// answering every request with `NAME HTTP/x alpn A sni S`.
pub async fn backend(name: &'static str, ca: &Ca, sans: &[&str]) -> SocketAddr {
    let (cert, key) = ca.issue(sans);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let conn = tls.get_ref().1;
                let sni = conn.server_name().unwrap_or("-").to_owned();
                let alpn = conn
                    .alpn_protocol()
                    .map_or("-".to_owned(), |a| String::from_utf8_lossy(a).into_owned());
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = format!("{name} {:?} alpn {alpn} sni {sni}", req.version());
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

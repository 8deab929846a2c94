//! Verified https endpoints on the HTTP router over real sockets: upstream TLS checked against
//! the configured CA (and refused when the CA did not sign), and the config requiring a CA.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{get, service, start};
use http_body_util::Full;
use hyper::Response;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use switchyard::config::Config;
use tokio::net::TcpListener;

/// A TLS backend (self-signed for 127.0.0.1 and backend.internal); returns its address and the
/// PEM of its certificate (to trust it).
async fn tls_backend(dir: &std::path::Path) -> (SocketAddr, std::path::PathBuf) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let generated = rcgen::generate_simple_self_signed(vec![
        "backend.internal".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap();
    let ca = dir.join("backend.pem");
    std::fs::write(&ca, generated.cert.pem()).unwrap();
    let cert = CertificateDer::from_pem_slice(generated.cert.pem().as_bytes()).unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(generated.signing_key.serialize_pem().as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
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
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                let svc = service_fn(move |_req| {
                    let body = format!("tls backend, sni {sni}");
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ca)
}

#[tokio::test]
async fn https_upstreams_are_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, ca) = tls_backend(dir.path()).await;
    let wrong_ca = dir.path().join("wrong.pem");
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let https = |name: &str, extra: String| {
        service(
            name,
            &[backend],
            &format!("upstream_protocol = \"https\"\n{extra}"),
        )
    };
    let body = format!(
        "{}{}{}[[routes]]\nhost = \"ip.test\"\nservice = \"by-ip\"\n\
         [[routes]]\nhost = \"sni.test\"\nservice = \"by-sni\"\n[[routes]]\nhost = \"bad.test\"\nservice = \"bad-ca\"\n",
        https("by-ip", format!("upstream_ca = \"{}\"", ca.display())),
        https(
            "by-sni",
            format!(
                "upstream_ca = \"{}\"\nupstream_sni = \"backend.internal\"",
                ca.display()
            )
        ),
        https(
            "bad-ca",
            format!(
                "upstream_ca = \"{}\"\nconnect_attempts = 1",
                wrong_ca.display()
            )
        ),
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "ip.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni -"),
        "verified against the IP SAN, no SNI sent"
    );
    let (status, _, text) = get(addr, "sni.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni backend.internal")
    );
    assert_eq!(
        get(addr, "bad.test", "/").await.0,
        502,
        "a certificate the CA did not sign is refused"
    );
}

#[test]
fn https_upstreams_need_a_ca() {
    let text = "[[services]]\nname = \"s\"\nupstream_protocol = \"https\"\n[[services.endpoints]]\naddress = \"127.0.0.1:1\"\n";
    let err = Config::parse(text, "t").unwrap_err().to_string();
    assert!(
        err.contains("services[0].upstream_ca: upstream_protocol \"https\" needs a CA file (or \"system\") to verify the endpoints with (or upstream_verify = false)"),
        "{err}"
    );
}

#[tokio::test]
async fn unverified_https_upstreams_are_encrypted_without_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, _ca) = tls_backend(dir.path()).await;
    let body = format!(
        "{}[[routes]]\nhost = \"any.test\"\nservice = \"unverified\"\n",
        service(
            "unverified",
            &[backend],
            "upstream_protocol = \"https\"\nupstream_verify = false\nupstream_sni = \"who.ever\""
        )
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "any.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni who.ever"),
        "a certificate for other names is accepted when verification is off"
    );
}

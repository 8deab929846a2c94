//! The HTTPS side of the router over real sockets: TLS termination with SNI certificates and
//! ALPN (HTTP/1.1 and HTTP/2), 421 for misdirected requests, certificate reload under open
//! connections, plaintext on the TLS port, many h2 streams on one connection, 404.
//!
//! Certificates are issued at test time by a throwaway CA (rcgen) into a temp dir; clients are
//! hyper 1 connections over tokio-rustls with the aws-lc-rs provider, trusting that CA.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const H2: &[u8] = b"h2";
const HTTP1: &[u8] = b"http/1.1";

/// Bounds every wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out after {WAIT:?}"))
}

// ---------------------------------------------------------------------------------------------
// Certificates

/// A throwaway CA and a temp dir to write certificates and keys into.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate written to disk.
struct Issued {
    cert: PathBuf,
    key: PathBuf,
    /// The leaf, to compare with what a client received.
    leaf: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Pki {
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

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        roots
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues an ECDSA P-256 leaf for `names` into `<stem>.crt` (leaf, then CA) and
    /// `<stem>.key` (PKCS#8), overwriting what was there.
    fn issue(&self, stem: &str, names: &[&str]) -> Issued {
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
fn certificates(certs: &[(&Issued, bool)]) -> String {
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
fn dns_names(leaf: &CertificateDer<'_>) -> Vec<String> {
    let cert = webpki::EndEntityCert::try_from(leaf).unwrap();
    cert.valid_dns_names().map(str::to_owned).collect()
}

// ---------------------------------------------------------------------------------------------
// Backends and the app

/// An HTTP/1.1 backend answering "NAME METHOD URI" and echoing what it saw in `x-seen-*`.
async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let _ = body.collect().await;
                    let seen = |h: &str| {
                        parts
                            .headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let resp = Response::builder()
                        .header("x-backend", name)
                        .header("x-seen-host", seen("host"))
                        .header("x-seen-xff", seen("x-forwarded-for"))
                        .header("x-seen-proto", seen("x-forwarded-proto"))
                        .header("x-seen-request-id", seen("x-request-id"))
                        .body(Full::new(Bytes::from(format!(
                            "{name} {} {}",
                            parts.method, parts.uri
                        ))))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

/// Services `a`, `b`, `api`, `c` (HTTP-only, one backend each) and their routes:
/// `a.test` → a, `a.test/api` → api, `b.test` → b, `c.test` → c.
async fn services_and_routes() -> String {
    let mut s = String::new();
    for name in ["a", "b", "api", "c"] {
        let addr = backend(name).await;
        s.push_str(&format!(
            "[[services]]\nname = \"{name}\"\n[[services.endpoints]]\naddress = \"{addr}\"\n"
        ));
    }
    s.push_str(
        "[[routes]]\nhost = \"a.test\"\nservice = \"a\"\n\
         [[routes]]\nhost = \"a.test\"\npath = \"/api\"\nservice = \"api\"\n\
         [[routes]]\nhost = \"b.test\"\nservice = \"b\"\n\
         [[routes]]\nhost = \"c.test\"\nservice = \"c\"\n",
    );
    s
}

/// A whole config: admin on an ephemeral port, one TLS listener `tls`, `body` after it.
fn config_text(body: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"1s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhandshake_timeout = \"2s\"\n\
         {body}"
    )
}

fn parse(text: &str) -> Config {
    Config::parse(text, "test").unwrap()
}

async fn start(text: &str) -> (App, SocketAddr) {
    let app = within("start", app::start(parse(text))).await.unwrap();
    let addr = app.http_addr("tls").await.unwrap();
    (app, addr)
}

// ---------------------------------------------------------------------------------------------
// Clients

/// Verifies the chain against the test CA and the leaf against `name`, whatever SNI was sent
/// (to check the default certificate served for an unknown name).
#[derive(Debug)]
struct VerifyAs {
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
fn client_config(roots: RootCertStore, alpn: &[&[u8]], verify_as: Option<&str>) -> ClientConfig {
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
struct Tls {
    stream: TlsStream<TcpStream>,
}

impl Tls {
    async fn connect(addr: SocketAddr, config: ClientConfig, sni: &str) -> Tls {
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
    async fn to(addr: SocketAddr, pki: &Pki, sni: &str, alpn: &[&[u8]]) -> Tls {
        Tls::connect(addr, client_config(pki.roots(), alpn, None), sni).await
    }

    fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }

    fn leaf(&self) -> CertificateDer<'static> {
        self.stream.get_ref().1.peer_certificates().unwrap()[0].clone()
    }

    async fn h1(self) -> H1 {
        let (send, conn) = within(
            "h1 handshake",
            hyper::client::conn::http1::handshake(TokioIo::new(self.stream)),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        H1(send)
    }

    async fn h2(self) -> H2c {
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

/// An answer: status, headers, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn answer(
    what: &str,
    fut: impl Future<Output = hyper::Result<Response<hyper::body::Incoming>>>,
) -> Answer {
    let resp = within(what, fut).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = within(what, resp.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A keep-alive HTTP/1.1 connection.
struct H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl H1 {
    async fn get(&mut self, host: &str, path: &str) -> Answer {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        within("h1 ready", self.0.ready()).await.unwrap();
        answer("h1 request", self.0.send_request(req)).await
    }
}

/// An HTTP/2 connection.
#[derive(Clone)]
struct H2c(hyper::client::conn::http2::SendRequest<Full<Bytes>>);

impl H2c {
    async fn get(&mut self, host: &str, path: &str) -> Answer {
        let req = Request::get(format!("https://{host}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        within("h2 ready", self.0.ready()).await.unwrap();
        answer("h2 request", self.0.send_request(req)).await
    }
}

/// The standard certificates: `a.test`, `b.test`, `*.wild.test`, and a default for
/// `default.test`.
struct Certs {
    pki: Pki,
    a: Issued,
    b: Issued,
    wild: Issued,
    default: Issued,
}

impl Certs {
    fn new() -> Certs {
        let pki = Pki::new();
        let a = pki.issue("a", &["a.test"]);
        let b = pki.issue("b", &["b.test"]);
        let wild = pki.issue("wild", &["*.wild.test"]);
        let default = pki.issue("default", &["default.test"]);
        Certs {
            pki,
            a,
            b,
            wild,
            default,
        }
    }

    fn toml(&self) -> String {
        certificates(&[
            (&self.a, false),
            (&self.b, false),
            (&self.wild, false),
            (&self.default, true),
        ])
    }
}

/// Starts the app with the standard certificates, services and routes.
async fn start_standard() -> (App, SocketAddr, Certs) {
    let certs = Certs::new();
    let text = config_text(&format!("{}{}", certs.toml(), services_and_routes().await));
    let (app, addr) = start(&text).await;
    (app, addr, certs)
}

// ---------------------------------------------------------------------------------------------
// Tests

/// Checks an answer came from `backend` with the forwarding headers of an HTTPS request.
fn assert_routed(a: &Answer, backend: &str, host: &str, path: &str) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-backend"), backend, "{a:?}");
    assert_eq!(a.body, format!("{backend} GET {path}"), "{a:?}");
    assert_eq!(a.header("x-seen-host"), host, "{a:?}");
    assert_eq!(a.header("x-seen-proto"), "https", "{a:?}");
    assert_eq!(a.header("x-seen-xff"), "127.0.0.1", "{a:?}");
    let id = a.header("x-seen-request-id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "generated request id: {a:?}"
    );
}

#[tokio::test]
async fn http1_and_h2_over_tls_route_by_host_and_path_and_negotiate_alpn() {
    let (_app, addr, certs) = start_standard().await;

    // HTTP/1.1 only: ALPN picks http/1.1.
    let tls = Tls::to(addr, &certs.pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.alpn().as_deref(), Some(HTTP1));
    let mut h1 = tls.h1().await;
    assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(
        &h1.get("a.test", "/api/v1?x=1").await,
        "api",
        "a.test",
        "/api/v1?x=1",
    );
    assert_routed(&h1.get("a.test", "/apix").await, "a", "a.test", "/apix");
    let tls = Tls::to(addr, &certs.pki, "b.test", &[HTTP1]).await;
    let mut h1 = tls.h1().await;
    assert_routed(&h1.get("b.test", "/x").await, "b", "b.test", "/x");

    // h2 offered first: ALPN picks h2, and :authority routes.
    let tls = Tls::to(addr, &certs.pki, "a.test", &[H2, HTTP1]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let mut h2 = tls.h2().await;
    assert_routed(&h2.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(&h2.get("a.test", "/api").await, "api", "a.test", "/api");
    let tls = Tls::to(addr, &certs.pki, "b.test", &[H2, HTTP1]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let mut h2 = tls.h2().await;
    assert_routed(&h2.get("b.test", "/y").await, "b", "b.test", "/y");

    // The server's preference wins when the client lists http/1.1 first.
    let tls = Tls::to(addr, &certs.pki, "a.test", &[HTTP1, H2]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2), "server prefers h2");

    // No ALPN at all: HTTP/1.1 still works.
    let tls = Tls::to(addr, &certs.pki, "a.test", &[]).await;
    assert_eq!(tls.alpn(), None);
    let mut h1 = tls.h1().await;
    assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");

    // A client's own request id is kept.
    let req = Request::get("/")
        .header("host", "a.test")
        .header("x-request-id", "client-chosen-id")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let a = answer("h1 request", h1.0.send_request(req)).await;
    assert_eq!(a.header("x-seen-request-id"), "client-chosen-id");
}

#[tokio::test]
async fn sni_picks_exact_wildcard_and_default_certificates() {
    let (_app, addr, certs) = start_standard().await;

    let tls = Tls::to(addr, &certs.pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), certs.a.leaf);
    assert_eq!(dns_names(&tls.leaf()), ["a.test"]);

    let tls = Tls::to(addr, &certs.pki, "b.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), certs.b.leaf);

    let tls = Tls::to(addr, &certs.pki, "x.wild.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), certs.wild.leaf);
    assert_eq!(dns_names(&tls.leaf()), ["*.wild.test"]);
    let tls = Tls::to(addr, &certs.pki, "X.Wild.Test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), certs.wild.leaf, "SNI is case-insensitive");

    // Unknown names get the default; the client checks it is the CA's default.test leaf.
    for sni in ["unknown.test", "a.b.wild.test", "wild.test"] {
        let config = client_config(certs.pki.roots(), &[HTTP1], Some("default.test"));
        let tls = Tls::connect(addr, config, sni).await;
        assert_eq!(tls.leaf(), certs.default.leaf, "SNI {sni}");
        assert_eq!(dns_names(&tls.leaf()), ["default.test"], "SNI {sni}");
    }

    // No SNI at all (the client connects by address): the default.
    let config = client_config(certs.pki.roots(), &[HTTP1], Some("default.test"));
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = within("tcp connect", TcpStream::connect(addr))
        .await
        .unwrap();
    let ip = ServerName::IpAddress(addr.ip().into());
    let tls = within("tls handshake", connector.connect(ip, tcp))
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0],
        certs.default.leaf
    );

    // TLS 1.2 clients get the same choice.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls12 = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(certs.pki.roots())
        .with_no_client_auth();
    tls12.alpn_protocols = vec![H2.to_vec()];
    tls12.resumption = Resumption::disabled();
    let tls = Tls::connect(addr, tls12.clone(), "x.wild.test").await;
    assert_eq!(
        tls.stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls.leaf(), certs.wild.leaf);
    let tls = Tls::connect(addr, tls12, "a.test").await;
    assert_eq!(tls.leaf(), certs.a.leaf);
    let mut h2 = tls.h2().await;
    assert_routed(&h2.get("a.test", "/").await, "a", "a.test", "/");

    // A client verifying the unknown name itself refuses the default certificate.
    let connector = TlsConnector::from(Arc::new(client_config(certs.pki.roots(), &[], None)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("unknown.test").unwrap();
    let refused = within("tls handshake", connector.connect(name, tcp)).await;
    assert!(
        refused.is_err(),
        "default cert must not verify for unknown.test"
    );
}

#[tokio::test]
async fn a_host_with_its_own_certificate_on_another_names_connection_is_421() {
    let (_app, addr, certs) = start_standard().await;

    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    let misdirected = h1.get("b.test", "/").await;
    assert_eq!(misdirected.status, 421, "{misdirected:?}");
    assert_eq!(misdirected.header("x-backend"), "", "not forwarded");
    // c.test has no certificate of its own: routed normally.
    assert_routed(&h1.get("c.test", "/").await, "c", "c.test", "/");
    // The connection is still good for its own name, and the port in Host does not matter.
    assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(&h1.get("A.TEST:443", "/").await, "a", "A.TEST:443", "/");
    // An absolute-form target names the host, whatever the Host header says.
    let req = Request::get("https://b.test/")
        .header("host", "a.test")
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(
        answer("h1 request", h1.0.send_request(req)).await.status,
        421
    );

    // The same over HTTP/2 with :authority.
    let mut h2 = Tls::to(addr, &certs.pki, "a.test", &[H2]).await.h2().await;
    assert_eq!(h2.get("b.test", "/").await.status, 421);
    assert_routed(&h2.get("c.test", "/").await, "c", "c.test", "/");
    assert_routed(&h2.get("a.test", "/").await, "a", "a.test", "/");

    // Two names under one wildcard certificate share a connection legitimately...
    let mut h2 = Tls::to(addr, &certs.pki, "x.wild.test", &[H2])
        .await
        .h2()
        .await;
    assert_eq!(
        h2.get("y.wild.test", "/").await.status,
        404,
        "no 421, no route"
    );
    // ...but a name with its own certificate is still misdirected there.
    assert_eq!(h2.get("a.test", "/").await.status, 421);
}

#[tokio::test]
async fn certificates_reload_on_apply_without_dropping_connections() {
    let pki = Pki::new();
    let first = pki.issue("a", &["a.test"]);
    let text = config_text(&format!(
        "{}{}",
        certificates(&[(&first, true)]),
        services_and_routes().await
    ));
    let (app, addr) = start(&text).await;

    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), first.leaf);
    let mut old_h1 = tls.h1().await;
    assert_routed(&old_h1.get("a.test", "/").await, "a", "a.test", "/");
    let tls = Tls::to(addr, &pki, "a.test", &[H2]).await;
    assert_eq!(tls.leaf(), first.leaf);
    let mut old_h2 = tls.h2().await;
    assert_routed(&old_h2.get("a.test", "/").await, "a", "a.test", "/");

    // New files for the same name, same config: apply notices the files changed.
    let second = pki.issue("a", &["a.test"]);
    assert_ne!(first.leaf, second.leaf);
    within("apply", app.apply(&parse(&text))).await.unwrap();
    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(
        tls.leaf(),
        second.leaf,
        "a new connection gets the new certificate"
    );
    let mut new_h1 = tls.h1().await;
    assert_routed(&new_h1.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(&old_h1.get("a.test", "/api").await, "api", "a.test", "/api");
    assert_routed(&old_h2.get("a.test", "/").await, "a", "a.test", "/");

    // A broken certificate file: apply fails and handshakes keep the loaded certificate.
    std::fs::write(&second.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let refused = within("apply", app.apply(&parse(&text))).await;
    assert!(refused.is_err(), "a bad certificate file must fail apply");
    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), second.leaf);
    // A key that does not match the certificate: same.
    let third = pki.issue("a", &["a.test"]);
    let other = pki.issue("other", &["a.test"]);
    std::fs::copy(&other.key, &third.key).unwrap();
    let refused = within("apply", app.apply(&parse(&text))).await;
    assert!(refused.is_err(), "a mismatched key must fail apply");
    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), second.leaf);
    // Every connection opened along the way still serves.
    assert_routed(&old_h1.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(&new_h1.get("a.test", "/").await, "a", "a.test", "/");
    assert_routed(&old_h2.get("a.test", "/").await, "a", "a.test", "/");

    // Fixed files: the next apply loads them.
    let fourth = pki.issue("a", &["a.test"]);
    within("apply", app.apply(&parse(&text))).await.unwrap();
    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), fourth.leaf);
}

#[tokio::test]
async fn certificate_files_changed_on_disk_reload_on_the_poll() {
    let pki = Pki::new();
    let first = pki.issue("a", &["a.test"]);
    let text = config_text(&format!(
        "{}{}",
        certificates(&[(&first, true)]),
        services_and_routes().await
    ));
    let (app, addr) = start(&text).await;
    let mut old = Tls::to(addr, &pki, "a.test", &[H2]).await.h2().await;
    assert_routed(&old.get("a.test", "/").await, "a", "a.test", "/");

    // Nothing changed: the poll keeps the certificate.
    within("poll", app.reload_certificates_if_changed()).await;
    assert_eq!(
        Tls::to(addr, &pki, "a.test", &[HTTP1]).await.leaf(),
        first.leaf
    );

    // Replaced the way a Kubernetes Secret volume or cert-manager does: new files renamed over
    // the old ones (new inodes).
    let second = pki.issue("next", &["a.test"]);
    std::fs::rename(&second.key, &first.key).unwrap();
    std::fs::rename(&second.cert, &first.cert).unwrap();
    within("poll", app.reload_certificates_if_changed()).await;
    assert_eq!(
        Tls::to(addr, &pki, "a.test", &[HTTP1]).await.leaf(),
        second.leaf
    );
    assert_routed(&old.get("a.test", "/").await, "a", "a.test", "/");

    // Half-written (the certificate renamed in, the key not yet): the poll keeps the loaded
    // pair, and picks up the complete pair on a later poll.
    let third = pki.issue("third", &["a.test"]);
    std::fs::rename(&third.cert, &first.cert).unwrap();
    within("poll", app.reload_certificates_if_changed()).await;
    assert_eq!(
        Tls::to(addr, &pki, "a.test", &[HTTP1]).await.leaf(),
        second.leaf
    );
    std::fs::rename(&third.key, &first.key).unwrap();
    within("poll", app.reload_certificates_if_changed()).await;
    assert_eq!(
        Tls::to(addr, &pki, "a.test", &[HTTP1]).await.leaf(),
        third.leaf
    );

    // A deleted file: the poll keeps the loaded certificate.
    std::fs::remove_file(&first.key).unwrap();
    within("poll", app.reload_certificates_if_changed()).await;
    assert_eq!(
        Tls::to(addr, &pki, "a.test", &[HTTP1]).await.leaf(),
        third.leaf
    );
    assert_routed(&old.get("a.test", "/").await, "a", "a.test", "/");
}

#[tokio::test]
async fn plaintext_http_on_the_tls_port_is_closed_and_tls_still_works() {
    let (app, addr, certs) = start_standard().await;

    for _ in 0..3 {
        let mut tcp = within("connect", TcpStream::connect(addr)).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        // EOF or a reset (we sent bytes the server never read): either way, closed.
        let read = within("plaintext close", tcp.read_to_end(&mut got)).await;
        let got = String::from_utf8_lossy(&got);
        assert!(
            !got.contains("a GET"),
            "plaintext must not be routed: {read:?} {got:?}"
        );
    }

    // A client that connects and says nothing until the handshake deadline (2 s) is dropped
    // too; meanwhile TLS works.
    let mut silent = within("connect", TcpStream::connect(addr)).await.unwrap();
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
    let mut h2 = Tls::to(addr, &certs.pki, "a.test", &[H2]).await.h2().await;
    assert_routed(&h2.get("a.test", "/").await, "a", "a.test", "/");
    let mut buf = [0u8; 16];
    let read = within("handshake deadline", silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "silent client closed: {read:?}"
    );

    let (_, m) = common::admin_get(app.admin_addr(), "/metrics").await;
    for reason in ["not_tls", "timeout"] {
        let line = format!("switchyard_tls_handshake_errors_total{{reason=\"{reason}\"}}");
        assert!(
            common::metric(&m, &line).unwrap_or(0.0) >= 1.0,
            "{line}:\n{m}"
        );
    }
}

#[tokio::test]
async fn fifty_concurrent_h2_streams_on_one_connection_all_succeed() {
    let (_app, addr, certs) = start_standard().await;
    let tls = Tls::to(addr, &certs.pki, "a.test", &[H2]).await;
    assert_eq!(tls.alpn().as_deref(), Some(H2));
    let h2 = tls.h2().await;

    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let mut h2 = h2.clone();
        set.spawn(async move {
            let path = if i % 5 == 0 {
                format!("/api/{i}")
            } else {
                format!("/{i}")
            };
            let a = h2.get("a.test", &path).await;
            (i, path, a)
        });
    }
    let mut done = 0;
    while let Some(joined) = within("50 streams", set.join_next()).await {
        let (i, path, a) = joined.unwrap();
        let backend = if i % 5 == 0 { "api" } else { "a" };
        assert_routed(&a, backend, "a.test", &path);
        done += 1;
    }
    assert_eq!(done, 50);
    // The connection is still usable afterwards.
    let mut h2 = h2;
    assert_routed(&h2.get("a.test", "/after").await, "a", "a.test", "/after");
}

#[tokio::test]
async fn an_unknown_host_over_tls_is_404() {
    let (_app, addr, certs) = start_standard().await;

    // On a connection for a known name (unknown.test has no certificate: no 421).
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    let a = h1.get("unknown.test", "/").await;
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(a.header("x-backend"), "");
    // A name with a certificate (the wildcard) but no route.
    let mut h2 = Tls::to(addr, &certs.pki, "x.wild.test", &[H2])
        .await
        .h2()
        .await;
    assert_eq!(h2.get("x.wild.test", "/").await.status, 404);

    // On a connection with an unknown SNI (default certificate).
    let config = client_config(certs.pki.roots(), &[H2], Some("default.test"));
    let mut h2 = Tls::connect(addr, config, "unknown.test").await.h2().await;
    let a = h2.get("unknown.test", "/").await;
    assert_eq!(a.status, 404, "{a:?}");
    // The connection stays usable.
    assert_eq!(h2.get("nothing.test", "/x").await.status, 404);

    // No Host at all is the client's mistake: 400, and the connection still serves.
    let req = Request::get("/").body(Full::new(Bytes::new())).unwrap();
    let a = answer("h1 request", h1.0.send_request(req)).await;
    assert_eq!(a.status, 400, "{a:?}");
    assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
}

/// The Host a backend sees must be the name the request was routed (and 421-checked) by.
/// RFC 9113 §8.3.1: a Host that differs from :authority makes an h2 request malformed; RFC 9112
/// §3.2.2: with an absolute-form target the Host header is ignored in favour of the target's.
#[tokio::test]
async fn the_backend_sees_the_host_it_was_routed_by_not_a_conflicting_host_header() {
    let (_app, addr, certs) = start_standard().await;
    let conflicting = || {
        Request::get("https://a.test/")
            .header("host", "b.test")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let mut h2 = Tls::to(addr, &certs.pki, "a.test", &[H2]).await.h2().await;
    let a = answer("h2 request", h2.0.send_request(conflicting())).await;
    assert!(
        a.status == 400 || (a.status == 200 && a.header("x-seen-host") == "a.test"),
        "h2 :authority a.test + host b.test: {a:?}"
    );
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    let a = answer("h1 request", h1.0.send_request(conflicting())).await;
    assert!(
        a.status == 400 || (a.status == 200 && a.header("x-seen-host") == "a.test"),
        "h1 absolute-form https://a.test/ + Host b.test: {a:?}"
    );
}

#[tokio::test]
async fn resumed_sessions_keep_their_server_name_and_survive_a_certificate_reload() {
    let certs = Certs::new();
    let text = config_text(&format!("{}{}", certs.toml(), services_and_routes().await));
    let (app, addr) = start(&text).await;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut configs = Vec::new();
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(certs.pki.roots())
            .with_no_client_auth();
        config.alpn_protocols = vec![HTTP1.to_vec()];
        configs.push(Arc::new(config)); // one session store per version, kept across connections
    }
    let kind = |tls: &Tls| tls.stream.get_ref().1.handshake_kind();
    for config in &configs {
        let tls = Tls::connect(addr, (**config).clone(), "a.test").await;
        assert_eq!(kind(&tls), Some(rustls::HandshakeKind::Full));
        let mut h1 = tls.h1().await;
        assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
    }
    // Rotate a.test's certificate; tickets and the session cache live in the listener's
    // ServerConfig, which a reload does not rebuild.
    let _rotated = certs.pki.issue("a", &["a.test"]);
    within("apply", app.apply(&parse(&text))).await.unwrap();
    for config in &configs {
        let tls = Tls::connect(addr, (**config).clone(), "a.test").await;
        let version = tls.stream.get_ref().1.protocol_version();
        assert_eq!(
            kind(&tls),
            Some(rustls::HandshakeKind::Resumed),
            "{version:?}"
        );
        let mut h1 = tls.h1().await;
        assert_routed(&h1.get("a.test", "/").await, "a", "a.test", "/");
        // A resumed connection still knows its server name: the 421 check holds.
        assert_eq!(h1.get("b.test", "/").await.status, 421, "{version:?}");
        assert_routed(&h1.get("c.test", "/").await, "c", "c.test", "/");
    }
}

//! Test harness for real handshakes: a TLS echo server built with [`server_config`] and
//! [`accept`] that reports what it saw of each connection, client configs and connections,
//! and the certificate set the SNI tests share.

use super::testutil::{Issued, Pki};
use super::{Accepted, CertStore, accept, server_config};
use arc_swap::ArcSwap;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, HandshakeKind, ProtocolVersion, ServerConfig, SupportedProtocolVersion,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector, client};

pub(super) const H2: &[u8] = b"h2";
pub(super) const HTTP1: &[u8] = b"http/1.1";

/// What the server saw of one connection.
#[derive(Debug)]
pub(super) struct Seen {
    pub(super) alpn: Option<Vec<u8>>,
    pub(super) version: Option<ProtocolVersion>,
    pub(super) kind: Option<HandshakeKind>,
    /// The default certificate was served.
    pub(super) fallback: bool,
}

/// A TLS echo server: each connection goes through [`accept`], reports its outcome, then
/// echoes what it reads.
pub(super) struct Server {
    pub(super) addr: SocketAddr,
    pub(super) store: Arc<ArcSwap<CertStore>>,
    outcomes: mpsc::UnboundedReceiver<Result<Seen, &'static str>>,
}

impl Server {
    pub(super) async fn start(store: CertStore, deadline: Duration) -> Server {
        Server::start_with(store, deadline, |_| {}).await
    }

    /// Like [`Server::start`], with `tweak` applied to the config [`server_config`] built.
    pub(super) async fn start_with(
        store: CertStore,
        deadline: Duration,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let store = Arc::new(ArcSwap::from_pointee(store));
        let mut config =
            Arc::unwrap_or_clone(server_config(Arc::clone(&store), &[H2, HTTP1]).unwrap());
        tweak(&mut config);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let shared = Arc::clone(&store);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                let certs = Arc::clone(&shared);
                tokio::spawn(async move {
                    let certs = Arc::clone(&certs);
                    match accept(&acceptor, &certs, tcp, deadline, |_| None::<()>).await {
                        Ok(Accepted::Terminated {
                            stream: mut tls,
                            fallback,
                        }) => {
                            let conn = tls.session();
                            let seen = Seen {
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                                version: conn.protocol_version(),
                                kind: conn.handshake_kind(),
                                fallback,
                            };
                            let _ = tx.send(Ok(seen));
                            let mut buf = [0u8; 1024];
                            while let Ok(n @ 1..) = tls.read(&mut buf).await {
                                if tls.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                                let _ = tls.flush().await;
                            }
                        }
                        Ok(Accepted::Passthrough(_)) => {
                            let _ = tx.send(Err("passthrough"));
                        }
                        Err(error) => {
                            let _ = tx.send(Err(error.reason()));
                        }
                    }
                });
            }
        });
        Server {
            addr,
            store,
            outcomes,
        }
    }

    pub(super) async fn outcome(&mut self) -> Result<Seen, &'static str> {
        tokio::time::timeout(Duration::from_secs(5), self.outcomes.recv())
            .await
            .unwrap()
            .unwrap()
    }

    pub(super) async fn ok(&mut self) -> Seen {
        self.outcome().await.unwrap()
    }
}

pub(super) fn client_config(
    pki: &Pki,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

pub(super) fn modern(pki: &Pki) -> Arc<ClientConfig> {
    Arc::new(client_config(
        pki,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[H2, HTTP1],
    ))
}

pub(super) async fn connect(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
}

/// Sends a line through the echo server and checks it comes back; this also makes the client
/// read the TLS 1.3 session tickets the server sent after the handshake.
pub(super) async fn ping(tls: &mut client::TlsStream<TcpStream>) {
    tls.write_all(b"ping\n").await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping\n");
}

pub(super) fn leaf(tls: &client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Certificates for the SNI tests: the default one (first) also covers `unknown.test` in its
/// SANs but not in its `hosts`, so a verifying client can check it is served as the fallback.
pub(super) struct Sites {
    pub(super) default: Issued,
    pub(super) api: Issued,
    pub(super) wild: Issued,
}

pub(super) fn sites(pki: &Pki) -> (Sites, CertStore) {
    let default = pki.issue(
        "default",
        &["default.test", "unknown.test", "a.b.wild.test"],
    );
    let api = pki.issue("api", &["api.example.com"]);
    let wild = pki.issue("wild", &["*.wild.test"]);
    let mut default_spec = default.spec.clone();
    default_spec.hosts = vec!["default.test".to_owned()];
    let store = CertStore::load(
        &[default_spec, api.spec.clone(), wild.spec.clone()],
        Some(0),
    )
    .unwrap();
    (Sites { default, api, wild }, store)
}

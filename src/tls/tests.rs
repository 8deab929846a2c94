//! Real handshakes over real sockets on 127.0.0.1:0, with certificates issued at test time.

use super::testutil::{Issued, Pki};
use super::*;
use arc_swap::ArcSwap;
use rustls::client::{Resumption, Tls12Resumption};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::server::NoServerSessionStorage;
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

const H2: &[u8] = b"h2";
const HTTP1: &[u8] = b"http/1.1";

/// What the server saw of one connection.
#[derive(Debug)]
struct Seen {
    alpn: Option<Vec<u8>>,
    version: Option<ProtocolVersion>,
    kind: Option<HandshakeKind>,
}

/// A TLS echo server: each connection goes through [`accept`], reports its outcome, then
/// echoes what it reads.
struct Server {
    addr: SocketAddr,
    store: Arc<ArcSwap<CertStore>>,
    outcomes: mpsc::UnboundedReceiver<Result<Seen, &'static str>>,
}

impl Server {
    async fn start(store: CertStore, deadline: Duration) -> Server {
        Server::start_with(store, deadline, |_| {}).await
    }

    /// Like [`Server::start`], with `tweak` applied to the config [`server_config`] built.
    async fn start_with(
        store: CertStore,
        deadline: Duration,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> Server {
        let store = Arc::new(ArcSwap::from_pointee(store));
        let mut config =
            Arc::unwrap_or_clone(server_config(Arc::clone(&store), &[H2, HTTP1]).unwrap());
        tweak(&mut config);
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match accept(&acceptor, tcp, deadline).await {
                        Ok(mut tls) => {
                            let conn = tls.get_ref().1;
                            let seen = Seen {
                                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
                                version: conn.protocol_version(),
                                kind: conn.handshake_kind(),
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

    async fn outcome(&mut self) -> Result<Seen, &'static str> {
        tokio::time::timeout(Duration::from_secs(5), self.outcomes.recv())
            .await
            .unwrap()
            .unwrap()
    }

    async fn ok(&mut self) -> Seen {
        self.outcome().await.unwrap()
    }
}

fn client_config(
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

fn modern(pki: &Pki) -> Arc<ClientConfig> {
    Arc::new(client_config(
        pki,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[H2, HTTP1],
    ))
}

async fn connect(
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
async fn ping(tls: &mut client::TlsStream<TcpStream>) {
    tls.write_all(b"ping\n").await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = [0u8; 5];
    tls.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping\n");
}

fn leaf(tls: &client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Certificates for the SNI tests: the default one (first) also covers `unknown.test` in its
/// SANs but not in its `hosts`, so a verifying client can check it is served as the fallback.
struct Sites {
    default: Issued,
    api: Issued,
    wild: Issued,
}

fn sites(pki: &Pki) -> (Sites, CertStore) {
    let default = pki.issue(
        "default",
        &["default.test", "unknown.test", "a.b.wild.test"],
    );
    let api = pki.issue("api", &["api.example.com"]);
    let wild = pki.issue("wild", &["*.wild.test"]);
    let mut default_spec = default.spec.clone();
    default_spec.hosts = vec!["default.test".to_owned()];
    let store =
        CertStore::load(&[default_spec, api.spec.clone(), wild.spec.clone()], None).unwrap();
    (Sites { default, api, wild }, store)
}

#[tokio::test]
async fn sni_selects_the_exact_certificate() {
    let pki = Pki::new();
    let (sites, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let mut tls = connect(server.addr, &modern(&pki), "api.example.com")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.api.leaf);
    ping(&mut tls).await;
}

#[tokio::test]
async fn sni_selects_a_wildcard_certificate_for_one_label_only() {
    let pki = Pki::new();
    let (sites, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = modern(&pki);
    let tls = connect(server.addr, &config, "foo.wild.test")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.wild.leaf);
    // Two labels below the wildcard: not covered, so the default certificate is served.
    let tls = connect(server.addr, &config, "a.b.wild.test")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.default.leaf);
}

#[tokio::test]
async fn unknown_sni_gets_the_default_certificate() {
    let pki = Pki::new();
    let (sites, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let tls = connect(server.addr, &modern(&pki), "unknown.test")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.default.leaf);
}

#[tokio::test]
async fn missing_sni_gets_the_default_certificate() {
    let pki = Pki::new();
    let (sites, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let mut config = client_config(
        &pki,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[],
    );
    config.enable_sni = false;
    let tls = connect(server.addr, &Arc::new(config), "default.test")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.default.leaf);
}

#[tokio::test]
async fn alpn_negotiates_h2_when_the_client_offers_it() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    // Client preference puts http/1.1 first; the server's order decides.
    let config = Arc::new(client_config(
        &pki,
        &[&rustls::version::TLS13],
        &[HTTP1, H2],
    ));
    let tls = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    assert_eq!(server.ok().await.alpn.as_deref(), Some(H2));
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(H2));
}

#[tokio::test]
async fn alpn_negotiates_http1_when_only_that_is_offered() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = Arc::new(client_config(&pki, &[&rustls::version::TLS13], &[HTTP1]));
    let tls = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    assert_eq!(server.ok().await.alpn.as_deref(), Some(HTTP1));
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(HTTP1));
}

#[tokio::test]
async fn a_client_without_alpn_still_connects() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = Arc::new(client_config(&pki, &[&rustls::version::TLS13], &[]));
    connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    assert_eq!(server.ok().await.alpn, None);
}

#[tokio::test]
async fn an_alpn_mismatch_is_a_protocol_error() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = Arc::new(client_config(
        &pki,
        &[&rustls::version::TLS13],
        &[b"spdy/3"],
    ));
    assert!(
        connect(server.addr, &config, "api.example.com")
            .await
            .is_err()
    );
    assert_eq!(server.outcome().await.unwrap_err(), "protocol");
}

#[tokio::test]
async fn a_tls12_only_client_is_served_tls12() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = Arc::new(client_config(&pki, &[&rustls::version::TLS12], &[H2]));
    let mut tls = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    assert_eq!(server.ok().await.version, Some(ProtocolVersion::TLSv1_2));
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );
    ping(&mut tls).await;
}

#[tokio::test]
async fn a_tls13_client_gets_tls13() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let tls = connect(server.addr, &modern(&pki), "api.example.com")
        .await
        .unwrap();
    assert_eq!(server.ok().await.version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );
}

/// How the server may resume sessions in a [`resume_twice`] test.
#[derive(Clone, Copy)]
enum ServerResumption {
    /// As [`server_config`] builds it: tickets and the session cache.
    Both,
    /// Tickets only (the session cache replaced by a no-op), so a resumption proves tickets.
    TicketsOnly,
}

/// Connects twice with one client config (and so one session store); returns how the client
/// saw each handshake, and how the server saw the second one.
async fn resume_twice(
    versions: &[&'static SupportedProtocolVersion],
    resumption: Resumption,
    server_resumption: ServerResumption,
) -> [Option<HandshakeKind>; 3] {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start_with(store, Duration::from_secs(5), |config| {
        if let ServerResumption::TicketsOnly = server_resumption {
            config.session_storage = Arc::new(NoServerSessionStorage {});
        }
    })
    .await;
    let mut config = client_config(&pki, versions, &[H2]);
    config.resumption = resumption;
    let config = Arc::new(config);
    let mut first = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    ping(&mut first).await;
    server.ok().await;
    let mut second = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    ping(&mut second).await;
    [
        first.get_ref().1.handshake_kind(),
        second.get_ref().1.handshake_kind(),
        server.ok().await.kind,
    ]
}

const FULL: Option<HandshakeKind> = Some(HandshakeKind::Full);
const RESUMED: Option<HandshakeKind> = Some(HandshakeKind::Resumed);

#[tokio::test]
async fn tls13_sessions_resume_with_tickets() {
    let resumption = Resumption::in_memory_sessions(16);
    let kinds = resume_twice(
        &[&rustls::version::TLS13],
        resumption,
        ServerResumption::TicketsOnly,
    )
    .await;
    assert_eq!(kinds, [FULL, RESUMED, RESUMED]);
}

#[tokio::test]
async fn tls12_sessions_resume_with_tickets() {
    let resumption =
        Resumption::in_memory_sessions(16).tls12_resumption(Tls12Resumption::SessionIdOrTickets);
    let kinds = resume_twice(
        &[&rustls::version::TLS12],
        resumption,
        ServerResumption::TicketsOnly,
    )
    .await;
    assert_eq!(kinds, [FULL, RESUMED, RESUMED]);
}

#[tokio::test]
async fn tls12_sessions_resume_by_id_from_the_stateful_cache() {
    // No ticket extension offered: only the server's session cache can resume this.
    let resumption =
        Resumption::in_memory_sessions(16).tls12_resumption(Tls12Resumption::SessionIdOnly);
    let kinds = resume_twice(
        &[&rustls::version::TLS12],
        resumption,
        ServerResumption::Both,
    )
    .await;
    assert_eq!(kinds, [FULL, RESUMED, RESUMED]);
}

#[tokio::test]
async fn a_reload_serves_the_new_certificate_and_keeps_open_connections() {
    let pki = Pki::new();
    let a = pki.issue("a", &["api.example.com"]);
    let store_a = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    let mut server = Server::start(store_a, Duration::from_secs(5)).await;
    // No resumption: the second handshake must be a full one to show a certificate.
    let mut config = client_config(&pki, &[&rustls::version::TLS13], &[H2]);
    config.resumption = Resumption::disabled();
    let config = Arc::new(config);

    let mut open = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&open), a.leaf);
    ping(&mut open).await;

    let b = pki.issue("b", &["api.example.com"]);
    assert_ne!(a.leaf, b.leaf);
    server
        .store
        .store(Arc::new(CertStore::load(&[b.spec], None).unwrap()));

    let mut fresh = connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&fresh), b.leaf);
    ping(&mut fresh).await;
    // The connection opened before the swap still works, on A's keys.
    ping(&mut open).await;
    assert_eq!(leaf(&open), a.leaf);
}

#[tokio::test]
async fn a_failed_reload_leaves_the_old_store_serving() {
    let pki = Pki::new();
    let a = pki.issue("a", &["api.example.com"]);
    let store_a = CertStore::load(std::slice::from_ref(&a.spec), None).unwrap();
    let mut server = Server::start(store_a, Duration::from_secs(5)).await;
    std::fs::write(&a.spec.key, "truncated").unwrap();
    assert!(server.store.load().changed_on_disk());
    let reload = CertStore::load(std::slice::from_ref(&a.spec), None);
    assert!(matches!(reload, Err(TlsError::NoKey { .. })));
    // The caller keeps the old store: handshakes still work.
    let tls = connect(server.addr, &modern(&pki), "api.example.com")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), a.leaf);
}

#[tokio::test]
async fn plaintext_http_is_not_tls_and_fails_only_its_connection() {
    let pki = Pki::new();
    let (sites, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(server.outcome().await.unwrap_err(), "not_tls");
    // The server closed it without answering.
    let mut buf = [0u8; 16];
    assert_eq!(plain.read(&mut buf).await.unwrap_or(0), 0);

    let tls = connect(server.addr, &modern(&pki), "api.example.com")
        .await
        .unwrap();
    server.ok().await;
    assert_eq!(leaf(&tls), sites.api.leaf);
}

#[tokio::test]
async fn a_silent_client_hits_the_handshake_deadline() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(server.outcome().await.unwrap_err(), "timeout");
    assert!(started.elapsed() >= Duration::from_millis(200));

    // A client that stops halfway (after the first bytes of a ClientHello) times out too.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    assert_eq!(server.outcome().await.unwrap_err(), "timeout");
}

#[tokio::test]
async fn a_client_that_closes_at_once_is_an_io_error() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    drop(TcpStream::connect(server.addr).await.unwrap());
    assert_eq!(server.outcome().await.unwrap_err(), "io");
}

#[tokio::test]
async fn an_empty_store_fails_handshakes_with_no_certificate() {
    let pki = Pki::new();
    let store = CertStore::load(&[], None).unwrap();
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    assert!(
        connect(server.addr, &modern(&pki), "api.example.com")
            .await
            .is_err()
    );
    assert_eq!(server.outcome().await.unwrap_err(), "no_certificate");
}

#[test]
fn handshake_error_messages_say_what_happened() {
    let not_tls = HandshakeError::NotTls { first_byte: b'G' };
    assert_eq!(
        not_tls.to_string(),
        "client does not speak tls (first byte 0x47)"
    );
    let no_cert = HandshakeError::NoCertificate {
        server_name: Some("a.test".to_owned()),
        source: std::io::ErrorKind::InvalidData.into(),
    };
    assert_eq!(no_cert.to_string(), "no certificate for server name a.test");
    assert_eq!(no_cert.reason(), "no_certificate");
}

//! Real handshakes across sessions: TLS 1.3 and 1.2 resumption (tickets and the stateful
//! cache), and certificate reloads that swap the store under open connections.

use super::testserver::{H2, Server, client_config, connect, leaf, modern, ping, sites};
use super::testutil::Pki;
use super::*;
use rustls::client::{Resumption, Tls12Resumption};
use rustls::server::NoServerSessionStorage;
use rustls::{HandshakeKind, SupportedProtocolVersion};
use std::sync::Arc;
use std::time::Duration;

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

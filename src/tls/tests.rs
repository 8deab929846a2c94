//! Real handshakes over real sockets on 127.0.0.1:0, with certificates issued at test time:
//! SNI selection, ALPN, protocol versions, and handshake failures (plaintext, deadline, early
//! close, the default certificate). Resumption and reloads are in `tests_sessions`.

use super::testserver::{H2, HTTP1, Server, client_config, connect, leaf, modern, ping, sites};
use super::testutil::Pki;
use super::*;
use rustls::ProtocolVersion;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
async fn the_server_says_when_the_default_certificate_was_served() {
    let pki = Pki::new();
    let (_, store) = sites(&pki);
    let mut server = Server::start(store, Duration::from_secs(5)).await;
    let config = modern(&pki);
    connect(server.addr, &config, "api.example.com")
        .await
        .unwrap();
    assert!(!server.ok().await.fallback, "a named certificate");
    connect(server.addr, &config, "default.test").await.unwrap();
    assert!(!server.ok().await.fallback, "the default's own listed name");
    connect(server.addr, &config, "unknown.test").await.unwrap();
    assert!(server.ok().await.fallback, "no name matched");
}

#[test]
fn handshake_error_messages_say_what_happened() {
    let not_tls = HandshakeError::NotTls { first_byte: b'G' };
    assert_eq!(
        not_tls.to_string(),
        "client does not speak tls (first byte 0x47)"
    );
    let big = HandshakeError::HelloTooLarge { limit: 16384 };
    assert_eq!(
        big.to_string(),
        "no complete ClientHello within 16384 bytes"
    );
    assert_eq!(big.reason(), "hello_too_large");
}

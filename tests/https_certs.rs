//! TLS certificates on the router's HTTPS listener over real sockets: SNI picks the exact,
//! wildcard or default certificate (TLS 1.3 and 1.2, with and without SNI), certificates
//! reload on apply and when their files change on disk without dropping connections, and
//! resumed sessions keep their server name across a reload.
//!
//! Certificates are issued at test time by a throwaway CA (rcgen) into a temp dir
//! (`common::tls`); the app and its routes are `common::https`'s standard setup.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::https::{
    Certs, assert_routed, config_text, parse, services_and_routes, start, start_standard,
};
use common::tls::{H2, HTTP1, Pki, Tls, certificates, client_config, dns_names, within};
use rustls::ClientConfig;
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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

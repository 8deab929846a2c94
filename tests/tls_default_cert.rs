//! The default certificate over real sockets: an unmatched or missing SNI gets the generated
//! self-signed certificate (never another host's) and HTTP answers 404; a configured default
//! is served instead when set; a TLS listener with no certificate at all still completes
//! handshakes; the 421 rule still holds; `switchyard_tls_default_certificate_total` counts.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::edge::{any_cert_client, connect_tls, has_common_name};
use common::eventually_metric;
use common::https::{assert_routed, services_and_routes};
use common::tls::{HTTP1, Pki, Tls, certificates, dns_names, within};
use switchyard::app::{self, App};
use switchyard::config::Config;
use switchyard::tls::DEFAULT_CERT_NAME;

/// Admin on an ephemeral port and one TLS listener named `listener` (metric labels stay apart
/// between tests running at once).
fn config_text(listener: &str, body: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"1s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"{listener}\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhandshake_timeout = \"2s\"\n\
         {body}"
    )
}

async fn start(config: Config, listener: &str) -> (App, std::net::SocketAddr) {
    let app = within("start", app::start(config)).await.unwrap();
    let addr = app.http_addr(listener).await.unwrap();
    (app, addr)
}

fn counted(listener: &str) -> String {
    format!("switchyard_tls_default_certificate_total{{listener=\"{listener}\"}}")
}

#[tokio::test]
async fn unmatched_sni_gets_the_generated_certificate_and_a_404() {
    let pki = Pki::new();
    let (a, b) = (pki.issue("a", &["a.test"]), pki.issue("b", &["b.test"]));
    let body = format!(
        "{}{}",
        certificates(&[(&a, false), (&b, false)]),
        services_and_routes().await
    );
    let text = config_text("dc_generated", &body);
    let (app, addr) = start(Config::parse(&text, "test").unwrap(), "dc_generated").await;

    for sni in [true, false] {
        let (tls, leaf) = connect_tls(addr, any_cert_client(&[HTTP1], sni), "unknown.test").await;
        assert!(has_common_name(&leaf, DEFAULT_CERT_NAME), "sni {sni}");
        assert!(
            dns_names(&leaf).is_empty(),
            "no host names in it (sni {sni})"
        );
        assert_ne!(leaf, a.leaf, "not the first certificate (sni {sni})");
        assert_ne!(leaf, b.leaf);
        let mut h1 = Tls { stream: tls }.h1().await;
        let answer = h1.get("unknown.test", "/").await;
        assert_eq!(answer.status, 404, "{answer:?}");
        assert_eq!(answer.header("x-backend"), "");
        // A host with a certificate of its own, asked on a connection that named another
        // host: 421, as before. Without SNI nothing was named, so nothing is misdirected.
        let other = h1.get("a.test", "/").await;
        if sni {
            assert_eq!(other.status, 421, "{other:?}");
        } else {
            assert_routed(&other, "a", "a.test", "/");
        }
    }
    // A name with its certificate still gets it, verified, and is routed.
    let tls = Tls::to(addr, &pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), a.leaf);
    assert_routed(&tls.h1().await.get("a.test", "/").await, "a", "a.test", "/");

    let admin = app.admin_addr();
    assert_eq!(
        eventually_metric(admin, &counted("dc_generated"), 2.0).await,
        Some(2.0),
        "two handshakes fell back, the a.test one did not"
    );
}

#[tokio::test]
async fn a_configured_default_is_served_for_unmatched_names() {
    let pki = Pki::new();
    let (a, b) = (pki.issue("a", &["a.test"]), pki.issue("b", &["b.test"]));
    let body = format!(
        "{}{}",
        certificates(&[(&a, false), (&b, true)]),
        services_and_routes().await
    );
    let text = config_text("dc_configured", &body);
    let (app, addr) = start(Config::parse(&text, "test").unwrap(), "dc_configured").await;
    let (_tls, leaf) = connect_tls(addr, any_cert_client(&[HTTP1], true), "unknown.test").await;
    assert_eq!(
        leaf, b.leaf,
        "the configured default, not the first or the generated one"
    );
    let (_tls, leaf) = connect_tls(addr, any_cert_client(&[HTTP1], true), "b.test").await;
    assert_eq!(leaf, b.leaf);
    assert_eq!(
        eventually_metric(app.admin_addr(), &counted("dc_configured"), 1.0).await,
        Some(1.0),
        "b.test matched by name: not a fallback"
    );
}

#[tokio::test]
async fn a_tls_listener_with_no_certificates_still_completes_handshakes() {
    // As in Kubernetes mode after the last TLS Ingress is gone.
    let text = config_text("dc_empty", &services_and_routes().await);
    let config = Config::parse_for_kubernetes(&text, "test").unwrap();
    assert!(config.http.certificates.is_empty());
    let (app, addr) = start(config, "dc_empty").await;
    let (tls, leaf) = connect_tls(addr, any_cert_client(&[HTTP1], true), "gone.test").await;
    assert!(has_common_name(&leaf, DEFAULT_CERT_NAME));
    let mut h1 = Tls { stream: tls }.h1().await;
    let answer = h1.get("gone.test", "/").await;
    assert_eq!(
        answer.status, 404,
        "a clean 404, not a TLS error: {answer:?}"
    );
    // Routes still work behind it, on the default certificate.
    assert_eq!(h1.get("a.test", "/").await.header("x-backend"), "a");
    assert_eq!(
        eventually_metric(app.admin_addr(), &counted("dc_empty"), 1.0).await,
        Some(1.0)
    );
}

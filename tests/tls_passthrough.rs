//! SNI passthrough over real sockets: chosen names go, undecrypted, to a backend that
//! terminates TLS itself (the client sees the backend's own certificate), beside hosts
//! terminated on the same port; a ClientHello in many TCP segments; an endpoint that is down;
//! `switchyard_tls_passthrough_connections_total`.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::edge::tls_echo_backend;
use common::edge::{Segmented, any_cert_client, connect_over, connect_tls, echo, has_common_name};
use common::eventually_metric;
use common::https::{assert_routed, backend};
use common::tls::{HTTP1, Issued, Pki, Tls, certificates, client_config, within};
use std::net::SocketAddr;
use switchyard::app::{self, App};
use switchyard::config::Config;
use switchyard::tls::DEFAULT_CERT_NAME;
use tokio::io::AsyncReadExt;

/// What a test runs against.
struct Edge {
    app: App,
    addr: SocketAddr,
    pki: Pki,
    a: Issued,
    db: Issued,
    raw: Issued,
}

/// A TLS listener named `listener` terminating `a.test` (routed to an HTTP backend) and
/// passing `db.test` and `*.raw.test` through to TLS backends with their own certificates.
async fn start(listener: &str) -> Edge {
    start_with(listener, "").await
}

/// [`start`], with `settings` added to the listener.
async fn start_with(listener: &str, settings: &str) -> Edge {
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let db = pki.issue("db", &["db.test"]);
    let raw = pki.issue("raw", &["*.raw.test"]);
    let (a_addr, db_addr) = (backend("a").await, tls_echo_backend("db", &db).await);
    let raw_addr = tls_echo_backend("raw", &raw).await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"1s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"{listener}\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhandshake_timeout = \"2s\"\n{settings}\
         {certs}\
         [[services]]\nname = \"a\"\n[[services.endpoints]]\naddress = \"{a_addr}\"\n\
         [[services]]\nname = \"db\"\n[[services.endpoints]]\naddress = \"{db_addr}\"\n\
         [[services]]\nname = \"raw\"\n[[services.endpoints]]\naddress = \"{raw_addr}\"\n\
         [[routes]]\nhost = \"a.test\"\nservice = \"a\"\n\
         [[passthrough]]\nhosts = [\"db.test\"]\nservice = \"db\"\n\
         [[passthrough]]\nhosts = [\"*.raw.test\"]\nservice = \"raw\"\nlisteners = [\"{listener}\"]\n",
        certs = certificates(&[(&a, false)]),
    );
    let config = Config::parse(&text, "test").unwrap();
    let app = within("start", app::start(config)).await.unwrap();
    let addr = app.http_addr(listener).await.unwrap();
    Edge {
        app,
        addr,
        pki,
        a,
        db,
        raw,
    }
}

fn passed(listener: &str, service: &str, result: &str) -> String {
    format!(
        "switchyard_tls_passthrough_connections_total{{listener=\"{listener}\",service=\"{service}\",result=\"{result}\"}}"
    )
}

#[tokio::test]
async fn passed_through_names_reach_the_backend_which_terminates_tls_itself() {
    let edge = start("pt_e2e").await;
    // Verified against the CA for db.test: the certificate is the backend's, not ours.
    let mut db = Tls::to(edge.addr, &edge.pki, "db.test", &[HTTP1]).await;
    assert_eq!(db.leaf(), edge.db.leaf);
    assert_eq!(echo(&mut db.stream, "hello").await, "db: hello");
    assert_eq!(echo(&mut db.stream, "again").await, "db: again");
    // A one-label wildcard, and case does not matter.
    let mut raw = Tls::to(edge.addr, &edge.pki, "X.Raw.test", &[HTTP1]).await;
    assert_eq!(raw.leaf(), edge.raw.leaf);
    assert_eq!(echo(&mut raw.stream, "ping").await, "raw: ping");
    let admin = edge.app.admin_addr();
    assert_eq!(
        eventually_metric(admin, &passed("pt_e2e", "db", "ok"), 1.0).await,
        Some(1.0)
    );
    assert_eq!(
        eventually_metric(admin, &passed("pt_e2e", "raw", "ok"), 1.0).await,
        Some(1.0)
    );
}

#[tokio::test]
async fn terminated_hosts_on_the_same_port_still_work() {
    let edge = start("pt_beside").await;
    let tls = Tls::to(edge.addr, &edge.pki, "a.test", &[HTTP1]).await;
    assert_eq!(tls.leaf(), edge.a.leaf);
    assert_routed(&tls.h1().await.get("a.test", "/").await, "a", "a.test", "/");
    // Two labels below the wildcard: not passed through; the default certificate and a 404.
    let (tls, leaf) = connect_tls(edge.addr, any_cert_client(&[HTTP1], true), "a.b.raw.test").await;
    assert!(has_common_name(&leaf, DEFAULT_CERT_NAME));
    let answer = Tls { stream: tls }
        .h1()
        .await
        .get("a.b.raw.test", "/")
        .await;
    assert_eq!(answer.status, 404, "{answer:?}");
    // Without SNI nothing is passed through.
    let (_tls, leaf) = connect_tls(edge.addr, any_cert_client(&[HTTP1], false), "db.test").await;
    assert!(has_common_name(&leaf, DEFAULT_CERT_NAME));
}

#[tokio::test]
async fn a_client_hello_in_many_tcp_segments_passes_through() {
    let edge = start("pt_segments").await;
    let io = Segmented::connect(edge.addr, 16).await;
    let config = client_config(edge.pki.roots(), &[HTTP1], None);
    let (mut tls, leaf) = connect_over(io, config, "db.test").await;
    assert_eq!(leaf, edge.db.leaf);
    assert_eq!(echo(&mut tls, "in pieces").await, "db: in pieces");
}

#[tokio::test]
async fn a_passed_through_name_whose_endpoint_is_down_is_closed_not_terminated() {
    let pki = Pki::new();
    let dead = common::dead_address().await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\nwatch_interval = \"0s\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"pt_down\"\nlisten = \"127.0.0.1:0\"\ntls = true\n\
         [[services]]\nname = \"db\"\nconnect_attempts = 1\n[[services.endpoints]]\naddress = \"{dead}\"\n\
         [[passthrough]]\nhosts = [\"db.test\"]\nservice = \"db\"\n"
    );
    let app = within("start", app::start(Config::parse(&text, "test").unwrap()))
        .await
        .unwrap();
    let addr = app.http_addr("pt_down").await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config(
        pki.roots(),
        &[HTTP1],
        None,
    )));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("db.test").unwrap();
    let failed = within("handshake", connector.connect(name, tcp)).await;
    assert!(
        failed.is_err(),
        "the connection is closed, never answered by us"
    );
    assert_eq!(
        eventually_metric(
            app.admin_addr(),
            &passed("pt_down", "db", "no_upstream"),
            1.0
        )
        .await,
        Some(1.0)
    );
    // The plain TCP view: the proxy closes without sending a byte.
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hello = common::edge::client_hello_bytes("db.test");
    tokio::io::AsyncWriteExt::write_all(&mut raw, &hello)
        .await
        .unwrap();
    let mut buf = Vec::new();
    within("close", raw.read_to_end(&mut buf)).await.unwrap();
    assert!(buf.is_empty(), "{buf:?}");
}

#[tokio::test]
async fn a_passed_through_connection_holds_its_listener_slot_and_drains_to_the_deadline() {
    let edge = start_with("pt_slot", "max_connections = 1\n").await;
    let mut first = Tls::to(edge.addr, &edge.pki, "db.test", &[HTTP1]).await;
    assert_eq!(echo(&mut first.stream, "one").await, "db: one");
    // The listener is full: a second client waits in the backlog, unanswered.
    let second = tokio::spawn({
        let (addr, config) = (edge.addr, client_config(edge.pki.roots(), &[HTTP1], None));
        async move { connect_tls(addr, config, "db.test").await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "accepted beyond max_connections");
    drop(first);
    let (mut second, leaf) = within("second", second).await.unwrap();
    assert_eq!(leaf, edge.db.leaf);
    // Shutdown: the open passthrough keeps working through the drain, then is closed at the
    // deadline (drain_timeout is 1s).
    let begun = std::time::Instant::now();
    let stopping = tokio::spawn(edge.app.shutdown(std::time::Duration::from_secs(1)));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(echo(&mut second, "draining").await, "db: draining");
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), second.read(&mut buf))
        .await
        .expect("not closed at the drain deadline");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    assert!(begun.elapsed() >= std::time::Duration::from_millis(900));
    within("shutdown", stopping).await.unwrap();
}

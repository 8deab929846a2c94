//! The HTTPS side of the router over real sockets: routing over TLS by Host and path with ALPN
//! (HTTP/1.1 and HTTP/2), 421 for misdirected requests, plaintext on the TLS port, many h2
//! streams on one connection, 404 and 400, the Host a backend sees. Certificate selection,
//! reloads and resumption are in `https_certs.rs`.
//!
//! Certificates are issued at test time by a throwaway CA (rcgen) into a temp dir; clients are
//! hyper 1 connections over tokio-rustls with the aws-lc-rs provider, trusting that CA
//! (`common::tls`, `common::https`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::https::{answer, assert_routed, start_standard};
use common::tls::{H2, HTTP1, Tls, client_config, within};
use http_body_util::Full;
use hyper::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

//! HTTP/3 at the edge over real sockets: a TLS listener with `http3 = true` serves QUIC on the
//! same UDP port, with the same certificates, routes and limits as TCP. A quinn + h3 client
//! (trusting the test CA) checks routing by host and path, 404, certificate choice and hot
//! reload, 4 MiB bodies both ways with trailers, the streams and header-size limits, the
//! request metrics; Alt-Svc on the TCP side; and the config check. (Drain, migration and the
//! access log: `http3_drain.rs`.)
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "http3_support/backends.rs"]
mod backends;
#[path = "http3_support/client.rs"]
mod client;
mod common;
#[path = "http3_support/setup.rs"]
mod setup;

use bytes::Bytes;
use client::H3;
use common::https::{Certs, config_text, services_and_routes, start};
use common::tls::{H2, HTTP1, Tls, certificates, within};
use http::{HeaderMap, HeaderValue, Request};
use setup::{h3, requests_total, start_h3};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn http3_routes_by_host_and_path_with_the_tcp_listeners_certificates() {
    let (app, addr, certs) = start_h3("", "").await;
    let mut a = h3(addr, &certs, "a.test").await;
    assert_eq!(a.leaf(), certs.a.leaf, "the a.test certificate by SNI");
    for (path, backend) in [("/", "a"), ("/api/v1?x=1", "api"), ("/apix", "a")] {
        let r = within("get", a.get("a.test", path)).await.unwrap();
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.header("x-backend"), backend);
        assert_eq!(r.text(), format!("{backend} GET {path}"));
        assert_eq!(r.header("x-seen-host"), "a.test");
        assert_eq!(r.header("x-seen-proto"), "https");
        assert_eq!(r.header("x-seen-xff"), "127.0.0.1");
        assert_eq!(r.header("alt-svc"), "", "no Alt-Svc over HTTP/3 itself");
    }
    let mut b = h3(addr, &certs, "b.test").await;
    assert_eq!(b.leaf(), certs.b.leaf);
    let r = within("get", b.get("b.test", "/x")).await.unwrap();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "b GET /x"));

    // An unknown name gets the default certificate (counted, as on TCP), and a host with no
    // route 404.
    let fallbacks = || async {
        let (_, text) = common::admin_get(app.admin_addr(), "/metrics").await;
        common::metric(
            &text,
            "switchyard_tls_default_certificate_total{listener=\"tls\"}",
        )
        .unwrap_or(0.0)
    };
    let before = fallbacks().await;
    let mut other = h3(addr, &certs, "nothing.test").await;
    assert_eq!(other.leaf(), certs.default.leaf);
    assert!(
        fallbacks().await > before,
        "the default certificate is counted"
    );
    let r = within("get", other.get("nothing.test", "/")).await.unwrap();
    assert_eq!(r.status, 404, "{r:?}");

    // The same SNI/Host check as TCP: b.test has its own certificate, not a.test's.
    let r = within("get", a.get("b.test", "/")).await.unwrap();
    assert_eq!(r.status, 421, "{r:?}");

    // Counted in the route metrics like the other versions.
    let mut counted = 0.0;
    for _ in 0..50 {
        counted = requests_total(&app, "api", "2xx").await;
        if counted >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        counted, 1.0,
        "the /api request is in switchyard_http_requests_total"
    );
}

#[tokio::test]
async fn certificate_reloads_reach_new_quic_handshakes() {
    let certs = Certs::new();
    let first = certs.pki.issue("first", &["a.test"]);
    let text = config_text(&format!(
        "http3 = true\n{}{}",
        certificates(&[(&first, true)]),
        services_and_routes().await
    ));
    let (app, addr) = start(&text).await;
    assert_eq!(h3(addr, &certs, "a.test").await.leaf(), first.leaf);
    let second = certs.pki.issue("second", &["a.test"]);
    std::fs::rename(&second.key, &first.key).unwrap();
    std::fs::rename(&second.cert, &first.cert).unwrap();
    within("poll", app.reload_certificates_if_changed()).await;
    let mut again = h3(addr, &certs, "a.test").await;
    assert_eq!(
        again.leaf(),
        second.leaf,
        "a new handshake gets the new certificate"
    );
    let r = within("get", again.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status, 200);
}

/// A body of `len` bytes that is not periodic in any small power of two.
fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

#[tokio::test]
async fn four_mib_bodies_and_trailers_stream_both_ways() {
    let echo = backends::echo_h2c().await;
    let extra = format!(
        "[[services]]\nname = \"echo\"\nupstream_protocol = \"h2c\"\n\
         [[services.endpoints]]\naddress = \"{echo}\"\n\
         [[routes]]\nhost = \"echo.test\"\nservice = \"echo\"\n"
    );
    let (_app, addr, certs) = start_h3("", &extra).await;
    let mut c = h3(addr, &certs, "echo.test").await;
    let body = pattern(4 * 1024 * 1024);
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("up-7"));
    let req = Request::post("https://echo.test/upload").body(()).unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        c.send(req, body.clone(), Some(trailers)),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-seen"), "POST /upload");
    assert_eq!(r.body.len(), body.len());
    assert!(
        r.body == body,
        "the echoed body is the body sent, byte for byte"
    );
    let got = r.trailers.expect("trailers came back");
    assert_eq!(got["x-checksum"], "up-7");
}

#[tokio::test]
async fn concurrent_streams_are_held_to_the_listeners_limit() {
    let (slow, held) = backends::slow(Duration::from_millis(300)).await;
    let extra = format!(
        "[[services]]\nname = \"slow\"\n[[services.endpoints]]\naddress = \"{slow}\"\n\
         [[routes]]\nhost = \"slow.test\"\nservice = \"slow\"\n"
    );
    let (_app, addr, certs) = start_h3("h2_max_concurrent_streams = 2\n", &extra).await;
    let c = h3(addr, &certs, "slow.test").await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let mut send = c.send.clone();
        tasks.push(tokio::spawn(async move {
            let req = Request::get("https://slow.test/").body(()).unwrap();
            let mut stream = send.send_request(req).await.unwrap();
            stream.finish().await.unwrap();
            stream.recv_response().await.unwrap().status()
        }));
    }
    for t in tasks {
        let status = tokio::time::timeout(Duration::from_secs(10), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 200);
    }
    assert_eq!(held.most.load(Ordering::SeqCst), 2, "two streams at a time");
}

#[tokio::test]
async fn max_connections_is_one_limit_for_tcp_and_quic() {
    let (_app, addr, certs) = start_h3("max_connections = 1\n", "").await;
    // A TCP connection (TLS, HTTP/1.1 keep-alive) takes the listener's one slot...
    let mut tcp = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    assert_eq!(tcp.get("a.test", "/").await.status, 200);
    // ...so a QUIC connection is refused (the client falls back to TCP).
    let refused = H3::connect(addr, certs.pki.roots(), "a.test").await;
    let error = refused.err().unwrap_or_default();
    assert!(error.contains("refused"), "not refused: {error:?}");
    // Once the TCP connection is gone, QUIC takes the slot.
    drop(tcp);
    let mut quic = None;
    for _ in 0..100 {
        if let Ok(c) = H3::connect(addr, certs.pki.roots(), "a.test").await {
            quic = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut quic = quic.expect("a QUIC connection once the TCP one closed");
    let r = within("get", quic.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status, 200);
    // And a new TCP connection waits in the backlog (no TLS handshake) while it is open.
    let connecting = Tls::to(addr, &certs.pki, "a.test", &[HTTP1]);
    tokio::pin!(connecting);
    let early = tokio::time::timeout(Duration::from_millis(500), &mut connecting).await;
    assert!(
        early.is_err(),
        "a TCP connection was served beyond max_connections"
    );
    quic.quic.close(0u32.into(), b"done");
    let mut tcp = connecting.await.h1().await;
    assert_eq!(tcp.get("a.test", "/after").await.status, 200);
}

#[tokio::test]
async fn the_header_limit_is_the_listeners_request_head_limit() {
    let (_app, addr, certs) = start_h3("max_header_bytes = 8192\n", "").await;
    let mut c = h3(addr, &certs, "a.test").await;
    // Let the server's SETTINGS arrive (a request before them is not checked by the client).
    let r = within("get", c.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status, 200);
    let big = "x".repeat(10_000);
    let req = Request::get("https://a.test/")
        .header("x-big", big.as_str())
        .body(())
        .unwrap();
    let refused = within("big", c.send(req, Bytes::new(), None))
        .await
        .unwrap_err();
    assert!(
        refused.contains("Header too big") && refused.contains("max size: 8192"),
        "the server's max_field_section_size is the listener's: {refused}"
    );
    let r = within("get", c.get("a.test", "/after")).await.unwrap();
    assert_eq!(r.status, 200, "the connection goes on");
}

#[tokio::test]
async fn alt_svc_is_on_tcp_tls_answers_only_when_http3_is_on() {
    let plain = "[[listeners]]\nname = \"plain\"\nlisten = \"127.0.0.1:0\"\n";
    let (app, addr, certs) = start_h3("http3_alt_svc_max_age = \"2h\"\n", plain).await;
    let want = format!("h3=\":{}\"; ma=7200", addr.port());
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    let routed = h1.get("a.test", "/").await;
    assert_eq!(
        (routed.status, routed.header("alt-svc")),
        (200, want.as_str())
    );
    let missing = h1.get("nothing.test", "/").await;
    assert_eq!(
        missing.header("alt-svc"),
        want,
        "our own answers too: {missing:?}"
    );
    let mut h2 = Tls::to(addr, &certs.pki, "a.test", &[H2]).await.h2().await;
    assert_eq!(h2.get("a.test", "/").await.header("alt-svc"), want);
    // The advertised port answers HTTP/3.
    let r = within("get", h3(addr, &certs, "a.test").await.get("a.test", "/"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);

    let plain = app.http_addr("plain").await.unwrap();
    let (status, headers, _) = common::http::get(plain, "a.test", "/").await;
    assert_eq!(status, 200);
    assert!(headers.get("alt-svc").is_none(), "not on plain HTTP");

    // http3 off: no Alt-Svc, and nothing on the UDP port.
    let certs = Certs::new();
    let text = config_text(&format!("{}{}", certs.toml(), services_and_routes().await));
    let (_off, addr) = start(&text).await;
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    let a = h1.get("a.test", "/").await;
    assert_eq!((a.status, a.header("alt-svc")), (200, ""));
    let refused = tokio::time::timeout(
        Duration::from_secs(3),
        H3::connect(addr, certs.pki.roots(), "a.test"),
    )
    .await;
    assert!(!matches!(refused, Ok(Ok(_))), "no HTTP/3 when it is off");
}

#[test]
fn http3_on_a_listener_without_tls_is_a_check_error() {
    let text = "[[listeners]]\nname = \"plain\"\nlisten = \"127.0.0.1:8080\"\nhttp3 = true\n";
    let error = switchyard::config::Config::parse(text, "test")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("listeners[0].http3: needs tls = true"),
        "names the key: {error}"
    );
}

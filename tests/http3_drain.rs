//! HTTP/3 connections over time, over real sockets with a quinn + h3 client: a drain (GOAWAY,
//! the request in flight finishes, new connections refused), migration to a new client
//! address, and the access log's version field for HTTP/3, HTTP/2 and HTTP/1.1.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "http3_support/backends.rs"]
mod backends;
#[path = "http3_support/client.rs"]
mod client;
mod common;
#[path = "http3_support/setup.rs"]
mod setup;

use client::H3;
use common::https::{Certs, config_text, services_and_routes, start};
use common::log::captured;
use common::tls::{H2, HTTP1, Tls, within};
use setup::{h3, start_h3};
use std::time::Duration;

#[tokio::test]
async fn a_drain_lets_the_request_in_flight_finish_and_refuses_new_connections() {
    let (slow, _) = backends::slow(Duration::from_millis(800)).await;
    let extra = format!(
        "[[services]]\nname = \"slow\"\n[[services.endpoints]]\naddress = \"{slow}\"\n\
         [[routes]]\nhost = \"slow.test\"\nservice = \"slow\"\n"
    );
    let (app, addr, certs) = start_h3("", &extra).await;
    let mut c = h3(addr, &certs, "slow.test").await;
    let in_flight = tokio::spawn(async move {
        let r = c.get("slow.test", "/").await;
        (r, c)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let drained = tokio::spawn(app.shutdown(Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let late = tokio::time::timeout(
        Duration::from_secs(3),
        H3::connect_as(addr, certs.pki.roots(), "slow.test", Some("default.test")),
    )
    .await;
    let late = late.map(|r| r.map(|_| ()));
    assert!(
        matches!(&late, Ok(Err(e)) if e.contains("refused")),
        "a new connection is refused while draining: {late:?}"
    );
    let (r, mut c) = within("in flight", in_flight).await.unwrap();
    let r = r.unwrap();
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "slow"));
    let after = within("after goaway", c.get("slow.test", "/")).await;
    assert!(after.is_err(), "no new request after GOAWAY: {after:?}");
    within("drained", drained).await.unwrap();
}

#[tokio::test]
async fn a_connection_survives_the_clients_address_change() {
    let (_app, addr, certs) = start_h3("", "").await;
    let mut c = h3(addr, &certs, "a.test").await;
    let r = within("get", c.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status, 200);
    let before = c.endpoint.local_addr().unwrap();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.endpoint.rebind(socket).unwrap();
    assert_ne!(c.endpoint.local_addr().unwrap(), before, "a new local port");
    let r = within("get after rebind", c.get("a.test", "/moved"))
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.text().as_str()),
        (200, "a GET /moved")
    );
    assert!(c.quic.close_reason().is_none(), "the same connection");
}

/// The access-log line whose path is `path`, once written.
async fn logged(path: &str) -> serde_json::Value {
    for _ in 0..50 {
        let text = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
        let line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|j| j["fields"]["path"] == path);
        if let Some(line) = line {
            return line["fields"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no access-log line for {path}");
}

#[tokio::test]
async fn the_access_log_names_the_http_version() {
    captured();
    let certs = Certs::new();
    let text = config_text(&format!(
        "http3 = true\n{}{}",
        certs.toml(),
        services_and_routes().await
    ))
    .replace("access_log = \"off\"", "access_log = \"json\"");
    let (_app, addr) = start(&text).await;
    let mut c = h3(addr, &certs, "a.test").await;
    let r = within("get", c.get("a.test", "/logged-over-h3"))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let mut h2 = Tls::to(addr, &certs.pki, "a.test", &[H2]).await.h2().await;
    assert_eq!(h2.get("a.test", "/logged-over-h2").await.status, 200);
    let mut h1 = Tls::to(addr, &certs.pki, "a.test", &[HTTP1])
        .await
        .h1()
        .await;
    assert_eq!(h1.get("a.test", "/logged-over-h1").await.status, 200);
    for (path, version) in [
        ("/logged-over-h3", "HTTP/3"),
        ("/logged-over-h2", "HTTP/2"),
        ("/logged-over-h1", "HTTP/1.1"),
    ] {
        let f = logged(path).await;
        assert_eq!(f["version"], version, "{f}");
        assert_eq!(f["status"], 200, "{f}");
        assert_eq!(f["host"], "a.test", "{f}");
    }
}

/// A reload that adds an HTTP/3 listener on a UDP port another socket holds is refused as a
/// whole before anything changes: the error names the listener and the UDP address, the new
/// listener's TCP port is not left open, and the running listener still serves HTTP/3 with the
/// old routes (the UDP socket is bound with the TCP ones, before the new table is published).
#[tokio::test]
async fn a_reload_needing_a_taken_udp_port_changes_nothing() {
    let certs = Certs::new();
    let text = config_text(&format!(
        "http3 = true\n{}{}",
        certs.toml(),
        services_and_routes().await
    ));
    let (app, addr) = start(&text).await;
    // A UDP port whose TCP twin is free: the TCP port is held until just before the reload,
    // so that no other test's socket takes it meanwhile (the reload must fail on UDP).
    let (holder, tcp_twin) = loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        if let Ok(udp) = std::net::UdpSocket::bind(tcp.local_addr().unwrap()) {
            break (udp, tcp);
        }
    };
    let taken = holder.local_addr().unwrap();
    // The same config, a.test routed to service b, and a new listener on the taken port.
    let rerouted = text.replacen(
        "host = \"a.test\"\nservice = \"a\"",
        "host = \"a.test\"\nservice = \"b\"",
        1,
    );
    assert_ne!(rerouted, text);
    let more = format!(
        "{rerouted}[[listeners]]\nname = \"late\"\nlisten = \"{taken}\"\ntls = true\nhttp3 = true\n"
    );
    let config = switchyard::config::Config::parse(&more, "test").unwrap();
    drop(tcp_twin);
    let error = within("apply", app.apply(&config)).await.unwrap_err();
    assert_eq!(
        error.to_string().split(": ").next().unwrap(),
        format!("cannot listen on udp {taken} for listener late (http/3)"),
        "{error}"
    );
    assert!(
        std::net::TcpStream::connect(taken).is_err(),
        "the refused listener's TCP port was left open"
    );
    let mut c = h3(addr, &certs, "a.test").await;
    let r = within("get", c.get("a.test", "/")).await.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with(b"a "),
        "served by the new routes: {:?}",
        r.body
    );
    drop(holder);
}

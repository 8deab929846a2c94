//! UDP flow proxying through a real app over real sockets.
//!
//! Every test uses its own service names: metrics are process-global.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

#[path = "udp/buffers.rs"]
mod buffers;
mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Longest wait for one reply datagram.
const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A client socket on its own ephemeral port, connected to the service, so it only ever
/// receives datagrams sent from the service's address.
async fn client(service: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.connect(service).await.unwrap();
    socket
}

/// The next datagram on `socket`, as text; `what` names it if it does not come.
async fn recv(socket: &UdpSocket, what: &str) -> String {
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(REPLY_TIMEOUT, socket.recv(&mut buf))
        .await
        .unwrap_or_else(|_| panic!("no {what} within {REPLY_TIMEOUT:?}"))
        .unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// Sends `msg` and returns the reply.
async fn ask(socket: &UdpSocket, msg: &str) -> String {
    socket.send(msg.as_bytes()).await.unwrap();
    recv(socket, &format!("reply to {msg:?}")).await
}

/// Sends `msg` and returns the backend name from the "NAME:msg" reply.
async fn backend_for(socket: &UdpSocket, msg: &str) -> String {
    let reply = ask(socket, msg).await;
    let (name, echoed) = reply
        .split_once(':')
        .unwrap_or_else(|| panic!("bad reply {reply:?}"));
    assert_eq!(echoed, msg, "reply carries this client's own payload");
    name.to_owned()
}

/// Asserts that nothing arrives on `socket` for `wait`.
async fn assert_silent(socket: &UdpSocket, wait: Duration, why: &str) {
    let mut buf = vec![0u8; 65_535];
    if let Ok(got) = tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        let n = got.unwrap();
        panic!("{why}: got {:?}", String::from_utf8_lossy(&buf[..n]));
    }
}

/// `active` of the named service in `/debug/table`.
async fn table_active(admin: SocketAddr, service: &str) -> u64 {
    let (status, body) = admin_get(admin, "/debug/table").await;
    assert_eq!(status, 200, "{body}");
    let table: serde_json::Value = serde_json::from_str(&body).unwrap();
    let svc = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("{service} not in {body}"));
    svc["active"].as_u64().unwrap()
}

/// A metric of the service, 0 when not rendered yet.
async fn service_metric(admin: SocketAddr, name: &str, service: &str, more_labels: &str) -> f64 {
    let (_, text) = admin_get(admin, "/metrics").await;
    metric(
        &text,
        &format!("{name}{{service=\"{service}\"{more_labels}}}"),
    )
    .unwrap_or(0.0)
}

async fn active_flows(admin: SocketAddr, service: &str) -> (u64, f64) {
    let table = table_active(admin, service).await;
    let gauge = service_metric(admin, "switchyard_connections_active", service, "").await;
    (table, gauge)
}

#[tokio::test]
async fn request_and_reply_through_the_proxy() {
    let a = udp_backend("a").await;
    let app = start(&service("udp-basic", "udp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("udp-basic").await.unwrap();
    let c = client(addr).await;
    assert_eq!(ask(&c, "hello").await, "a:hello");
    assert_eq!(ask(&c, "again").await, "a:again");
    // A large datagram goes through whole.
    let big = "x".repeat(8000);
    assert_eq!(ask(&c, &big).await, format!("a:{big}"));
    let admin = app.admin_addr();
    assert_eq!(
        service_metric(admin, "switchyard_connections_total", "udp-basic", "").await,
        1.0,
        "one client, one flow"
    );
    assert_eq!(
        service_metric(
            admin,
            "switchyard_bytes_total",
            "udp-basic",
            ",direction=\"in\""
        )
        .await,
        (5 + 5 + 8000) as f64
    );
    assert_eq!(
        service_metric(
            admin,
            "switchyard_bytes_total",
            "udp-basic",
            ",direction=\"out\""
        )
        .await,
        (7 + 7 + 8002) as f64
    );
}

#[tokio::test]
async fn clients_are_kept_apart_and_stick_to_their_endpoint() {
    let a = udp_backend("a").await;
    let b = udp_backend("b").await;
    let app = start(&service("udp-apart", "udp", "rr", &[(a, 1), (b, 1)], "")).await;
    let addr = app.local_addr("udp-apart").await.unwrap();
    let c1 = client(addr).await;
    let c2 = client(addr).await;
    assert_ne!(c1.local_addr().unwrap(), c2.local_addr().unwrap());
    let first1 = backend_for(&c1, "c1-0").await;
    let first2 = backend_for(&c2, "c2-0").await;
    assert_ne!(
        first1, first2,
        "rr puts the two flows on different endpoints"
    );
    for i in 1..=5 {
        // Interleaved, and both in flight at once: each reply must come back to its sender.
        let (m1, m2) = (format!("c1-{i}"), format!("c2-{i}"));
        c1.send(m1.as_bytes()).await.unwrap();
        c2.send(m2.as_bytes()).await.unwrap();
        let r1 = recv(&c1, &format!("reply to {m1:?}")).await;
        assert_eq!(r1, format!("{first1}:{m1}"), "client 1 keeps its endpoint");
        let r2 = recv(&c2, &format!("reply to {m2:?}")).await;
        assert_eq!(r2, format!("{first2}:{m2}"), "client 2 keeps its endpoint");
    }
    assert_silent(
        &c1,
        Duration::from_millis(100),
        "no stray datagram for client 1",
    )
    .await;
    assert_silent(
        &c2,
        Duration::from_millis(100),
        "no stray datagram for client 2",
    )
    .await;
    let admin = app.admin_addr();
    assert_eq!(table_active(admin, "udp-apart").await, 2);
    assert_eq!(
        service_metric(admin, "switchyard_connections_total", "udp-apart", "").await,
        2.0,
        "two flows, however many datagrams"
    );
}

#[tokio::test]
async fn idle_flows_expire_and_a_new_datagram_opens_a_new_flow() {
    let a = udp_backend("a").await;
    let svc = service(
        "udp-idle",
        "udp",
        "rr",
        &[(a, 1)],
        "idle_timeout = \"300ms\"",
    );
    let app = start(&svc).await;
    let (addr, admin) = (app.local_addr("udp-idle").await.unwrap(), app.admin_addr());
    let c = client(addr).await;
    assert_eq!(ask(&c, "one").await, "a:one");
    assert_eq!(active_flows(admin, "udp-idle").await, (1, 1.0));

    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = active_flows(admin, "udp-idle").await;
        if now == (0, 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "flow still there after 3 s: (table, gauge) = {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = || service_metric(admin, "switchyard_connections_total", "udp-idle", "");
    assert_eq!(total().await, 1.0);

    assert_eq!(
        ask(&c, "two").await,
        "a:two",
        "the same client is served again"
    );
    assert_eq!(total().await, 2.0, "by a new flow");
    assert_eq!(active_flows(admin, "udp-idle").await, (1, 1.0));
}

#[tokio::test]
async fn flow_limit_drops_new_clients_and_keeps_existing_ones() {
    let a = udp_backend("a").await;
    let app = start(&service(
        "udp-limit",
        "udp",
        "rr",
        &[(a, 1)],
        "max_flows = 1",
    ))
    .await;
    let (addr, admin) = (app.local_addr("udp-limit").await.unwrap(), app.admin_addr());
    let c1 = client(addr).await;
    let c2 = client(addr).await;
    assert_eq!(ask(&c1, "first").await, "a:first");
    c2.send(b"second").await.unwrap();
    assert_silent(
        &c2,
        Duration::from_millis(300),
        "a client over max_flows gets no reply",
    )
    .await;
    let dropped = service_metric(
        admin,
        "switchyard_udp_datagrams_dropped_total",
        "udp-limit",
        ",reason=\"flow_limit\"",
    )
    .await;
    assert!(dropped >= 1.0, "flow_limit drops counted: {dropped}");
    assert_eq!(
        ask(&c1, "still").await,
        "a:still",
        "the existing flow keeps working"
    );
    assert_eq!(table_active(admin, "udp-limit").await, 1);
}

#[tokio::test]
async fn reload_keeps_flows_on_their_endpoint_and_sends_new_clients_to_the_new_one() {
    let a = udp_backend("a").await;
    let b = udp_backend("b").await;
    let app = start(&service("udp-reload", "udp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("udp-reload").await.unwrap();
    let old = client(addr).await;
    assert_eq!(backend_for(&old, "before").await, "a");

    app.apply(&config(&service("udp-reload", "udp", "rr", &[(b, 1)], "")))
        .await
        .unwrap();
    assert_eq!(
        app.local_addr("udp-reload").await,
        Some(addr),
        "the listener is kept"
    );

    assert_eq!(
        backend_for(&old, "after").await,
        "a",
        "an open flow keeps its endpoint"
    );
    let new = client(addr).await;
    assert_eq!(
        backend_for(&new, "fresh").await,
        "b",
        "a new client gets the new endpoint"
    );
    assert_eq!(backend_for(&old, "still").await, "a");
    let (_, table) = admin_get(app.admin_addr(), "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let svc = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "udp-reload")
        .unwrap();
    assert_eq!(svc["active"], 2, "both flows are counted across the reload");
    assert_eq!(svc["endpoints"][0]["address"], b.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_datagrams_of_a_new_flow_are_not_dropped() {
    let a = udp_backend("a").await;
    let app = start(&service("udp-first", "udp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("udp-first").await.unwrap();
    for k in 0..5 {
        // Two datagrams back to back from a fresh client: the flow is new for both.
        let c = client(addr).await;
        c.send(format!("{k}-one").as_bytes()).await.unwrap();
        c.send(format!("{k}-two").as_bytes()).await.unwrap();
        for want in [format!("a:{k}-one"), format!("a:{k}-two")] {
            assert_eq!(
                recv(&c, &format!("reply {want:?} to client {k}")).await,
                want
            );
        }
    }
    let busy = service_metric(
        app.admin_addr(),
        "switchyard_udp_datagrams_dropped_total",
        "udp-first",
        ",reason=\"upstream_busy\"",
    )
    .await;
    assert_eq!(
        busy, 0.0,
        "datagrams dropped as upstream_busy on an idle loopback"
    );
}

//! The `switchyard run` binary stopping and under pressure: SIGTERM drains open connections
//! then exits 0, the drain deadline closes leftovers, and the accept loop survives running out
//! of file descriptors. Every spawned proxy is owned by a `common::proc::Proxy` guard that
//! kills it on drop.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::proc::{Proxy, eventually, get};
use common::*;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test]
async fn sigterm_drains_open_connections_then_exits_0() {
    let a = tcp_backend("a").await;
    let mut proxy = Proxy::start(a, "drain_timeout = \"5s\"\nwatch_interval = \"0s\"").await;
    let (_, mut open) = connect(proxy.listen).await;
    echo_roundtrip(&mut open, b"before").await;

    proxy.signal("TERM").await;
    let admin = proxy.admin;
    let not_ready = eventually(Duration::from_secs(3), || async move {
        get(admin, "/readyz").await.map(|r| r.0) == Some(503)
    })
    .await;
    if !not_ready {
        proxy.fail("/readyz did not turn 503 within 3 s of SIGTERM");
    }
    let listen = proxy.listen;
    let refused = eventually(Duration::from_secs(3), || async move {
        matches!(TcpStream::connect(listen).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    if !refused {
        proxy.fail("new connections still accepted 3 s after SIGTERM");
    }

    echo_roundtrip(&mut open, b"during the drain").await;
    proxy.assert_running("while a connection is open and drain_timeout has not passed");

    drop(open);
    // Well inside the 5 s drain timeout: the process ends because the connection did.
    let status = proxy.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proxy.log());
    assert!(
        !proxy.log().contains("drain deadline passed"),
        "{}",
        proxy.log()
    );
}

#[tokio::test]
async fn drain_deadline_closes_leftover_connections_and_exits_0() {
    let a = tcp_backend("a").await;
    let mut proxy = Proxy::start(a, "drain_timeout = \"1s\"\nwatch_interval = \"0s\"").await;
    let (_, mut open) = connect(proxy.listen).await;
    echo_roundtrip(&mut open, b"before").await;

    proxy.signal("TERM").await;
    let signalled = Instant::now();
    let status = proxy.wait_exit(Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status}\n{}", proxy.log());
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the 1 s drain timeout"
    );
    assert!(
        proxy.log().contains("drain deadline passed"),
        "{}",
        proxy.log()
    );

    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
        .await
        .expect("the leftover connection was not closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn accept_loop_survives_running_out_of_file_descriptors() {
    let backend = tcp_backend("fd").await;
    let mut proxy = Proxy::start_limited(backend, "", Some(48)).await;
    // Each proxied connection costs two descriptors: 40 clients exhaust 48.
    let mut clients = Vec::new();
    for _ in 0..40 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(proxy.listen)).await
        {
            clients.push(s);
        }
    }
    // The proxy accepts the backlog at its own pace (slowly on a busy machine): wait, bounded,
    // until its log shows it ran out, rather than a fixed time. (Not through the admin port,
    // which needs a descriptor too.)
    let ran_out = || {
        let log = proxy.log();
        log.contains("accept failed") || log.contains("out of local resources")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !ran_out() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    proxy.assert_running("while out of file descriptors");
    drop(clients);
    let listen = proxy.listen;
    let served = eventually(Duration::from_secs(5), || async move {
        tokio::time::timeout(Duration::from_secs(1), backend_of(listen))
            .await
            .is_ok_and(|name| name == "fd")
    })
    .await;
    if !served {
        proxy.fail("not serving again after descriptors were freed");
    }
    let errors = proxy
        .metric(r#"switchyard_accept_errors_total{service="web"}"#)
        .await;
    let refused = proxy
        .metric(r#"switchyard_upstream_connect_errors_total{service="web",reason="other"}"#)
        .await;
    if errors + refused < 1.0 {
        proxy.fail("expected accept errors or failed upstream sockets while out of descriptors");
    }
    eprintln!("accept errors {errors}, upstream socket errors {refused}");
    assert!(proxy.log().contains("accept failed") || refused >= 1.0);
}

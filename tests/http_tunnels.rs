//! Upgraded connections (WebSocket tunnels) are connections like any other: they hold their
//! listener's `max_connections` slot, count in `switchyard_http_connections_active` and in
//! their endpoint's active count (which `lc`, `wlc` and `twos` balance by), and a shutdown
//! drains them and cuts them at the drain deadline, instead of dropping them at once.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::http::{config, service};
use common::{admin_get, metric};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::app;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A WebSocket-ish backend: answers any request head with a `101` and then echoes bytes.
async fn switching_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let switched = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n\
                                 upgrade: websocket\r\n\r\n";
                if socket.write_all(switched).await.is_err() {
                    return;
                }
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// Opens a tunnel through the proxy: the upgrade request, the `101`, then an echo.
async fn open_tunnel(proxy: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut s, Duration::from_secs(5)).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut s, b"ping").await;
    s
}

async fn read_head(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(within, async {
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.ok()? == 0 {
                return None;
            }
            head.push(byte[0]);
        }
        Some(())
    })
    .await
    .ok()??;
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, msg);
}

/// The endpoint's active count and the listener's connection gauge.
async fn counts(admin: SocketAddr) -> (u64, f64) {
    let (_, table) = admin_get(admin, "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let active = table["services"][0]["endpoints"][0]["active"]
        .as_u64()
        .unwrap();
    let (_, text) = admin_get(admin, "/metrics").await;
    let gauge = metric(
        &text,
        "switchyard_http_connections_active{listener=\"web\"}",
    )
    .unwrap_or(-1.0);
    (active, gauge)
}

fn config_text(backend: SocketAddr) -> String {
    format!(
        "{}\n[[routes]]\nhost = \"ws.test\"\npath = \"/\"\nservice = \"ws\"\n",
        service("ws", &[backend], "scheduler = \"lc\"")
    )
}

#[tokio::test]
async fn tunnels_hold_their_slot_and_their_endpoint_count() {
    let backend = switching_backend().await;
    let text = config_text(backend).replace("[[services]]", "max_connections = 3\n[[services]]");
    let app = app::start(config(&text)).await.unwrap();
    let proxy = app.http_addr("web").await.unwrap();
    let mut tunnels = Vec::new();
    for _ in 0..3 {
        tunnels.push(open_tunnel(proxy).await);
    }
    assert_eq!(settled(app.admin_addr(), (3, 3.0)).await, (3, 3.0));
    // A fourth waits in the kernel's backlog: the listener is at its limit.
    let mut fourth = TcpStream::connect(proxy).await.unwrap();
    fourth
        .write_all(b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_head(&mut fourth, Duration::from_millis(500)).await,
        None
    );
    // One tunnel closes: its slot and its count go, and the fourth is served.
    drop(tunnels.pop());
    let head = read_head(&mut fourth, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    echo(&mut fourth, b"fourth").await;
    for t in &mut tunnels {
        echo(t, b"still there").await;
    }
    assert_eq!(settled(app.admin_addr(), (3, 3.0)).await, (3, 3.0));
    drop(tunnels);
    drop(fourth);
    assert_eq!(settled(app.admin_addr(), (0, 0.0)).await, (0, 0.0));
}

/// The counts once they reach `want` (a closed tunnel's task ends a moment after its close),
/// or as they are after a few seconds.
async fn settled(admin: SocketAddr, want: (u64, f64)) -> (u64, f64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = counts(admin).await;
        if now == want || Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_shutdown_drains_tunnels_and_cuts_them_at_the_deadline() {
    let backend = switching_backend().await;
    let app = app::start(config(&config_text(backend))).await.unwrap();
    let proxy = app.http_addr("web").await.unwrap();
    let mut tunnel = open_tunnel(proxy).await;
    let started = Instant::now();
    let shutdown = tokio::spawn(app.shutdown(Duration::from_millis(1500)));
    // Draining: the tunnel still carries data.
    tokio::time::sleep(Duration::from_millis(300)).await;
    echo(&mut tunnel, b"during the drain").await;
    assert!(
        !shutdown.is_finished(),
        "shutdown did not wait for the tunnel"
    );
    // At the deadline it is cut, and the shutdown completes.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tunnel.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "cut after {took:?}");
}

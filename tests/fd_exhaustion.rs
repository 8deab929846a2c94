//! The proxy running out of file descriptors is its own fault, not its endpoints': a
//! `socket()` that fails with `EMFILE` marks no endpoint as failing and benches none, the HTTP
//! client gets a 503 (not a 502), the L4 client a close, each counted with the reason
//! `local_resources`; and an HTTP listener's failed `accept()` is counted like an L4 one's.
//!
//! The open-file limit is the process's, so this file holds one test, alone in its binary.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::{admin_get, metric, tcp_backend};
use rlimit::Resource;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The open descriptors' numbers.
fn open_fds() -> BTreeSet<u64> {
    let dir = std::fs::read_dir("/proc/self/fd").unwrap();
    let listed: Vec<u64> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing's own descriptor is closed by now; it is the one that no longer exists.
    listed
        .into_iter()
        .filter(|fd| std::path::Path::new(&format!("/proc/self/fd/{fd}")).exists())
        .collect()
}

/// Sets the soft open-file limit so that exactly `free` more descriptors can be opened, once
/// the connections closed before have closed on the proxy's side too.
async fn leave_free(free: usize) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    let open = open_fds();
    let limit = (0u64..).filter(|n| !open.contains(n)).nth(free).unwrap();
    let (_, hard) = Resource::NOFILE.get().unwrap();
    Resource::NOFILE.set(limit, hard).unwrap();
}

fn restore(soft: u64) {
    let (_, hard) = Resource::NOFILE.get().unwrap();
    Resource::NOFILE.set(soft, hard).unwrap();
}

async fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn running_out_of_descriptors_blames_no_endpoint() {
    let backend = tcp_backend("b").await;
    let http_backend = common::http::backend("h").await;
    let text = format!(
        "{}\n{}\n[[routes]]\nhost = \"a.test\"\npath = \"/\"\nservice = \"web\"\n\
         [[services]]\nname = \"l4\"\nlisten = \"127.0.0.1:0\"\nmax_failures = 1\n\
         [[services.endpoints]]\naddress = \"{backend}\"\n",
        common::http::service("web", &[http_backend], "max_failures = 1"),
        "",
    );
    let app = app::start(common::http::config(&text)).await.unwrap();
    let http: SocketAddr = app.http_addr("web").await.unwrap();
    let l4 = app.local_addr("l4").await.unwrap();
    let (soft, _) = Resource::NOFILE.get().unwrap();

    // HTTP: the proxy accepts (the one free descriptor), then cannot open the upstream socket.
    let socket = TcpSocket::new_v4().unwrap();
    leave_free(1).await;
    let mut client = socket.connect(http).await.unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut client).await;
    restore(soft);
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(
        answer.ends_with("proxy out of resources, try again\n"),
        "{answer}"
    );
    drop(client);

    // L4: the same, and the client connection is closed without a byte.
    let socket = TcpSocket::new_v4().unwrap();
    leave_free(1).await;
    let mut client = socket.connect(l4).await.unwrap();
    let answer = read_all(&mut client).await;
    restore(soft);
    assert_eq!(answer, "");
    drop(client);

    // An HTTP listener's accept with no descriptor left is counted; once there are
    // descriptors again, the waiting connection is served.
    let socket = TcpSocket::new_v4().unwrap();
    leave_free(0).await;
    let mut client = socket.connect(http).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    restore(soft);
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_all(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");

    let (_, table) = admin_get(app.admin_addr(), "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    for service in table["services"].as_array().unwrap() {
        let endpoint = &service["endpoints"][0];
        assert_eq!(endpoint["failures"], 0, "{service}");
        assert_eq!(endpoint["benched"], false, "{service}");
    }
    let (_, text) = admin_get(app.admin_addr(), "/metrics").await;
    let counted = |name: &str| metric(&text, name).unwrap_or(0.0);
    assert!(
        counted(
            "switchyard_http_upstream_errors_total{service=\"web\",reason=\"local_resources\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        counted(
            "switchyard_upstream_connect_errors_total{service=\"l4\",reason=\"local_resources\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        counted("switchyard_accept_errors_total{listener=\"web\"}") >= 1.0,
        "{text}"
    );
    assert_eq!(
        counted("switchyard_endpoint_benched_total{service=\"web\"}"),
        0.0
    );
}

//! Helpers shared by the integration tests: real backends on 127.0.0.1:0 and config text.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

pub mod chromium;
pub mod edge;
pub mod h2;
pub mod http;
pub mod https;
pub mod log;
pub mod proc;
pub mod tls;

use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// A TCP backend that greets each connection with "NAME\n" and then echoes until EOF.
pub async fn tcp_backend(name: &str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let name = name.to_owned();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let name = name.clone();
            tokio::spawn(async move {
                let _ = sock.write_all(format!("{name}\n").as_bytes()).await;
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A UDP backend answering each datagram with "NAME:" + datagram.
pub async fn udp_backend(name: &str) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = socket.send_to(&reply, from).await;
        }
    });
    addr
}

/// An address nobody listens on (bound, then released).
pub async fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// TOML for one service.
pub fn service(
    name: &str,
    protocol: &str,
    scheduler: &str,
    endpoints: &[(SocketAddr, u32)],
    extra: &str,
) -> String {
    let mut s = format!(
        "[[services]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nprotocol = \"{protocol}\"\nscheduler = \"{scheduler}\"\n{extra}\n"
    );
    for (addr, weight) in endpoints {
        s.push_str(&format!(
            "[[services.endpoints]]\naddress = \"{addr}\"\nweight = {weight}\n"
        ));
    }
    s
}

/// A whole config: admin on an ephemeral port, short drain, no file watching.
pub fn config(services: &str) -> Config {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"2s\"\nwatch_interval = \"0s\"\n{services}"
    );
    Config::parse(&text, "test").unwrap()
}

/// Starts an app.
pub async fn start(services: &str) -> App {
    app::start(config(services)).await.unwrap()
}

/// Connects to a greeting backend through `addr` and returns its name and the open stream.
pub async fn connect(addr: SocketAddr) -> (String, BufReader<TcpStream>) {
    let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect failed");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .expect("greeting timed out")
        .expect("greeting failed");
    (line.trim().to_owned(), reader)
}

/// Name of the backend a fresh connection through `addr` reaches.
pub async fn backend_of(addr: SocketAddr) -> String {
    connect(addr).await.0
}

/// Sends `msg` on an open proxied stream and checks the echo.
pub async fn echo_roundtrip(stream: &mut BufReader<TcpStream>, msg: &[u8]) {
    stream.get_mut().write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut got))
        .await
        .expect("echo timed out")
        .expect("echo failed");
    assert_eq!(got, msg);
}

/// GET `path` on the admin listener; returns (status, body).
pub async fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Value of a metric line `name{labels} value` in Prometheus text, if present.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Polls `/metrics` until `name` reaches `want` (requests are counted when their response
/// body is finished, a moment after the client has read it).
pub async fn eventually_metric(admin: std::net::SocketAddr, name: &str, want: f64) -> Option<f64> {
    let mut got = None;
    for _ in 0..50 {
        let (_, text) = admin_get(admin, "/metrics").await;
        got = metric(&text, name);
        if got == Some(want) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    got
}

//! PROXY protocol on the HTTP router over real sockets: a listener that accepts it gives the
//! real client address to backends, and http endpoints that want it get one private upstream
//! connection per client connection, each naming its own client.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, service};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app;
use switchyard::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn proxy_protocol_on_a_listener_gives_the_real_client_address() {
    let a = backend("a").await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"behind-lb\"\nlisten = \"127.0.0.1:0\"\naccept_proxy_protocol = true\n\
         {}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    );
    let app = app::start(Config::parse(&text, "test").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("behind-lb").await.unwrap();
    let exchange = |preamble: Vec<u8>| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&preamble).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .unwrap();
        String::from_utf8_lossy(&out).to_lowercase()
    };
    let v2 =
        switchyard::upstream::proxy_v2_header("192.0.2.44:5555".parse().unwrap(), addr).unwrap();
    let resp = exchange(v2).await;
    assert!(resp.contains("x-seen-xff: 192.0.2.44"), "{resp}");
    let v1 = format!("PROXY TCP4 198.51.100.7 127.0.0.1 4444 {}\r\n", addr.port()).into_bytes();
    let resp = exchange(v1).await;
    assert!(resp.contains("x-seen-xff: 198.51.100.7"), "{resp}");
    assert_eq!(
        exchange(Vec::new()).await,
        "",
        "no PROXY header: closed without an answer"
    );
}

/// A backend that reads a PROXY header on each connection and answers every request on it
/// with the client address the header named; counts its connections.
async fn proxy_protocol_backend() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let read =
                    switchyard::router::proxy_header::read(&mut socket, Duration::from_secs(2));
                let Ok(Some(client)) = read.await else { return };
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| async move {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(client.to_string()))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn proxy_protocol_to_http_endpoints_names_each_client_on_its_own_connections() {
    let (backend, connections) = proxy_protocol_backend().await;
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"edge\"\nlisten = \"127.0.0.1:0\"\naccept_proxy_protocol = true\n\
         {}[[routes]]\nservice = \"pp\"\n",
        service("pp", &[backend], "proxy_protocol = \"v2\"")
    );
    let app = app::start(Config::parse(&text, "test").unwrap())
        .await
        .unwrap();
    let addr = app.http_addr("edge").await.unwrap();
    // Two clients arrive through an L4 balancer that tells us who they are.
    let mut clients = Vec::new();
    for source in ["192.0.2.44:5555", "198.51.100.7:4444"] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let header = switchyard::upstream::proxy_v2_header(source.parse().unwrap(), addr).unwrap();
        stream.write_all(&header).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        clients.push((source, Client(send)));
    }
    // Interleaved keep-alive requests: each must reach the endpoint on a connection whose
    // PROXY header names its own client, never the other one's.
    for _ in 0..3 {
        for (source, client) in &mut clients {
            let (code, _, body) = client.get("x.test", "/").await;
            assert_eq!((code, body.as_str()), (200, *source));
        }
    }
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one private upstream connection per client connection, reused"
    );
}

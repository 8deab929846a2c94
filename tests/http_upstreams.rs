//! The HTTP router's upstream side over real sockets: upgrades (WebSocket), gRPC over h2c,
//! 100-continue, PROXY protocol, verified https endpoints, endpoint busy counts.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, config, get, service, start};
use http_body_util::{BodyExt, Full};
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

/// A backend that accepts any `Upgrade` and then echoes raw bytes.
async fn upgrade_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(upgraded) = on.await {
                            let mut io = TokioIo::new(upgraded);
                            let (mut r, mut w) = tokio::io::split(&mut io);
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        }
                    });
                    let resp = Response::builder()
                        .status(101)
                        .header("connection", "upgrade")
                        .header("upgrade", "websocket")
                        .body(Full::new(Bytes::new()))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn websocket_upgrade_tunnels_and_survives_100_reloads() {
    let ws = upgrade_backend().await;
    let other = backend("other").await;
    let routes = "[[routes]]\npath = \"/ws\"\nservice = \"ws\"\n[[routes]]\nservice = \"other\"\n";
    let version = |i: usize| {
        format!(
            "{}{}{routes}",
            service("ws", &[ws], &format!("connect_attempts = {}", 1 + i % 3)),
            service("other", &[other], "")
        )
    };
    let (app, addr) = start(&version(0)).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut byte))
            .await
            .unwrap()
            .unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for i in 1..=100 {
        app.apply(&config(&version(i))).await.unwrap();
        let msg = format!("frame {i}");
        s.write_all(msg.as_bytes()).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, msg.as_bytes());
    }
}

/// An h2c (HTTP/2 without TLS) backend that answers like a gRPC server: a body, then trailers.
async fn grpc_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let te = req.headers().get("te").cloned();
                    let version = format!("{:?}", req.version());
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = Full::new(Bytes::from_static(b"\0\0\0\0\x02hi"))
                        .with_trailers(async move { Some(Ok::<_, Infallible>(trailers)) });
                    let mut resp = Response::new(body);
                    resp.headers_mut().insert(
                        "content-type",
                        http::HeaderValue::from_static("application/grpc"),
                    );
                    resp.headers_mut()
                        .insert("x-seen-version", version.parse().unwrap());
                    if let Some(te) = te {
                        resp.headers_mut().insert("x-seen-te", te);
                    }
                    Ok::<_, Infallible>(resp)
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(TokioIo::new(socket), svc)
                        .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn grpc_over_h2c_passes_trailers_end_to_end() {
    let grpc = grpc_backend().await;
    let body = format!(
        "{}[[routes]]\nservice = \"grpc\"\n",
        service("grpc", &[grpc], "upstream_protocol = \"h2c\"")
    );
    let (_app, addr) = start(&body).await;
    // h2 with prior knowledge on the plain listener, like a gRPC client.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = Request::post("http://grpc.test/pkg.Svc/Call")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x00")))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-seen-version"],
        "HTTP/2.0",
        "the endpoint was spoken to in h2c"
    );
    assert_eq!(
        resp.headers()["x-seen-te"],
        "trailers",
        "gRPC needs TE: trailers"
    );
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers arrive");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(&collected.to_bytes()[..], b"\0\0\0\0\x02hi");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"a\"\n",
        service("a", &[a], "")
    ))
    .await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /upload HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 25];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let mut out = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("a POST /upload 5"),
        "{text}"
    );
}

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

/// A TLS backend (self-signed for 127.0.0.1 and backend.internal); returns its address and the
/// PEM of its certificate (to trust it).
async fn tls_backend(dir: &std::path::Path) -> (SocketAddr, std::path::PathBuf) {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let generated = rcgen::generate_simple_self_signed(vec![
        "backend.internal".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .unwrap();
    let ca = dir.join("backend.pem");
    std::fs::write(&ca, generated.cert.pem()).unwrap();
    let cert = CertificateDer::from_pem_slice(generated.cert.pem().as_bytes()).unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(generated.signing_key.serialize_pem().as_bytes()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().unwrap_or("-").to_owned();
                let svc = service_fn(move |_req| {
                    let body = format!("tls backend, sni {sni}");
                    async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ca)
}

#[tokio::test]
async fn https_upstreams_are_verified_with_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, ca) = tls_backend(dir.path()).await;
    let wrong_ca = dir.path().join("wrong.pem");
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    std::fs::write(&wrong_ca, other.cert.pem()).unwrap();
    let https = |name: &str, extra: String| {
        service(
            name,
            &[backend],
            &format!("upstream_protocol = \"https\"\n{extra}"),
        )
    };
    let body = format!(
        "{}{}{}[[routes]]\nhost = \"ip.test\"\nservice = \"by-ip\"\n\
         [[routes]]\nhost = \"sni.test\"\nservice = \"by-sni\"\n[[routes]]\nhost = \"bad.test\"\nservice = \"bad-ca\"\n",
        https("by-ip", format!("upstream_ca = \"{}\"", ca.display())),
        https(
            "by-sni",
            format!(
                "upstream_ca = \"{}\"\nupstream_sni = \"backend.internal\"",
                ca.display()
            )
        ),
        https(
            "bad-ca",
            format!(
                "upstream_ca = \"{}\"\nconnect_attempts = 1",
                wrong_ca.display()
            )
        ),
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "ip.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni -"),
        "verified against the IP SAN, no SNI sent"
    );
    let (status, _, text) = get(addr, "sni.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "tls backend, sni backend.internal")
    );
    assert_eq!(
        get(addr, "bad.test", "/").await.0,
        502,
        "a certificate the CA did not sign is refused"
    );
}

#[test]
fn https_upstreams_need_a_ca() {
    let text = "[[services]]\nname = \"s\"\nupstream_protocol = \"https\"\n[[services.endpoints]]\naddress = \"127.0.0.1:1\"\n";
    let err = Config::parse(text, "t").unwrap_err().to_string();
    assert!(
        err.contains("services[0].upstream_ca: upstream_protocol \"https\" needs a CA file"),
        "{err}"
    );
}

#[tokio::test]
async fn an_endpoint_stays_busy_until_its_response_body_ends() {
    // A raw backend that sends headers and half the body, then waits to be told to finish.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n01234")
            .await
            .unwrap();
        let _ = finish_rx.await;
        s.write_all(b"56789").await.unwrap();
        let _ = s.read(&mut buf).await;
    });
    let (app, addr) = start(&format!(
        "{}[[routes]]\nservice = \"slow\"\n",
        service("slow", &[backend], "")
    ))
    .await;
    let active = || async {
        let (_, table) = common::admin_get(app.admin_addr(), "/debug/table").await;
        let table: serde_json::Value = serde_json::from_str(&table).unwrap();
        let svc = table["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "slow")
            .cloned()
            .unwrap();
        svc["endpoints"][0]["active"].as_u64().unwrap()
    };
    let mut c = Client::connect(addr).await;
    let req = Request::get("/")
        .header("host", "x")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), c.0.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(active().await, 1, "headers arrived, body still streaming");
    finish_tx.send(()).unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"0123456789");
    let mut idle = false;
    for _ in 0..50 {
        if active().await == 0 {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(idle, "the endpoint is released once the body ended");
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

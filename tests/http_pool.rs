//! The HTTP router's keep-alive pool to plain HTTP/1.1 endpoints, end to end: requests from
//! many client connections share few upstream connections, a response the client abandoned
//! never leaves its connection in the pool, and HEAD and bodiless answers give theirs back.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, service, start};
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend counting its connections. `/big` streams 64 chunks of 16 KiB, 10 ms apart;
/// `/empty` answers 204; anything else answers "small".
async fn counting_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let body = match req.uri().path() {
                        "/big" => {
                            http_body_util::Either::Left(StreamBody::new(Box::pin(slow_chunks())))
                        }
                        "/empty" => {
                            let resp = Response::builder()
                                .status(204)
                                .body(http_body_util::Either::Right(http_body_util::Full::new(
                                    Bytes::new(),
                                )))
                                .unwrap();
                            return Ok::<_, Infallible>(resp);
                        }
                        _ => http_body_util::Either::Right(http_body_util::Full::new(
                            Bytes::from_static(b"small"),
                        )),
                    };
                    Ok::<_, Infallible>(Response::new(body))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// 64 chunks of 16 KiB, 10 ms apart.
fn slow_chunks() -> impl futures::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send {
    futures::stream::unfold(64, |left| async move {
        if left == 0 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let chunk = Frame::data(Bytes::from(vec![b'x'; 16 * 1024]));
        Some((Ok(chunk), left - 1))
    })
}

fn config(backend: SocketAddr) -> String {
    format!(
        "{}[[routes]]\nhost = \"app.test\"\nservice = \"app\"\n",
        service("app", &[backend], "")
    )
}

#[tokio::test]
async fn client_connections_share_one_upstream_connection() {
    let (backend, accepted) = counting_backend().await;
    let (_app, addr) = start(&config(backend)).await;
    for _ in 0..5 {
        let mut client = Client::connect(addr).await;
        for path in ["/a", "/empty", "/b"] {
            let (code, _, body) = client.get("app.test", path).await;
            assert!(code == 200 && body == "small" || code == 204 && body.is_empty());
        }
        let head = Request::head("/c")
            .header("host", "app.test")
            .body(http_body_util::Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(client.send(head).await.0, 200);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "20 sequential requests");
}

#[tokio::test]
async fn an_abandoned_download_does_not_leave_its_connection_in_the_pool() {
    let (backend, accepted) = counting_backend().await;
    let (_app, addr) = start(&config(backend)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /big HTTP/1.1\r\nhost: app.test\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // The client goes away mid-body. The proxy must not lend that upstream connection out
    // again (its body closes it instead; hyper would also refuse it as not ready).
    drop(stream);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The next request must get its own answer, not the rest of the download.
    let mut client = Client::connect(addr).await;
    for _ in 0..3 {
        let (code, _, body) = client.get("app.test", "/").await;
        assert_eq!((code, body.as_str()), (200, "small"));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

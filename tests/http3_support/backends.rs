//! Backends for the HTTP/3 tests: an h2c echo (body and trailers back as they came) and a
//! slow HTTP/1.1 one that counts the requests it holds at once.
#![allow(dead_code, unreachable_pub, missing_docs)]

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// An h2c backend answering each request with its own body and trailers, streamed back, and
/// the method and path it saw in `x-seen`.
pub async fn echo_h2c() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                    let seen = format!("{} {}", req.method(), req.uri().path());
                    let resp = Response::builder()
                        .header("x-seen", seen)
                        .body(req.into_body())
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

/// Requests a [`slow`] backend holds now, and the most it held at once.
#[derive(Default)]
pub struct Held {
    pub now: AtomicUsize,
    pub most: AtomicUsize,
}

/// An HTTP/1.1 backend that answers "slow" after `delay`, counting what it holds at once.
pub async fn slow(delay: Duration) -> (SocketAddr, Arc<Held>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = Arc::new(Held::default());
    let counted = Arc::clone(&held);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let held = Arc::clone(&counted);
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    let held = Arc::clone(&held);
                    async move {
                        let now = held.now.fetch_add(1, Ordering::SeqCst) + 1;
                        held.most.fetch_max(now, Ordering::SeqCst);
                        tokio::time::sleep(delay).await;
                        held.now.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"slow"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    (addr, held)
}

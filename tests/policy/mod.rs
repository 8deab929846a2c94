//! Raw HTTP/1.1 backends for the route-policy tests (retries, timeouts, mirroring): each
//! counts the requests it reads, keeps their heads, and answers as told.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How a raw backend answers each request.
#[derive(Clone, Copy)]
pub enum Answer {
    /// This status, with a body naming the backend.
    Status(u16),
    /// 200 after this long.
    After(Duration),
    /// Reads the request and never answers.
    Never,
}

/// What a raw backend saw.
#[derive(Default)]
pub struct Seen {
    /// Requests read.
    pub requests: AtomicUsize,
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Request heads, in order.
    pub heads: Mutex<Vec<String>>,
    /// Request bodies (by `content-length`), in order.
    pub bodies: Mutex<Vec<Vec<u8>>>,
}

impl Seen {
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// A keep-alive backend named `name` answering requests (bodiless or with a
/// `content-length`) as `answer` says.
pub async fn raw_backend(name: &'static str, answer: Answer) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            state.connections.fetch_add(1, Ordering::SeqCst);
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head =
                        String::from_utf8_lossy(&buf.drain(..end).collect::<Vec<_>>()).into_owned();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < length {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..length).collect();
                    state.bodies.lock().unwrap().push(body);
                    state.heads.lock().unwrap().push(head);
                    state.requests.fetch_add(1, Ordering::SeqCst);
                    let status = match answer {
                        Answer::Status(s) => s,
                        Answer::After(d) => {
                            tokio::time::sleep(d).await;
                            200
                        }
                        Answer::Never => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        }
                    };
                    let body = format!("{name} {status}");
                    let out = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(out.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// An h2c (HTTP/2 without TLS) backend answering every request `status` with a body naming
/// it; counts requests in `requests`.
pub async fn h2c_backend(name: &'static str, status: u16) -> (SocketAddr, Arc<Seen>) {
    use http_body_util::{BodyExt, Full};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let state = Arc::clone(&state);
                        async move {
                            let _ = req.into_body().collect().await;
                            state.requests.fetch_add(1, Ordering::SeqCst);
                            let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(
                                format!("{name} {status}"),
                            )));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                        .await;
            });
        }
    });
    (addr, seen)
}

/// An HTTP/2 (prior knowledge) client connection to `addr`.
pub async fn h2_client(
    addr: SocketAddr,
) -> hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    send
}

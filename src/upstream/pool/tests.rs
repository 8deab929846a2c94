//! The pool against a real backend on loopback that counts its connections.

use super::*;
use http_body_util::{BodyExt, Empty};
use std::sync::atomic::AtomicUsize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test backend does after answering a request.
#[derive(Clone, Copy)]
enum After {
    KeepAlive,
    /// Closes the connection without announcing it (as an endpoint's idle timeout does).
    Close,
    /// Answers `101 Switching Protocols` and keeps the connection.
    Upgrade,
}

struct Backend {
    address: SocketAddr,
    accepted: Arc<AtomicUsize>,
    /// Connections the proxy side closed.
    closed: Arc<AtomicUsize>,
}

async fn backend(after: After) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (a, c) = (Arc::clone(&accepted), Arc::clone(&closed));
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            let c = Arc::clone(&c);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => {
                            c.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let reply: &[u8] = match after {
                            After::Upgrade => b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n",
                            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        };
                        stream.write_all(reply).await.unwrap();
                        if let After::Close = after {
                            return;
                        }
                    }
                }
            });
        }
    });
    Backend {
        address,
        accepted,
        closed,
    }
}

fn request() -> Request<UpstreamBody> {
    let body = Empty::new().map_err(|never| match never {}).boxed();
    Request::builder()
        .uri("/")
        .header("host", "app.test")
        .body(body)
        .unwrap()
}

/// Sends one request, reads the whole body and gives the connection back.
async fn exchange(pool: &Pool, address: SocketAddr) {
    let (response, pooled) = pool.send(address, request()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    pooled
        .expect("a plain response lends its connection")
        .release();
}

fn pool() -> Pool {
    Pool::new(Duration::from_secs(2), None)
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let b = backend(After::KeepAlive).await;
    let pool = pool();
    for _ in 0..5 {
        exchange(&pool, b.address).await;
    }
    assert_eq!(b.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_not_given_back_is_not_reused() {
    let b = backend(After::KeepAlive).await;
    let pool = pool();
    let (_response, pooled) = pool.send(b.address, request()).await.unwrap();
    drop(pooled);
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_endpoint_closed_is_replaced() {
    let b = backend(After::Close).await;
    let pool = pool();
    exchange(&pool, b.address).await;
    // Let the connection task see the endpoint's FIN.
    tokio::time::sleep(Duration::from_millis(50)).await;
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_connect_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    match pool().send(address, request()).await {
        Err(SendError::Connect(_)) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_upgraded_connection_is_not_lent_back() {
    let b = backend(After::Upgrade).await;
    let (response, pooled) = pool().send(b.address, request()).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(pooled.is_none());
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let b = backend(After::KeepAlive).await;
    let pool = Pool::with_limits(
        Duration::from_secs(2),
        None,
        Duration::from_millis(100),
        POOL_MAX_IDLE,
    );
    exchange(&pool, b.address).await;
    exchange(&pool, b.address).await;
    assert_eq!(b.closed.load(Ordering::SeqCst), 0);
    for _ in 0..100 {
        if b.closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        b.closed.load(Ordering::SeqCst),
        1,
        "idle connection not closed"
    );
    assert!(pool.inner.idle.is_empty());
    // The reaper stopped with the pool empty; the next connection starts it again.
    exchange(&pool, b.address).await;
    assert!(pool.inner.reaping.load(Ordering::Relaxed));
}

#[tokio::test]
async fn a_full_pool_closes_its_oldest_connection() {
    let b = backend(After::KeepAlive).await;
    const MAX: usize = 8;
    let pool = Pool::with_limits(Duration::from_secs(2), None, POOL_IDLE, MAX);
    let mut lent = Vec::new();
    for _ in 0..MAX + 1 {
        let (response, pooled) = pool.send(b.address, request()).await.unwrap();
        response.into_body().collect().await.unwrap();
        lent.push(pooled.unwrap());
    }
    for pooled in lent {
        pooled.release();
    }
    assert_eq!(pool.inner.idle.get(&b.address).unwrap().len(), MAX);
    for _ in 0..100 {
        if b.closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.closed.load(Ordering::SeqCst), 1);
}

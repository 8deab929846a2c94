//! The pool against a real backend on loopback that counts its connections.

use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame};
use std::sync::atomic::AtomicUsize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test backend does after answering a request.
#[derive(Clone, Copy)]
enum After {
    KeepAlive,
    /// Closes the connection 100 ms after answering (once it is pooled), without announcing
    /// it (as an endpoint's idle timeout does).
    CloseSoon,
    /// Answers a request with `Upgrade: test` by `101 Switching Protocols`, and keeps the
    /// connection.
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
                        let asks = buf[..end].windows(13).any(|w| w == b"upgrade: test");
                        buf.drain(..end + 4);
                        let reply: &[u8] = match after {
                            After::Upgrade if asks => b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n",
                            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                        };
                        stream.write_all(reply).await.unwrap();
                        if let After::CloseSoon = after {
                            tokio::time::sleep(Duration::from_millis(100)).await;
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

/// Sends one request and reads the whole body, which gives the connection back.
async fn exchange(pool: &Pool, address: SocketAddr) {
    let response = pool.send(address, request()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.body().is_lent(),
        "a plain response lends its connection"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
}

fn pool() -> Pool {
    Pool::new(Duration::from_secs(2), None)
}

/// A pool with its own idle timeout and cap.
fn pool_with(idle_timeout: Duration, max_idle: usize) -> Pool {
    Pool::with_limits(Duration::from_secs(2), None, idle_timeout, max_idle)
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
async fn a_body_dropped_before_its_end_closes_the_connection() {
    let b = backend(After::KeepAlive).await;
    let pool = pool();
    let response = pool.send(b.address, request()).await.unwrap();
    drop(response);
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(b.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_endpoint_closed_is_replaced() {
    let b = backend(After::CloseSoon).await;
    let pool = pool();
    exchange(&pool, b.address).await;
    assert_eq!(pool.inner.idle.get(&b.address).map(|i| i.len()), Some(1));
    // The endpoint closes the pooled connection; the next request finds out and reconnects.
    tokio::time::sleep(Duration::from_millis(300)).await;
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
async fn an_upgrade_gets_a_connection_of_its_own_and_switches() {
    let b = backend(After::Upgrade).await;
    let pool = pool();
    exchange(&pool, b.address).await; // an idle connection the upgrade must not take
    let mut request = request();
    let headers = request.headers_mut();
    headers.insert("connection", "upgrade".parse().unwrap());
    headers.insert("upgrade", "test".parse().unwrap());
    let mut response = pool.send(b.address, request).await.unwrap();
    assert_eq!(response.status(), 101);
    assert!(!response.body().is_lent());
    let upgraded = hyper::upgrade::on(&mut response).await;
    assert!(upgraded.is_ok(), "upgrade failed: {upgraded:?}");
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(pool.inner.idle.get(&b.address).unwrap().len(), 1);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_idle_timeout() {
    let b = backend(After::KeepAlive).await;
    let pool = pool_with(Duration::from_millis(100), POOL_MAX_IDLE);
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
    let pool = pool_with(POOL_IDLE, MAX);
    let mut lent = Vec::new();
    for _ in 0..MAX + 1 {
        let mut body = pool.send(b.address, request()).await.unwrap().into_body();
        // The one data frame; the body is then at its end, but not polled past it.
        assert!(body.frame().await.is_some());
        assert!(body.is_end_stream());
        lent.push(body);
    }
    assert!(pool.inner.idle.get(&b.address).is_none());
    drop(lent);
    assert_eq!(pool.inner.idle.get(&b.address).unwrap().len(), MAX);
    for _ in 0..100 {
        if b.closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_reaper_drops_idle_connections_the_endpoint_closed() {
    let b = backend(After::CloseSoon).await;
    // Checked every 500 ms; the idle timeout itself is not reached within the test.
    let pool = pool_with(Duration::from_millis(2500), POOL_MAX_IDLE);
    exchange(&pool, b.address).await;
    assert_eq!(pool.inner.idle.get(&b.address).map(|i| i.len()), Some(1));
    for _ in 0..100 {
        if pool.inner.idle.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("a connection the endpoint closed is still pooled");
}

#[tokio::test]
async fn a_connection_still_sending_its_request_body_is_not_pooled() {
    let b = backend(After::KeepAlive).await;
    let pool = pool();
    // The backend answers at the end of the head; the request body never ends.
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Frame<Bytes>, BoxError>>();
    tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"part"))))
        .unwrap();
    let body = http_body_util::StreamBody::new(rx).boxed();
    let request = Request::post("/")
        .header("host", "app.test")
        .body(body)
        .unwrap();
    let response = pool.send(b.address, request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(pool.inner.idle.get(&b.address).map_or(0, |i| i.len()), 0);
    drop(tx);
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
}

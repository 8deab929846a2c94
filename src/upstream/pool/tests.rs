//! The pool against a real backend on loopback that counts its connections.

use super::*;
use crate::upstream::http::UpstreamBody;
use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame};
use std::sync::atomic::AtomicUsize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the test backend does after answering a request.
#[derive(Clone, Copy, PartialEq)]
enum After {
    KeepAlive,
    /// Closes the connection 100 ms after answering (once it is pooled), without announcing
    /// it (as an endpoint's idle timeout does).
    CloseSoon,
    /// Answers a request with `Upgrade: test` by `101 Switching Protocols` and then `early`,
    /// and keeps the connection.
    Upgrade,
    /// Answers the first request of a connection; closes at the second without answering
    /// (an endpoint whose idle timeout struck as the request arrived).
    CloseOnSecond,
    /// Answers `100 Continue`, then a chunked body with a trailer.
    ContinueChunked,
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
                let mut answered = 0;
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
                        if after == After::CloseOnSecond && answered == 1 {
                            return;
                        }
                        answered += 1;
                        let reply: &[u8] = match after {
                            After::Upgrade if asks => b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\nearly",
                            After::ContinueChunked => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-t: 1\r\n\r\n",
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

/// A request with `extra` fields and `body`, written as hyper's path writes one.
fn request_with(method: &Method, extra: &str, body: UpstreamBody) -> EncodeBody {
    let head = format!("{method} / HTTP/1.1\r\nhost: app.test\r\n{extra}");
    EncodeBody::new(head.into_bytes(), method, body)
}

fn empty() -> UpstreamBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// The status line's code and the 1xx codes seen, as `on_head` and `informational` report.
async fn send(
    pool: &Pool,
    address: SocketAddr,
    mut body: EncodeBody,
    idempotent: bool,
) -> Result<(u16, PoolBody), SendError> {
    let exchanged = pool
        .send(address, &mut body, false, idempotent, |r| r.status)
        .await?;
    let body = PoolBody::h1(
        exchanged.lease,
        exchanged.reply.framing,
        exchanged.reply.reusable,
    );
    Ok((exchanged.head, body))
}

/// Sends one GET; its status and body.
async fn get(pool: &Pool, address: SocketAddr) -> Result<(u16, PoolBody), SendError> {
    send(pool, address, request_with(&Method::GET, "", empty()), true).await
}

/// Sends one GET and reads the whole body, which gives the connection back.
async fn exchange(pool: &Pool, address: SocketAddr) {
    let (status, body) = get(pool, address).await.unwrap();
    assert_eq!(status, 200);
    let body = body.collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
}

fn pool() -> Pool {
    Pool::new(Duration::from_secs(2), None)
}

/// A pool with its own idle timeout and cap.
fn pool_with(idle_timeout: Duration, max_idle: usize) -> Pool {
    Pool::with_limits(Duration::from_secs(2), None, idle_timeout, max_idle)
}

fn idle(pool: &Pool, address: SocketAddr) -> usize {
    pool.inner.idle.get(&(0, address)).map_or(0, |i| i.len())
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
    let (_, body) = get(&pool, b.address).await.unwrap();
    drop(body);
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(b.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_the_endpoint_closed_is_replaced() {
    let b = backend(After::CloseSoon).await;
    let pool = pool();
    exchange(&pool, b.address).await;
    assert_eq!(idle(&pool, b.address), 1);
    // The endpoint closes the pooled connection; the next request finds out and reconnects.
    tokio::time::sleep(Duration::from_millis(300)).await;
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_idempotent_request_goes_out_again_when_a_reused_connection_closes_unanswered() {
    let b = backend(After::CloseOnSecond).await;
    let pool = pool();
    exchange(&pool, b.address).await;
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
    // A POST is not sent twice: the caller gets the error.
    exchange(&pool, b.address).await; // the second connection is now the pooled one
    let post = request_with(&Method::POST, "", empty());
    match send(&pool, b.address, post, false).await {
        Err(SendError::Exchange(ExchangeError::Closed)) => {}
        other => panic!(
            "expected a closed connection, got {:?}",
            other.map(|(s, _)| s)
        ),
    }
}

#[tokio::test]
async fn a_refused_connect_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    match get(&pool(), address).await {
        Err(SendError::Connect(_)) => {}
        other => panic!("expected a connect error, got {:?}", other.map(|(s, _)| s)),
    }
}

#[tokio::test]
async fn an_upgrade_keeps_its_connection_with_what_followed_the_101() {
    let b = backend(After::Upgrade).await;
    let pool = pool();
    exchange(&pool, b.address).await;
    let mut body = request_with(
        &Method::GET,
        "connection: upgrade\r\nupgrade: test\r\n",
        empty(),
    );
    let exchanged = pool
        .send(b.address, &mut body, false, true, |r| r.status)
        .await
        .unwrap();
    assert_eq!((exchanged.head, exchanged.reply.reusable), (101, false));
    let mut conn = exchanged.lease.conn;
    while conn.io.buf.len() < 5 {
        conn.io.fill().await.unwrap();
    }
    assert_eq!(&conn.io.buf[..], b"early");
    assert_eq!(
        idle(&pool, b.address),
        0,
        "the tunnel's connection is not pooled"
    );
}

#[tokio::test]
async fn informational_answers_are_skipped_and_chunked_bodies_keep_their_trailers() {
    let b = backend(After::ContinueChunked).await;
    let pool = pool();
    let (status, body) = get(&pool, b.address).await.unwrap();
    assert_eq!(status, 200);
    let collected = body.collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-t"], "1");
    assert_eq!(&collected.to_bytes()[..], b"ok");
    assert_eq!(idle(&pool, b.address), 1);
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
async fn an_idle_connection_gives_back_its_buffer_and_serves_again() {
    let b = backend(After::KeepAlive).await;
    // Looked at every 400 ms; the idle timeout itself is not reached within the test.
    let pool = pool_with(Duration::from_secs(2), POOL_MAX_IDLE);
    exchange(&pool, b.address).await;
    let capacity = || {
        let idle = pool.inner.idle.get(&(0, b.address)).unwrap();
        idle[0].conn.io.buf.capacity()
    };
    assert!(capacity() > 0);
    for _ in 0..100 {
        if capacity() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(capacity(), 0, "the idle connection kept its read buffer");
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_full_pool_closes_its_oldest_connection() {
    let b = backend(After::KeepAlive).await;
    const MAX: usize = 8;
    let pool = pool_with(POOL_IDLE, MAX);
    let mut lent = Vec::new();
    for _ in 0..MAX + 1 {
        let (_, mut body) = get(&pool, b.address).await.unwrap();
        // The one data frame; the body is then at its end, but not polled past it.
        assert!(body.frame().await.is_some());
        assert!(body.is_end_stream());
        lent.push(body);
    }
    assert_eq!(idle(&pool, b.address), 0);
    drop(lent);
    assert_eq!(idle(&pool, b.address), MAX);
    for _ in 0..100 {
        if b.closed.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.closed.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn after_a_burst_unused_connections_are_halved_at_each_look() {
    let b = backend(After::KeepAlive).await;
    // Looked at every second; the idle timeout (5 s) is not reached before the last check.
    let pool = pool_with(Duration::from_secs(5), POOL_MAX_IDLE);
    let mut lent = Vec::new();
    for _ in 0..8 {
        let (_, mut body) = get(&pool, b.address).await.unwrap();
        assert!(body.frame().await.is_some());
        lent.push(body);
    }
    drop(lent);
    let begun = std::time::Instant::now();
    assert_eq!(idle(&pool, b.address), 8);
    // 8 → 4 → 2: three looks at most, each a second apart.
    while idle(&pool, b.address) > 2 && begun.elapsed() < Duration::from_millis(4500) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = idle(&pool, b.address);
    assert!(
        (1..=2).contains(&left),
        "{left} idle connections after {:?}",
        begun.elapsed()
    );
    assert_eq!(b.closed.load(Ordering::SeqCst), 8 - left);
    // What is left still serves, without a new connection.
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 8);
}

#[tokio::test]
async fn the_reaper_drops_idle_connections_the_endpoint_closed() {
    let b = backend(After::CloseSoon).await;
    // Checked every 500 ms; the idle timeout itself is not reached within the test.
    let pool = pool_with(Duration::from_millis(2500), POOL_MAX_IDLE);
    exchange(&pool, b.address).await;
    assert_eq!(idle(&pool, b.address), 1);
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
    let (tx, rx) = futures::channel::mpsc::unbounded::<
        Result<Frame<Bytes>, crate::upstream::http::BoxError>,
    >();
    tx.unbounded_send(Ok(Frame::data(Bytes::from_static(b"part"))))
        .unwrap();
    let body = http_body_util::StreamBody::new(rx).boxed();
    let (status, body) = send(
        &pool,
        b.address,
        request_with(&Method::POST, "", body),
        false,
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let body = body.collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(idle(&pool, b.address), 0);
    drop(tx);
    exchange(&pool, b.address).await;
    assert_eq!(b.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn request_bodies_are_framed_by_their_size() {
    let head = |body: UpstreamBody, method: &Method| {
        let e = EncodeBody::new(b"X / HTTP/1.1\r\n".to_vec(), method, body);
        String::from_utf8_lossy(e.head()).into_owned()
    };
    assert_eq!(head(empty(), &Method::GET), "X / HTTP/1.1\r\n\r\n");
    assert_eq!(
        head(empty(), &Method::POST),
        "X / HTTP/1.1\r\ncontent-length: 0\r\n\r\n"
    );
    let full = http_body_util::Full::new(Bytes::from_static(b"abc"))
        .map_err(|never| match never {})
        .boxed();
    assert_eq!(
        head(full, &Method::PUT),
        "X / HTTP/1.1\r\ncontent-length: 3\r\n\r\n"
    );
    let (_tx, rx) = futures::channel::mpsc::unbounded::<
        Result<Frame<Bytes>, crate::upstream::http::BoxError>,
    >();
    let stream = http_body_util::StreamBody::new(rx).boxed();
    assert_eq!(
        head(stream, &Method::POST),
        "X / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n"
    );
}

//! Keep-alive HTTP/1.1 connections to a service's endpoints, pooled per endpoint address, and
//! the exchange of one request on one of them.
//!
//! Plain HTTP/1.1 is how most services are reached, so this path is built for speed. A
//! connection is a socket and its read buffer, spoken to with [`crate::http1`]: no task of its
//! own, no channel, no `HeaderMap` unless the router asks for one. The request that uses it
//! writes to it and reads its response head ([`exchange`]); the response body is read by the
//! router (relayed to an HTTP/1.1 client, or as hyper frames through [`PoolBody`]), and the
//! connection comes back here when the body has ended ([`Lease::release`]). A body that ends
//! early (the client went away) drops the connection instead.
//!
//! Connections are found by the data-plane worker and the endpoint's socket address (a cheap
//! hash, sharded map): with several workers (`crate::app::workers`) each worker reuses only the
//! connections it opened, whose sockets are registered with its own reactor, and two workers
//! seldom take the same shard's lock (their keys differ). Connections are
//! reused newest first (the warmest, least likely to have been closed by the endpoint). Before
//! reuse a connection is checked for a close by the endpoint; tokio's readiness tells that
//! without a system call in the common case. Idle ones are closed after [`POOL_IDLE`] by a
//! reaper task that runs while the pool holds any, and give back their read buffer to it
//! sooner. If a reused connection still turns out to
//! have been closed before any byte of an answer came, a request without a body and with an
//! idempotent method goes out again on a new connection (as Go's and hyper-util's clients do).

mod body;
mod exchange;

pub use body::{EncodeBody, PoolBody};
pub use exchange::{ExchangeError, Reply, RequestBody, SendFailure};

use crate::http1::head;
use crate::http1::io::Buffered;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle pooled connections are closed after this long (endpoints commonly time out at 60 s+).
pub const POOL_IDLE: Duration = Duration::from_secs(50);
/// Most idle connections kept per endpoint. Idle connections never outnumber the peak of
/// concurrent requests; the cap only stops a burst from leaving thousands open for
/// [`POOL_IDLE`]. It is set above the concurrency one router commonly sends to one endpoint
/// (Envoy's default connection limit per cluster is also 1,024): below that, every burst
/// would close connections only to open them again for the next.
pub const POOL_MAX_IDLE: usize = 1024;

/// One HTTP/1.1 connection to an endpoint.
#[derive(Debug)]
pub struct Connection {
    /// The socket and what was read from it.
    pub io: Buffered<TcpStream>,
    /// Whether it served a request before this one.
    reused: bool,
    /// Whether any byte of a response came during the current exchange.
    answered: bool,
}

impl Connection {
    /// Whether the endpoint may still be waiting for a request on it: nothing unread, and no
    /// close seen. Costs a system call only when the socket became readable since its last
    /// read.
    fn is_open(&mut self) -> bool {
        if !self.io.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.io.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// The idle connections of one client (one service, or one downstream connection when
/// PROXY headers are sent), by endpoint.
#[derive(Debug)]
pub struct Pool {
    inner: Arc<Inner>,
    connect_timeout: Duration,
    proxy_header: Option<Arc<[u8]>>,
}

#[derive(Debug)]
struct Inner {
    /// Oldest first: checkout takes from the back, the cap and the reaper drop the front.
    idle: DashMap<Key, VecDeque<Idle>, foldhash::fast::RandomState>,
    /// Whether a reaper task is running.
    reaping: AtomicBool,
    /// How long a connection may sit idle ([`POOL_IDLE`] but in tests).
    idle_timeout: Duration,
    /// Most idle connections per endpoint ([`POOL_MAX_IDLE`] but in tests).
    max_idle: usize,
}

/// Idle connections are kept per data-plane worker and endpoint address.
type Key = (usize, SocketAddr);

#[derive(Debug)]
struct Idle {
    conn: Box<Connection>,
    since: Instant,
}

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made (nothing was sent).
    #[error("{0}")]
    Connect(#[source] io::Error),
    /// The exchange failed after the request was (maybe) sent.
    #[error("{0}")]
    Exchange(#[source] ExchangeError),
}

/// A connection lent to one response: given back with [`Lease::release`] once its body has
/// been read to the end; dropped otherwise, which closes it.
#[derive(Debug)]
pub struct Lease {
    /// The connection, its read buffer at the start of the response body.
    pub conn: Box<Connection>,
    address: SocketAddr,
    /// The worker whose reactor the connection's socket is registered with.
    worker: usize,
    pool: Weak<Inner>,
}

/// A response head that arrived, and the connection it came on.
#[derive(Debug)]
pub struct Exchanged<R> {
    /// What the caller made of the head.
    pub head: R,
    /// Status, framing and whether the connection may be reused after the body.
    pub reply: Reply,
    /// The connection, lent until the body is read.
    pub lease: Lease,
}

impl Pool {
    /// An empty pool whose new connections are made within `connect_timeout` and start with
    /// `proxy_header`, if any.
    pub fn new(connect_timeout: Duration, proxy_header: Option<Arc<[u8]>>) -> Self {
        Self::with_limits(connect_timeout, proxy_header, POOL_IDLE, POOL_MAX_IDLE)
    }

    fn with_limits(
        connect_timeout: Duration,
        proxy_header: Option<Arc<[u8]>>,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        Pool {
            inner: Arc::new(Inner {
                idle: DashMap::default(),
                reaping: AtomicBool::new(false),
                idle_timeout,
                max_idle,
            }),
            connect_timeout,
            proxy_header,
        }
    }

    /// Sends the request `body` writes to `address`, on an idle connection or a new one, and
    /// waits for the final response head, which `on_head` reads (1xx heads go to
    /// `body.informational`). `head_request` says whether it is a HEAD request (its response
    /// has no body); `idempotent` whether it may be sent again after a reused connection
    /// closed without answering.
    pub async fn send<B, R>(
        &self,
        address: SocketAddr,
        body: &mut B,
        head_request: bool,
        idempotent: bool,
        mut on_head: impl FnMut(&head::Response<'_>) -> R,
    ) -> Result<Exchanged<R>, SendError>
    where
        B: RequestBody,
    {
        let worker = crate::app::workers::current();
        let mut conn = match self.checkout((worker, address)) {
            Some(conn) => conn,
            None => Box::pin(self.connect(address)).await?,
        };
        loop {
            match exchange::exchange(&mut conn, body, head_request, &mut on_head).await {
                Ok((head, reply)) => {
                    let lease = Lease {
                        conn,
                        address,
                        worker,
                        pool: Arc::downgrade(&self.inner),
                    };
                    return Ok(Exchanged { head, reply, lease });
                }
                Err(ExchangeError::Closed) if conn.reused && idempotent && body.can_resend() => {
                    tracing::debug!(%address, "pooled connection was closed; sending again");
                    body.rewind();
                    conn = Box::pin(self.connect(address)).await?;
                }
                Err(error) => return Err(SendError::Exchange(error)),
            }
        }
    }

    /// The newest idle connection of this worker to this address that is still open.
    fn checkout(&self, key: Key) -> Option<Box<Connection>> {
        let mut idle = self.inner.idle.get_mut(&key)?;
        while let Some(mut c) = idle.pop_back() {
            if c.since.elapsed() <= self.inner.idle_timeout && c.conn.is_open() {
                return Some(c.conn);
            }
        }
        None
    }

    /// A new connection to `address`.
    async fn connect(&self, address: SocketAddr) -> Result<Box<Connection>, SendError> {
        let header = self.proxy_header.as_deref();
        let stream = super::tcp::open(address, self.connect_timeout, header)
            .await
            .map_err(SendError::Connect)?;
        Ok(Box::new(Connection {
            io: Buffered::new(stream),
            reused: false,
            answered: false,
        }))
    }
}

impl Lease {
    /// Returns the connection to its pool, if the pool still exists, the exchange left it
    /// ready for another request (`reusable`) and the pool has room (else its oldest idle
    /// connection is closed).
    pub fn release(self, reusable: bool) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut conn = self.conn;
        if !reusable || !conn.io.buf.is_empty() {
            return;
        }
        conn.reused = true;
        let mut idle = pool.idle.entry((self.worker, self.address)).or_default();
        if idle.len() >= pool.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
        drop(idle);
        start_reaper(&pool);
    }
}

/// Starts the reaper unless it is running.
fn start_reaper(pool: &Arc<Inner>) {
    if !pool.reaping.swap(true, Ordering::Relaxed) {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(reap(Arc::downgrade(pool)))),
            // Outside a runtime (shutting down): nothing will be reused anyway.
            Err(_) => pool.reaping.store(false, Ordering::Relaxed),
        }
    }
}

/// How often the reaper looks at the idle connections (or five times per idle timeout, if
/// that is more often).
const SWEEP: Duration = Duration::from_secs(2);

/// Closes connections idle too long or closed by their endpoint, and frees the read buffers of
/// the others that have been idle since the last look (the first read after a checkout takes
/// one again, see [`Buffered`]): after a burst, hundreds of idle connections would otherwise
/// keep 8 KiB each for [`POOL_IDLE`]. Of the connections unused since the last look, half
/// are closed at each look (as HAProxy purges its idle connections): after a burst the pool
/// shrinks back to what the traffic uses within a few looks, instead of holding hundreds of
/// connections (and the endpoints' worker slots) for [`POOL_IDLE`]; the last one waits for
/// the idle timeout. A connection in steady use is never among them, since checkout takes
/// the newest. Looks every [`SWEEP`]; ends when the pool is gone or empty.
async fn reap(pool: Weak<Inner>) {
    loop {
        let Some(every) = pool.upgrade().map(|p| (p.idle_timeout / 5).min(SWEEP)) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let timeout = pool.idle_timeout;
        pool.idle.retain(|_, idle| {
            // Unused since the last look: idle for a whole sweep (the oldest, at the front).
            let unused = idle.iter().take_while(|c| c.since.elapsed() >= every);
            idle.drain(..unused.count() / 2);
            idle.retain_mut(|c| {
                let idle_for = c.since.elapsed();
                if idle_for >= every {
                    c.conn.io.release();
                }
                idle_for <= timeout && c.conn.is_open()
            });
            !idle.is_empty()
        });
        if pool.idle.is_empty() {
            pool.reaping.store(false, Ordering::Relaxed);
            // A connection released between the check and the store restarts the reaper.
            if pool.idle.is_empty() || pool.reaping.swap(true, Ordering::Relaxed) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;

//! Keep-alive HTTP/1.1 connections to a service's endpoints, pooled per endpoint address.
//!
//! Plain HTTP/1.1 is how most services are reached, so this path is built for speed:
//! hyper's connection-level client (`hyper::client::conn::http1`) with a pool of our own
//! instead of hyper-util's general one. That pool keys connections by `scheme://authority`
//! (hashed with SipHash on every checkout and return), hands each request to a pool task over
//! a channel, and spawns a task per response to notice when the connection is free again.
//! Here a connection is found by the endpoint's socket address (a cheap hash, sharded map),
//! it has no task of its own (the request that uses it drives it, see [`lease`]), and it
//! comes back to the pool when the response body ends ([`PoolBody`], which the router streams
//! to the client). A body that is dropped before its end closes the connection instead.
//!
//! Idle connections are reused newest first (the warmest, least likely to have been closed by
//! the endpoint) and closed after [`POOL_IDLE`] without use by a reaper task that runs while
//! the pool holds any. A pooled connection the endpoint closed meanwhile is noticed before the
//! request is sent, or, in the race where it closes during the send, hyper hands the unsent
//! request back and it goes out on a fresh connection (as hyper-util's client does).

mod lease;

pub use lease::PoolBody;

use super::http::{BoxError, UpstreamBody};
use dashmap::DashMap;
use http::{Method, Request, Response};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use lease::Conn;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Idle pooled connections are closed after this long (endpoints commonly time out at 60 s+).
pub const POOL_IDLE: Duration = Duration::from_secs(50);
/// Most idle connections kept per endpoint. Idle connections never outnumber the peak of
/// concurrent requests; the cap only stops a burst from leaving thousands open for
/// [`POOL_IDLE`]. It is set above the concurrency one router commonly sends to one endpoint
/// (Envoy's default connection limit per cluster is also 1,024): below that, every burst
/// would close connections only to open them again for the next.
pub const POOL_MAX_IDLE: usize = 1024;

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
    idle: DashMap<SocketAddr, VecDeque<Idle>, foldhash::fast::RandomState>,
    /// Whether a reaper task is running.
    reaping: AtomicBool,
    /// How long a connection may sit idle ([`POOL_IDLE`] but in tests).
    idle_timeout: Duration,
    /// Most idle connections per endpoint ([`POOL_MAX_IDLE`] but in tests).
    max_idle: usize,
}

#[derive(Debug)]
struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

/// Why a request failed on this path.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be made (nothing was sent).
    Connect(BoxError),
    /// The exchange failed after the request was (maybe) sent.
    Request(BoxError),
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

    /// Sends `request` (origin-form URI, `Host` set) to `address` on an idle connection, or a
    /// new one, and waits for the response headers. The response body brings the connection
    /// back to the pool when it ends.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of the request in its state"
    )]
    pub fn send(
        &self,
        address: SocketAddr,
        mut request: Request<UpstreamBody>,
    ) -> impl Future<Output = Result<Response<PoolBody>, SendError>> + '_ {
        async move {
            if asks_upgrade(&request) {
                return Box::pin(self.send_upgrade(address, request)).await;
            }
            while let Some(mut conn) = self.checkout(address) {
                match conn.exchange(request).await {
                    Ok(response) => return Ok(self.lend(conn, address, response)),
                    Err(mut error) => match error.take_message() {
                        // The connection closed before the request went out: try another.
                        Some(unsent) => request = unsent,
                        None => return Err(SendError::Request(error.into_error().into())),
                    },
                }
            }
            // Boxed: connecting is rare next to reuse, and its state would make every request's
            // future larger.
            let (sender, io) = Box::pin(self.connect(address))
                .await
                .map_err(SendError::Connect)?;
            let mut conn = Conn::new(sender, io);
            match conn.exchange(request).await {
                Ok(response) => Ok(self.lend(conn, address, response)),
                Err(error) => Err(SendError::Request(error.into_error().into())),
            }
        }
    }

    /// A request that asks for a protocol switch goes on a new connection with a task of its
    /// own: hyper completes an upgrade only there. It is not pooled afterwards.
    async fn send_upgrade(
        &self,
        address: SocketAddr,
        request: Request<UpstreamBody>,
    ) -> Result<Response<PoolBody>, SendError> {
        let (mut sender, io) = self.connect(address).await.map_err(SendError::Connect)?;
        tokio::spawn(async move {
            if let Err(error) = io.with_upgrades().await {
                tracing::debug!(%address, %error, "upstream connection ended");
            }
        });
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| SendError::Request(e.into()))?;
        Ok(response.map(PoolBody::unpooled))
    }

    fn lend(
        &self,
        conn: Box<Conn>,
        address: SocketAddr,
        response: Response<hyper::body::Incoming>,
    ) -> Response<PoolBody> {
        let pool = Arc::downgrade(&self.inner);
        response.map(|body| PoolBody::lent(body, conn, address, pool))
    }

    /// The newest idle connection to `address` that is open and done with its last exchange
    /// (as far as is known without polling it: the exchange polls it first).
    fn checkout(&self, address: SocketAddr) -> Option<Box<Conn>> {
        let mut idle = self.inner.idle.get_mut(&address)?;
        while let Some(c) = idle.pop_back() {
            if c.conn.is_ready() && c.since.elapsed() <= self.inner.idle_timeout {
                return Some(c.conn);
            }
        }
        None
    }

    /// A new connection to `address`.
    async fn connect(
        &self,
        address: SocketAddr,
    ) -> Result<(SendRequest<UpstreamBody>, lease::Io), BoxError> {
        let header = self.proxy_header.as_deref();
        let stream = super::tcp::open(address, self.connect_timeout, header).await?;
        Ok(http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?)
    }
}

/// Whether `request` asks the endpoint to switch protocols (WebSocket and the like).
fn asks_upgrade(request: &Request<UpstreamBody>) -> bool {
    request.method() == Method::CONNECT || request.headers().contains_key(http::header::UPGRADE)
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

/// Closes connections idle too long or closed by their endpoint, checking a few times per
/// idle timeout; ends when the pool is gone or empty.
async fn reap(pool: std::sync::Weak<Inner>) {
    loop {
        let Some(every) = pool.upgrade().map(|p| p.idle_timeout / 5) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let timeout = pool.idle_timeout;
        pool.idle.retain(|_, idle| {
            idle.retain_mut(|c| c.since.elapsed() <= timeout && c.conn.check());
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

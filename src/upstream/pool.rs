//! Keep-alive HTTP/1.1 connections to a service's endpoints, pooled per endpoint address.
//!
//! Plain HTTP/1.1 is how most services are reached, so this path is built for speed:
//! hyper's connection-level client (`hyper::client::conn::http1`) with a pool of our own
//! instead of hyper-util's general one. That pool keys connections by `scheme://authority`
//! (hashed with SipHash on every checkout and return), hands each request to a pool task over
//! a channel, and spawns a task per response to notice when the connection is free again.
//! Here a connection is found by the endpoint's socket address (a cheap hash, sharded map), the
//! request goes straight to the connection's sender, and the sender comes back to the pool
//! when the response body ends ([`Pooled`], held by the body the router streams to the
//! client). A body that is dropped before its end closes the connection instead.
//!
//! Idle connections are reused newest first (the warmest, least likely to have been closed by
//! the endpoint) and closed after [`POOL_IDLE`] without use by a reaper task that runs while
//! the pool holds any. A pooled connection the endpoint closed meanwhile is noticed before the
//! request is sent, or, in the race where it closes during the send, hyper hands the unsent
//! request back and it goes out on a fresh connection (as hyper-util's client does).

use super::http::{BoxError, UpstreamBody};
use dashmap::DashMap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
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
    sender: SendRequest<UpstreamBody>,
    since: Instant,
}

/// A connection lent to one request; give it back with [`Pooled::release`] once the response
/// body has ended.
#[derive(Debug)]
pub struct Pooled {
    sender: SendRequest<UpstreamBody>,
    address: SocketAddr,
    pool: Weak<Inner>,
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
    /// new one, and waits for the response headers. The connection comes back with the
    /// response unless it was upgraded.
    #[allow(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of the request in its state"
    )]
    pub fn send(
        &self,
        address: SocketAddr,
        mut request: Request<UpstreamBody>,
    ) -> impl Future<Output = Result<(Response<Incoming>, Option<Pooled>), SendError>> + '_ {
        async move {
            while let Some(mut sender) = self.checkout(address).await {
                match sender.try_send_request(request).await {
                    Ok(response) => return Ok(self.lend(sender, address, response)),
                    Err(mut error) => match error.take_message() {
                        // The connection closed before the request went out: try another.
                        Some(unsent) => request = unsent,
                        None => return Err(SendError::Request(error.into_error().into())),
                    },
                }
            }
            // Boxed: connecting is rare next to reuse, and its state would make every request's
            // future larger.
            let mut sender = Box::pin(self.connect(address))
                .await
                .map_err(SendError::Connect)?;
            match sender.send_request(request).await {
                Ok(response) => Ok(self.lend(sender, address, response)),
                Err(error) => Err(SendError::Request(error.into())),
            }
        }
    }

    fn lend(
        &self,
        sender: SendRequest<UpstreamBody>,
        address: SocketAddr,
        response: Response<Incoming>,
    ) -> (Response<Incoming>, Option<Pooled>) {
        let reusable = response.status() != http::StatusCode::SWITCHING_PROTOCOLS;
        let pooled = reusable.then(|| Pooled {
            sender,
            address,
            pool: Arc::downgrade(&self.inner),
        });
        (response, pooled)
    }

    /// The newest usable idle connection to `address`, ready for a request.
    async fn checkout(&self, address: SocketAddr) -> Option<SendRequest<UpstreamBody>> {
        loop {
            let idle = self.inner.idle.get_mut(&address)?.pop_back()?;
            if idle.sender.is_closed() || idle.since.elapsed() > self.inner.idle_timeout {
                continue;
            }
            let mut sender = idle.sender;
            // Given back when the response body ended, the connection may still be finishing
            // that response; it is ready as soon as its task has run.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// A new connection to `address`, its task spawned.
    async fn connect(&self, address: SocketAddr) -> Result<SendRequest<UpstreamBody>, BoxError> {
        let header = self.proxy_header.as_deref();
        let stream = super::tcp::open(address, self.connect_timeout, header).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%address, %error, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

impl Pooled {
    /// Returns the connection to its pool (if the pool still exists and has room).
    pub fn release(self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        if self.sender.is_closed() {
            return;
        }
        let mut idle = pool.idle.entry(self.address).or_default();
        if idle.len() >= pool.max_idle {
            idle.pop_front();
        }
        idle.push_back(Idle {
            sender: self.sender,
            since: Instant::now(),
        });
        drop(idle);
        if !pool.reaping.swap(true, Ordering::Relaxed) {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(reap(Arc::downgrade(&pool)))),
                // Outside a runtime (shutting down): nothing will be reused anyway.
                Err(_) => pool.reaping.store(false, Ordering::Relaxed),
            }
        }
    }
}

/// Closes connections idle too long, checking a few times per idle timeout; ends when the
/// pool is gone or empty.
async fn reap(pool: Weak<Inner>) {
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
            idle.retain(|c| c.since.elapsed() <= timeout && !c.sender.is_closed());
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

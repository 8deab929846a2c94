//! Serving a connection with hyper: HTTP/2 chosen by ALPN, HTTP/2 opened with its preface, and
//! HTTP/1.x once the fast path hands a request over. One builder with the listener's limits,
//! the HTTP/2 deadlines hyper lacks ([`super::super::h2_watch`]) and the drain.

use super::super::conn::Conn;
use super::super::h2_watch::Watch;
use super::super::proxy;
use super::super::record::ResponseBody;
use crate::config::ListenerConfig;
use crate::router::Lifecycle;
use crate::router::cancel::Cancelled;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// Reset streams a client may leave pending before the connection is closed (CVE-2023-44487).
const MAX_PENDING_RESETS: usize = 20;

/// Serves a connection that chose HTTP/2 by ALPN. hyper runs each stream as a task of its
/// own and moves the handler's state (about 1.7 KiB) into it twice, then once more when it
/// finishes; a boxed handler is moved as one pointer, for one allocation.
pub(super) async fn h2<S>(io: S, conn: Arc<Conn>, config: &ListenerConfig, life: &Lifecycle)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handler = move |req| Box::pin(proxy::handle(req, Arc::clone(&conn), None));
    serve_with(io, handler, config, life, true).await;
}

/// Serves a connection with hyper: HTTP/1.x, or HTTP/2 when it opens with the preface, under
/// the HTTP/2 deadlines of [`super::h2_watch`]: the stream hyper reads is watched, each request is
/// counted until its response body is over, and a watchdog runs beside the connection. Over
/// HTTP/1.x, `h1_keep_alive` says whether the connection may outlast the request (only for an
/// upgrade, see [`super::http`]).
pub(super) async fn serve_with<S, H, F>(
    io: S,
    handler: H,
    config: &ListenerConfig,
    life: &Lifecycle,
    h1_keep_alive: bool,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + 'static,
    F: Future<Output = Result<Response<ResponseBody>, Infallible>> + Send + 'static,
{
    let watch = Watch::new();
    let io = TokioIo::new(watch.stream(io));
    let counted = watch.clone();
    let service = service_fn(move |req| counted.count(handler(req)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes)
        .keep_alive(h1_keep_alive);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(config.h2_keepalive_interval)
        .keep_alive_timeout(config.h2_keepalive_timeout)
        // WebSockets over HTTP/2 (RFC 8441): see `upgrade::connect`.
        .enable_connect_protocol();
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    let mut watchdog = watch.watchdog(config.header_read_timeout, config.h2_idle_timeout);
    // This select is polled on every wakeup of the connection, so what it waits on beside the
    // connection is cheap to poll again: one token (through `Cancelled`) and the watchdog (two
    // atomic loads and a waker comparison while nothing is due). `force_close` is cancelled at the drain deadline, always after every
    // listener's `stop_accepting`, so it is watched only once the connection is shutting down.
    let why = tokio::select! {
        biased;
        result = connection.as_mut() => return log_end(result, config),
        () = Cancelled::new(&life.stop_accepting) => None,
        expired = watchdog.expired() => Some(expired),
    };
    if let Some(why) = why {
        tracing::debug!(listener = %config.name, reason = why.reason(), "http/2 connection shutting down");
    }
    connection.as_mut().graceful_shutdown();
    watchdog.after_goaway(why);
    tokio::select! {
        biased;
        result = connection.as_mut() => log_end(result, config),
        () = life.force_close.cancelled() => {}
        expired = watchdog.expired() => {
            tracing::debug!(listener = %config.name, reason = expired.reason(), "http/2 connection closed");
        }
    }
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>, config: &ListenerConfig) {
    if let Err(error) = result {
        tracing::debug!(listener = %config.name, %error, "http connection ended with error");
    }
}

//! The HTTP/1.1 fast path: a client connection served without hyper, on [`crate::http1`].
//!
//! Most requests a router sees are HTTP/1.1 requests for a service reached over plain
//! HTTP/1.1. For them this loop reads the head off the socket, routes it ([`super::route`]),
//! writes the rewritten head to a pooled endpoint connection, passes the body on as it comes
//! (re-framed when chunked), then the response the same way back ([`exchange`]): no `Request`,
//! no `HeaderMap`, no task or channel between the two connections, one write per message when
//! it fits. nginx and HAProxy work this way; hyper's generality costs a small request as
//! much again as the proxy's own work.
//!
//! Every HTTP/1.x request head is read and checked here first (framing, Host, target,
//! method), and routed here: what is refused or answered locally never reaches hyper. A
//! routed request the fast path does not forward itself is handed to hyper with the bytes
//! already read and the snapshot it was routed on ([`super::listener`]): HTTP/1.0, WebSocket
//! upgrades, and services reached over `h2c` or `https`. hyper then serves that one request
//! and the connection closes after it, so no request that skipped these checks ever reaches
//! hyper's own parser. The HTTP/2 preface is handed over whole. `CONNECT` gets 405 and a
//! transfer coding other than `chunked` 501, as with nginx.
//!
//! Limits are hyper's: the header-read deadline (which is also how long an idle keep-alive
//! connection may wait for its next request), `max_header_bytes` (431), one request at a time
//! (pipelined ones wait in the buffer), and a graceful stop: an idle connection closes at
//! once, a busy one after its response.

mod exchange;
mod read;

use super::conn::Conn;
use super::reply::Local;
use super::route::LogInfo;
use crate::config::{AccessLog, ListenerConfig};
use crate::http1::framing::Framing;
use crate::http1::io::Buffered;
use crate::service_table::{Service, Snapshot};
use crate::upstream::http::HttpClient;
use bytes::BytesMut;
use http::Method;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A connection the fast path gives to hyper.
pub(super) struct Handover<S> {
    /// The stream.
    pub io: S,
    /// What was read from it: the request hyper serves, whose head the fast path checked.
    pub read: BytesMut,
    /// The snapshot that request was routed on, for hyper to route it on the same (`None`
    /// for HTTP/2, whose requests each load their own).
    pub snapshot: Option<Arc<Snapshot>>,
    /// The request asks for an upgrade (the connection may become a tunnel).
    pub upgrade: bool,
}

/// How a connection left the fast path.
pub(super) enum Ended<S> {
    /// It is closed.
    Closed,
    /// hyper serves it from here on.
    Handover(Handover<S>),
    /// It waited about [`read::IDLE`] with nothing read: its caller may hold it without a
    /// task until it is readable (`listener::idle`). Only when [`serve`] was asked to.
    Idle {
        /// The stream.
        io: S,
        /// When its next request's head must be complete.
        until: Instant,
    },
}

/// Serves `io` until it closes, returns it to be served by hyper, or (with `park`) returns it
/// idle. `until` is the header-read deadline of a connection taken back from idleness.
///
/// A connection alternates between two states. Idle, it has nothing read and holds no buffer:
/// the task waits for bytes (read to the stack, [`Buffered`]) or for the header-read deadline,
/// with this loop's few hundred bytes of state; a connection that never sends a byte stays
/// there. Busy ([`busy`]), it serves requests one after another with its read buffer, its
/// scratch buffers and the state of a request in flight (about 2.4 KiB, boxed): allocated
/// once when bytes come, kept while requests keep coming, and freed once the connection has
/// waited about [`read::IDLE`] with nothing to do. So a busy keep-alive connection allocates
/// nothing per request, and an idle one costs its task and its socket; with `park`, the
/// caller takes an idle one (silent for about [`read::IDLE`] since it came, or for two or
/// three of them since its last request) and holds it without a task.
pub(super) async fn serve<S>(
    io: S,
    conn: &Conn,
    config: &ListenerConfig,
    stop: &CancellationToken,
    park: bool,
    until: Option<Instant>,
) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Buffered::new(io);
    let mut deadline = read::Deadline::new(config.header_read_timeout, until);
    loop {
        if client.buf.is_empty() {
            if park {
                deadline.watch_idle();
            }
            match read::wait(&mut client, &mut deadline, stop, park).await {
                read::Waited::Bytes => {}
                read::Waited::Idle => {
                    let until = deadline.until();
                    return Ended::Idle {
                        io: client.io,
                        until,
                    };
                }
                read::Waited::Done => {
                    Box::pin(exchange::close(&mut client, false)).await;
                    return Ended::Closed;
                }
            }
        }
        deadline.watch_idle();
        let served = Box::pin(busy(&mut client, conn, config, stop, &mut deadline)).await;
        match served {
            Busy::Idle => client.release(),
            Busy::Closed => return Ended::Closed,
            Busy::Handover { snapshot, upgrade } => {
                return Ended::Handover(Handover {
                    io: client.io,
                    read: client.buf,
                    snapshot,
                    upgrade,
                });
            }
        }
    }
}

/// How a busy spell of a connection ended.
enum Busy {
    /// No request came for a while: the connection is idle again, nothing read.
    Idle,
    /// The connection is closed.
    Closed,
    /// hyper takes the connection ([`Read::Handover`]).
    Handover {
        /// The snapshot its request was routed on.
        snapshot: Option<Arc<Snapshot>>,
        /// The request asks for an upgrade.
        upgrade: bool,
    },
}

/// Serves requests until the connection closes, is handed to hyper, or waits long enough
/// for the next request to be called idle ([`serve`]).
async fn busy<S>(
    client: &mut Buffered<S>,
    conn: &Conn,
    config: &ListenerConfig,
    stop: &CancellationToken,
    deadline: &mut read::Deadline,
) -> Busy
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut scratch = exchange::Scratch::default();
    loop {
        let next = match read::request(client, conn, config, stop, deadline, &mut scratch).await {
            Read::Request(request) => {
                exchange::forward(client, conn, request, &mut scratch, stop).await
            }
            Read::Reply(reply) => exchange::answer(client, conn, reply, &mut scratch).await,
            Read::Handover { snapshot, upgrade } => return Busy::Handover { snapshot, upgrade },
            Read::Idle => return Busy::Idle,
            Read::Done => Next::Close { linger: false },
        };
        deadline.restart();
        match next {
            Next::KeepAlive => {}
            Next::Close { linger } => {
                exchange::close(client, linger).await;
                return Busy::Closed;
            }
        }
    }
}

/// What the connection does after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Wait for the next request.
    KeepAlive,
    /// Close; `linger` when the client may still be sending (a body not read), so that
    /// closing does not reset the connection before it has read the answer.
    Close {
        /// Read and drop what the client still sends, briefly, before closing.
        linger: bool,
    },
}

/// The outcome of reading a request head.
enum Read {
    /// A request to forward.
    Request(Request),
    /// A request answered here (an error, a redirect).
    Reply(Reply),
    /// Not for the fast path: hyper takes the connection from this request on, with the
    /// snapshot it was routed on.
    Handover {
        /// The snapshot (`None` for HTTP/2).
        snapshot: Option<Arc<Snapshot>>,
        /// The request asks for an upgrade.
        upgrade: bool,
    },
    /// The connection closed, timed out waiting, or the listener is stopping.
    Done,
    /// Nothing came for a while ([`read::IDLE`]) and nothing is read: the connection is idle.
    Idle,
}

/// A request ready to go to an endpoint; its head is already consumed from the buffer, and
/// the rewritten head is in the scratch buffer.
pub(super) struct Request {
    /// How its body is framed.
    pub framing: Framing,
    /// The client wants the connection kept.
    pub keep_alive: bool,
    /// `HEAD`.
    pub head_request: bool,
    /// The method may be sent twice.
    pub idempotent: bool,
    /// The service, and its client.
    pub service: Arc<Service>,
    /// The service's client (a pool: the fast path serves only `http1` services).
    pub client: Arc<HttpClient>,
    /// The route's `max_body_bytes`.
    pub limit: Option<u64>,
    /// The route's affinity cookie name and the value the request carries.
    pub sticky: Option<(Arc<str>, Option<String>)>,
    /// What a hashing scheduler hashes.
    pub key: crate::balance::Key,
    /// The route's filters (its response header edits).
    pub filters: Option<Arc<crate::ingress::filters::RouteFilters>>,
    /// The route's retries and timeouts.
    pub policy: Arc<crate::ingress::UpstreamPolicy>,
    /// Copies the body for the route's mirror, if it mirrors this request.
    pub mirror: Option<Box<super::mirror::Tap>>,
    /// For the access log and the metrics.
    pub log: Logged,
}

/// A request answered here.
pub(super) struct Reply {
    /// The answer.
    pub local: Local,
    /// Close afterwards (the request has a body that is not read, or asked to close).
    pub close: bool,
    /// The request was a `HEAD`: the answer has no body.
    pub head: bool,
    /// For the access log and the metrics.
    pub log: Logged,
}

/// What the access log and the metrics learn about a request.
pub(super) struct Logged {
    /// When its head was complete.
    pub started: Instant,
    /// Method, host and path, gathered only when the access log is on.
    pub line: Option<(Method, Option<String>, String)>,
    /// The route's service, metrics, endpoint and request id.
    pub info: LogInfo,
    /// How to log.
    pub format: AccessLog,
}

impl Logged {
    fn new(
        started: Instant,
        line: Option<(Method, Option<String>, String)>,
        info: LogInfo,
        format: AccessLog,
    ) -> Self {
        Logged {
            started,
            line,
            info,
            format,
        }
    }
}

/// Writes `out` to the client and flushes it.
pub(super) async fn write_out<S: AsyncWrite + Unpin>(client: &mut Buffered<S>, out: &[u8]) -> bool {
    client.io.write_all(out).await.is_ok() && client.io.flush().await.is_ok()
}

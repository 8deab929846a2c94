//! One request on the fast path, once its head is read: sent to an endpoint with the body
//! passed on as it arrives ([`RelayBody`]), the response head written to the client, the
//! response body passed on the same way; or an answer of our own. Then the request is counted
//! and logged, and the endpoint's connection goes back to its pool.

use super::{Logged, Next, Reply, Request, write_out};
use crate::forward;
use crate::forward::edits::HeaderEdits;
use crate::http1::framing::Framing;
use crate::http1::head;
use crate::http1::io::{
    Buffered, Relay, RelayError, poll_write_all, write_length, write_status_line,
};
use crate::ingress::filters::RouteFilters;
use crate::router::http::attempts::{self, H1};
use crate::router::http::conn::Conn;
use crate::router::http::mirror::{Tap, Tee};
use crate::router::http::record::Record;
use crate::router::http::reply::Local;
use crate::router::http::sticky;
use crate::telemetry::metrics::HttpMetrics;
use crate::upstream::pool::{Exchanged, RequestBody, SendFailure};
use http::StatusCode;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Buffers a connection reuses from request to request while it is busy (see
/// [`super::serve`]), each taken with at least [`SCRATCH`] bytes.
#[derive(Debug, Default)]
pub(in crate::router::http) struct Scratch {
    /// The request head as it goes to the endpoint.
    pub head: Vec<u8>,
    /// What goes to the client: the response head, and what follows it in the same write.
    pub out: Vec<u8>,
    /// What goes to the endpoint after the head.
    pub up: Vec<u8>,
}

/// The least capacity of a scratch buffer: a head and a small body fit, and the buffers fall
/// in a size class of their own, apart from the smaller objects an idle connection keeps (its
/// task is 1.2 KiB, its `Conn` 0.3 KiB), so that freeing them when the connection goes idle
/// leaves whole pages free for the allocator to give back, not holes between those objects.
pub(super) const SCRATCH: usize = 2048;

/// Sends `request` to an endpoint and passes its response back to the client.
pub(super) async fn forward<S>(
    client: &mut Buffered<S>,
    conn: &Conn,
    request: Request,
    scratch: &mut Scratch,
    stop: &CancellationToken,
) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Request {
        framing,
        keep_alive,
        head_request,
        idempotent,
        service,
        client: upstream,
        limit,
        sticky,
        key,
        filters,
        policy,
        mirror,
        mut log,
    } = request;
    let Some(pool) = upstream.pool() else {
        return Next::Close { linger: true };
    };
    let config = &service.config;
    let cors = log.info.policy.as_mut().and_then(|p| p.cors.take());
    let up = std::mem::take(&mut scratch.up);
    let mut out = std::mem::take(&mut scratch.out);
    let mut attempt = H1 {
        pool,
        body: RelayBody::new(client, &scratch.head, framing, limit, up, mirror),
        head_request,
        idempotent,
        timeout: policy.attempt_timeout(config.response_timeout),
        on_head: |resp: &head::Response<'_>| {
            client_head(resp, response_edits(&filters), cors.as_ref(), &mut out);
            if let Some(alt_svc) = &conn.alt_svc {
                crate::http1::io::write_field(&mut out, b"alt-svc", alt_svc.as_bytes());
            }
        },
    };
    let sticky_id = sticky.as_ref().and_then(|(_, id)| id.as_deref());
    let sent = attempts::send(&service, key, sticky_id, &mut attempt, &policy).await;
    let H1 { body, .. } = attempt;
    let RelayBody { relay, mirror, .. } = body;
    if let (Some(tap), true) = (mirror, relay.is_done()) {
        tap.finish();
    }
    // A request without a body is over once its head is read, sent or not (a failed
    // connect leaves the connection fit for the next request).
    let request_done = framing == Framing::Empty || relay.is_done();
    let bytes_in = relay.passed();
    scratch.up = relay.into_buffer();
    let sent = match sent {
        Ok(sent) if sent.response.reply.status != 101 => sent,
        Ok(sent) => {
            // Only hyper's path asks for upgrades: this endpoint switched unasked.
            tracing::warn!(service = %config.name, endpoint = %sent.endpoint.address, blame = "upstream", "unrequested 101");
            log.info.upstream = Some(sent.endpoint.address);
            scratch.out = out;
            let local = Local::new(StatusCode::BAD_GATEWAY, "upstream failed\n");
            return answer(
                client,
                conn,
                Reply {
                    local,
                    close: true,
                    head: head_request,
                    log,
                },
                scratch,
            )
            .await;
        }
        Err(failed) => {
            log.info.upstream = failed.endpoint();
            scratch.out = out;
            let reply = Reply {
                local: failed.reply(),
                close: !request_done || !keep_alive,
                head: head_request,
                log,
            };
            return answer(client, conn, reply, scratch).await;
        }
    };
    let Exchanged {
        reply, mut lease, ..
    } = sent.response;
    log.info.upstream = Some(sent.endpoint.address);
    if let (Some((name, _)), false) = (&sticky, sent.pinned) {
        sticky::set(&mut out, name, sent.endpoint);
    }
    let close =
        !keep_alive || !request_done || reply.framing == Framing::Close || stop.is_cancelled();
    if close && reply.framing != Framing::Close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let mut relay = Relay::new(reply.framing, out);
    let relayed =
        std::future::poll_fn(|cx| relay.poll(cx, &mut lease.conn.io, &mut client.io)).await;
    let bytes_out = relay.passed();
    scratch.out = relay.into_buffer();
    drop(sent.busy);
    let next = match relayed {
        Ok(()) => {
            lease.release(reply.reusable);
            if close {
                Next::Close {
                    linger: !request_done,
                }
            } else {
                Next::KeepAlive
            }
        }
        Err(error) => {
            let blame = if matches!(error, RelayError::Write(_)) {
                "client"
            } else {
                "upstream"
            };
            tracing::debug!(service = %config.name, endpoint = %sent.endpoint.address, %error, blame, "response body cut short");
            Next::Close { linger: false }
        }
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    finish(conn, log, status, bytes_in, bytes_out);
    next
}

/// Answers a request here, counts and logs it.
pub(super) async fn answer<S>(
    client: &mut Buffered<S>,
    conn: &Conn,
    reply: Reply,
    scratch: &mut Scratch,
) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Reply {
        mut local,
        close,
        head,
        log,
    } = reply;
    if let Some(alt_svc) = &conn.alt_svc {
        let fields = local.fields.get_or_insert_with(Default::default);
        fields.insert(http::header::ALT_SVC, alt_svc.clone());
    }
    scratch.out.clear();
    scratch.out.reserve(SCRATCH);
    local.write(&mut scratch.out, close, head);
    let written = write_out(client, &scratch.out).await;
    finish(conn, log, local.status, 0, local.body_len(head));
    match (written, close) {
        (true, false) => Next::KeepAlive,
        (true, true) => Next::Close { linger: true },
        (false, _) => Next::Close { linger: false },
    }
}

/// Counts the request in its route's metrics and writes its access-log line.
fn finish(conn: &Conn, log: Logged, status: StatusCode, bytes_in: u64, bytes_out: u64) {
    let Logged {
        started,
        line,
        info,
        format,
    } = log;
    let logging = line.is_some();
    let (method, host, path) = line.unwrap_or_default();
    let record = Record {
        started: started.into_std(),
        client: conn.client,
        listener: Arc::clone(&conn.listener),
        method,
        // The fast path serves HTTP/1.1 only (it hands HTTP/1.0 to hyper).
        version: http::Version::HTTP_11,
        host,
        path,
        status,
        service: info.service,
        upstream: info.upstream,
        request_id: info.request_id,
        bytes_in: logging.then(|| Arc::new(AtomicU64::new(bytes_in))),
        metrics: info.metrics.unwrap_or_else(HttpMetrics::unrouted),
        format,
        held: info.policy.and_then(|p| p.held),
    };
    record.finish(bytes_out);
}

/// Closes the client connection: sends the end of the stream, and when the client may still
/// be sending, reads and drops what comes for a moment first, so that closing with unread
/// bytes does not reset the connection before the client has read the answer.
pub(super) async fn close<S>(client: &mut Buffered<S>, linger: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = client.io.shutdown().await;
    if linger {
        let drain = async {
            loop {
                client.buf.clear();
                if !matches!(client.fill().await, Ok(n) if n > 0) {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    }
}

/// The response head for the client, without its end: status line, the endpoint's fields but
/// hop-by-hop ones, and the framing field the body will be sent with.
fn client_head(
    resp: &head::Response<'_>,
    edits: Option<&HeaderEdits>,
    cors: Option<&crate::policy::cors::CorsReply>,
    out: &mut Vec<u8>,
) {
    out.clear();
    // Room for a small body after the head, in one allocation.
    out.reserve(SCRATCH.max(resp.len + 1024));
    write_status_line(out, resp.status, resp.reason);
    let keep_length = resp.framing == Framing::Empty && resp.length_passes();
    forward::response(
        || resp.pairs(),
        resp.connection,
        keep_length,
        edits,
        cors,
        out,
    );
    match resp.framing {
        Framing::Length(n) => write_length(out, n),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Close => out.extend_from_slice(b"connection: close\r\n"),
        Framing::Empty => {}
    }
}

/// A route's response header edits.
fn response_edits(filters: &Option<Arc<RouteFilters>>) -> Option<&HeaderEdits> {
    filters.as_deref()?.response_headers.as_ref()
}

/// The request side of a fast-path exchange: the rewritten head, then the client's body as it
/// arrives, and `1xx` answers passed back to the client on the way.
pub(super) struct RelayBody<'c, S> {
    client: &'c mut Buffered<S>,
    head: &'c [u8],
    relay: Relay,
    /// A `1xx` head for the client, and how much of it is written.
    informational: Vec<u8>,
    informational_written: usize,
    /// Whether anything was sent yet (else there is nothing to start over).
    touched: bool,
    /// Copies what is written for the route's mirror (boxed: most requests have none).
    mirror: Option<Box<Tap>>,
}

impl<'c, S: AsyncRead + AsyncWrite + Unpin> RelayBody<'c, S> {
    fn new(
        client: &'c mut Buffered<S>,
        head: &'c [u8],
        framing: Framing,
        limit: Option<u64>,
        mut up: Vec<u8>,
        mirror: Option<Box<Tap>>,
    ) -> Self {
        up.clear();
        up.reserve(SCRATCH.max(head.len()));
        up.extend_from_slice(head);
        RelayBody {
            client,
            head,
            relay: Relay::new(framing, up).with_limit(limit),
            informational: Vec::new(),
            informational_written: 0,
            touched: false,
            mirror,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RequestBody for RelayBody<'_, S> {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        endpoint: &mut TcpStream,
    ) -> Poll<Result<(), SendFailure>> {
        self.touched = true;
        if !self.informational.is_empty() {
            let client = &mut self.client.io;
            ready!(poll_write_all(
                cx,
                client,
                &self.informational,
                &mut self.informational_written
            ))
            .map_err(|e| SendFailure::Source(e.into()))?;
            ready!(Pin::new(client).poll_flush(cx)).map_err(|e| SendFailure::Source(e.into()))?;
            self.informational.clear();
            self.informational_written = 0;
        }
        let relayed = match &mut self.mirror {
            None => self.relay.poll(cx, &mut *self.client, endpoint),
            Some(tap) => {
                let mut tee = Tee {
                    inner: endpoint,
                    tap,
                };
                self.relay.poll(cx, &mut *self.client, &mut tee)
            }
        };
        relayed.map_err(|e| match e {
            RelayError::Write(e) => SendFailure::Endpoint(e),
            other => SendFailure::Source(Box::new(other)),
        })
    }

    fn informational(&mut self, head: &head::Response<'_>) {
        let out = &mut self.informational;
        write_status_line(out, head.status, head.reason);
        forward::response(|| head.pairs(), head.connection, true, None, None, out);
        out.extend_from_slice(b"\r\n");
    }

    fn can_resend(&self) -> bool {
        !self.relay.has_body()
    }

    /// Only called for a request without a body: its head goes out again.
    fn rewind(&mut self) {
        if self.touched {
            self.relay = Relay::new(Framing::Empty, self.head.to_vec());
            self.touched = false;
        }
    }
}

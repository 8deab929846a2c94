//! Reading a request head on the fast path: filling the buffer under the header-read
//! deadline, then parsing the head and deciding what becomes of the request (forwarded,
//! answered here, or handed to hyper), with the head it goes to the endpoint with written out.

use super::exchange::Scratch;
use super::{Logged, Read, Reply, Request};
use crate::config::{AccessLog, ListenerConfig};
use crate::forward::{self, Rewrite};
use crate::http1::fields::{self, Kind};
use crate::http1::framing::Framing;
use crate::http1::head::{self, HeadError};
use crate::http1::io::Buffered;
use crate::ingress::normalize;
use crate::policy::cors::{CorsAsk, LazyAsk};
use crate::router::http::conn::Conn;
use crate::router::http::mirror;
use crate::router::http::prepare;
use crate::router::http::reply::Local;
use crate::router::http::route::{Asked, LogInfo};
use crate::router::http::upgrade;
use crate::service_table::Snapshot;
use bytes::Buf;
use http::{Method, StatusCode};
use std::borrow::Cow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

/// Reads one request head and decides what becomes of it.
pub(super) async fn request<S: AsyncRead + Unpin>(
    client: &mut Buffered<S>,
    conn: &Conn,
    config: &ListenerConfig,
    stop: &CancellationToken,
    deadline: &mut Deadline,
    scratch: &mut Scratch,
) -> Read {
    loop {
        if !client.buf.is_empty() {
            match prepare(&client.buf, conn, config, &mut scratch.head) {
                Prepared::Incomplete => {}
                Prepared::Handover { snapshot, upgrade } => {
                    return Read::Handover { snapshot, upgrade };
                }
                Prepared::Request { len, request } => {
                    client.buf.advance(len);
                    return Read::Request(request);
                }
                Prepared::Reply { len, reply } => {
                    client.buf.advance(len);
                    return Read::Reply(reply);
                }
                Prepared::Bad(error) => {
                    tracing::debug!(listener = %config.name, client = %conn.client, %error, "bad request head");
                    client.buf.clear();
                    let log = Logged::new(Instant::now(), None, LogInfo::default(), AccessLog::Off);
                    let local = Local::new(error.status(), bad_head_body(error));
                    return Read::Reply(Reply {
                        local,
                        close: true,
                        head: false,
                        log,
                    });
                }
            }
        }
        match fill(client, deadline, stop, true).await {
            Filled::More => {}
            Filled::Done => return Read::Done,
            Filled::Idle => return Read::Idle,
        }
    }
}

fn bad_head_body(error: HeadError) -> &'static str {
    match error.status() {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "request head too large\n",
        _ => "malformed request\n",
    }
}

/// What a buffer holding the start of a request comes to.
enum Prepared {
    Incomplete,
    Handover {
        snapshot: Option<Arc<Snapshot>>,
        upgrade: bool,
    },
    Request {
        len: usize,
        request: Request,
    },
    Reply {
        len: usize,
        reply: Reply,
    },
    Bad(HeadError),
}

/// Parses, checks and routes the request head at the start of `buf`, writing the head it goes
/// on with into `out`; or decides that hyper forwards it (on the same snapshot).
fn prepare(buf: &[u8], conn: &Conn, config: &ListenerConfig, out: &mut Vec<u8>) -> Prepared {
    if buf.starts_with(b"PRI * HTTP/2") {
        return Prepared::Handover {
            snapshot: None,
            upgrade: false,
        };
    }
    let mut fields = head::field_buf();
    let req = match head::request(buf, &mut fields, config.max_header_bytes) {
        Ok(Some(req)) => req,
        Ok(None) => return Prepared::Incomplete,
        Err(error) => return Prepared::Bad(error),
    };
    let started = Instant::now();
    // Borrowed for this synchronous step (arc-swap's guard writes only this thread's own
    // slot), not cloned: an `Arc` clone and its drop would write the snapshot's reference
    // count, a line every worker writes (issue 20).
    let snapshot = conn.table.load();
    let format = snapshot.http.access_log;
    let (authority, target) = match origin_form(&req) {
        Ok(pair) => pair,
        Err(local) => return answer(&req, local, LogInfo::default(), None, started, format),
    };
    let host = authority.and_then(|h| std::str::from_utf8(h).ok());
    let line = (format != AccessLog::Off).then(|| {
        let method = Method::from_bytes(req.method.as_bytes()).unwrap_or_default();
        let path = target.split_once('?').map_or(&*target, |(path, _)| path);
        (method, host.map(str::to_owned), path.to_owned())
    });
    let mut info = LogInfo::default();
    if req.other_coding {
        let local = Local::new(
            StatusCode::NOT_IMPLEMENTED,
            "transfer coding not implemented\n",
        );
        return answer(&req, local, info, line, started, format);
    }
    let cors = || CorsAsk::from_fields(head::pairs(req.fields));
    let asked = Asked {
        method: req.method,
        authority: host,
        target: &target,
        length: match req.framing {
            Framing::Length(n) => Some(n),
            _ => None,
        },
        cors: LazyAsk::new(&cors),
        handed_over: false,
        fields: &req.fields,
    };
    let cookies = req
        .fields
        .iter()
        .filter(|f| fields::classify(f.name.as_bytes()) == Kind::Cookie)
        .map(|f| f.value);
    let fields = || req.fields.iter().map(|f| (f.name.as_bytes(), f.value));
    let ready = match prepare::prepare(conn, &snapshot, &asked, cookies, fields, &mut info) {
        Ok(ready) => ready,
        Err(local) => return answer(&req, local, info, line, started, format),
    };
    let upgrade = requested_upgrade(&req).filter(|u| upgrade::allowed(u, ready.service));
    if req.minor_version != 1 || upgrade.is_some() || ready.client.pool().is_none() {
        return Prepared::Handover {
            snapshot: Some(Arc::clone(&*snapshot)),
            upgrade: upgrade.is_some() && req.minor_version == 1,
        };
    }
    let host = authority.unwrap_or_default();
    let rw = prepare::rewrite(
        conn,
        &snapshot,
        ready.target,
        host,
        false,
        None,
        req.connection,
    );
    let id = write_head(&req, &ready.forward, &rw, out);
    let mirror = match req.framing {
        _ if ready.target.upstream.config.mirror.is_none() => None,
        Framing::Empty => {
            mirror::fire(conn, &snapshot, ready.target, || out.clone());
            None
        }
        Framing::Length(n) => {
            mirror::fire_with_body(conn, &snapshot, ready.target, Some(n), || None)
        }
        _ => mirror::fire_with_body(conn, &snapshot, ready.target, None, || None),
    };
    if line.is_some() {
        info.request_id = Some(id.to_value());
    }
    let request = Request {
        framing: req.framing,
        keep_alive: req.keep_alive(),
        head_request: req.method == "HEAD",
        idempotent: ready.idempotent,
        service: Arc::clone(ready.service),
        client: ready.client,
        limit: ready.target.max_body_bytes,
        sticky: ready.sticky,
        key: ready.key,
        filters: ready.target.filters.clone(),
        policy: Arc::clone(&ready.target.upstream),
        mirror,
        log: Logged::new(started, line, info, format),
    };
    Prepared::Request {
        len: req.len,
        request,
    }
}

/// A request answered here. The connection closes after it when the client may still send
/// (a body, a `CONNECT` tunnel) or asked to close; a refused target or Host leaves the
/// framing sound, so the connection serves on.
fn answer(
    req: &head::Request<'_>,
    local: Local,
    info: LogInfo,
    line: Option<(Method, Option<String>, String)>,
    started: Instant,
    format: AccessLog,
) -> Prepared {
    let close = req.framing != Framing::Empty || !req.keep_alive() || req.method == "CONNECT";
    Prepared::Reply {
        len: req.len,
        reply: Reply {
            local,
            close,
            head: req.method == "HEAD",
            log: Logged::new(started, line, info, format),
        },
    }
}

/// The request's authority (`Host`, or an absolute-form target's, which replaces it: RFC
/// 9112 §3.2.2) and its target in origin form (or `*`), not yet normalised.
fn origin_form<'b>(req: &head::Request<'b>) -> Result<(Option<&'b [u8]>, Cow<'b, str>), Local> {
    // CONNECT's authority form goes as it is, to be refused by the route.
    if req.target.starts_with('/') || req.target == "*" || req.method == "CONNECT" {
        return Ok((req.host, Cow::Borrowed(req.target)));
    }
    match normalize::split_absolute(req.target) {
        Ok((authority, rest)) => Ok((Some(authority.as_bytes()), rest)),
        Err(error) => {
            tracing::debug!(%error, "request target refused");
            Err(Local::new(
                StatusCode::BAD_REQUEST,
                "invalid request target\n",
            ))
        }
    }
}

/// The `Upgrade` value of a request whose `Connection` asks for an upgrade.
fn requested_upgrade<'b>(req: &head::Request<'b>) -> Option<&'b [u8]> {
    if !(req.connection.upgrade && req.upgrade) {
        return None;
    }
    req.fields
        .iter()
        .find(|f| fields::classify(f.name.as_bytes()) == Kind::Upgrade)
        .map(|f| f.value)
}

/// Writes the head the request goes to the endpoint with: its request line, the rewritten
/// fields, and its framing field; returns the `X-Request-Id` in it.
fn write_head<'b>(
    req: &head::Request<'b>,
    target: &str,
    rw: &Rewrite<'_>,
    out: &mut Vec<u8>,
) -> forward::RequestId<'b> {
    out.clear();
    // The head plus the forwarding fields, in one allocation.
    out.reserve(super::exchange::SCRATCH.max(req.len + 256));
    out.extend_from_slice(req.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let id = forward::request(|| head::pairs(req.fields), rw, out);
    match req.framing {
        Framing::Length(n) => crate::http1::io::write_length(out, n),
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Framing::Empty | Framing::Close => {}
    }
    out.extend_from_slice(b"\r\n");
    id
}

/// How long a busy connection waits for its next request, with nothing read, before it is
/// idle again and frees what it holds ([`super::serve`]): between one and two of these. Short,
/// so that a crowd of new connections that each make a request or two (a flash crowd, the
/// idle-connection bench) does not hold 16 KiB each for long (10,000 of them in 1.6 s held
/// 167 MiB at the peak with 1 s); long against the gaps of a connection that is really
/// busy, which keeps its buffers (a look every [`IDLE`] is one timer reset).
pub(super) const IDLE: Duration = Duration::from_millis(250);

/// How reading more of a head went.
enum Filled {
    More,
    Done,
    /// Nothing read, nothing to read for a while ([`IDLE`]).
    Idle,
}

/// How an idle connection's wait for the first bytes of a request ended.
pub(super) enum Waited {
    /// They came.
    Bytes,
    /// The connection closed, the deadline passed, or the listener is stopping.
    Done,
    /// Nothing came for about [`IDLE`] (only when asked to end there).
    Idle,
}

/// Waits, idle, for the first bytes of a request; with `idle_ends`, only until the
/// deadline's next look finds the connection still idle.
pub(super) async fn wait<S: AsyncRead + Unpin>(
    client: &mut Buffered<S>,
    deadline: &mut Deadline,
    stop: &CancellationToken,
    idle_ends: bool,
) -> Waited {
    match fill(client, deadline, stop, idle_ends).await {
        Filled::More => Waited::Bytes,
        Filled::Done => Waited::Done,
        Filled::Idle => Waited::Idle,
    }
}

/// Reads more of a request head, unless the connection closes, the deadline passes, or the
/// listener stops while nothing of a request has come; or, with `idle_ends`, the connection
/// has had nothing to do for a while.
fn fill<'a, S: AsyncRead + Unpin>(
    client: &'a mut Buffered<S>,
    deadline: &'a mut Deadline,
    stop: &'a CancellationToken,
    idle_ends: bool,
) -> impl Future<Output = Filled> + 'a {
    std::future::poll_fn(move |cx| {
        if client.buf.is_empty() && stop.is_cancelled() {
            return Poll::Ready(Filled::Done);
        }
        match client.poll_fill(cx) {
            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Filled::Done),
            Poll::Ready(Ok(_)) => return Poll::Ready(Filled::More),
            Poll::Pending => {}
        }
        loop {
            match deadline.poll(cx) {
                Poll::Ready(Tick::Expired) => return Poll::Ready(Filled::Done),
                Poll::Ready(Tick::Idle) if idle_ends && client.buf.is_empty() => {
                    return Poll::Ready(Filled::Idle);
                }
                // Re-armed for the deadline: polled again to wait for it.
                Poll::Ready(Tick::Idle) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    })
}

/// The header-read deadline of a connection, which every request head starts afresh, and
/// the look a busy connection takes about every [`IDLE`] to see whether it has become idle.
/// The timer is not re-armed per request: when it fires before the current deadline it is
/// set to the next look (if a request ended since the last one) or to that deadline, so a
/// busy connection arms it about once per [`IDLE`], not once per request.
pub(super) struct Deadline {
    sleep: Pin<Box<Sleep>>,
    timeout: Duration,
    at: Instant,
    /// A request ended since the timer last fired.
    busy: bool,
}

/// Why the deadline's timer fired.
pub(super) enum Tick {
    /// The deadline passed.
    Expired,
    /// No request ended since the last look: the timer now waits for the deadline.
    Idle,
}

impl Deadline {
    /// A deadline `timeout` from now, or at `until` (a connection taken back from idleness
    /// keeps the deadline it had).
    pub(super) fn new(timeout: Duration, until: Option<Instant>) -> Self {
        let at = until.unwrap_or_else(|| Instant::now() + timeout);
        Deadline {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            timeout,
            at,
            busy: false,
        }
    }

    /// When the head being waited for must be complete.
    pub(super) fn until(&self) -> Instant {
        self.at
    }

    /// The next head has `timeout` from now.
    pub(super) fn restart(&mut self) {
        self.at = Instant::now() + self.timeout;
        self.busy = true;
    }

    /// Looks within [`IDLE`] whether the connection, now busy, has become idle (one timer
    /// reset per busy spell; while busy, each look sets the next).
    pub(super) fn watch_idle(&mut self) {
        let look = Instant::now() + IDLE;
        if look < self.sleep.deadline() {
            self.sleep.as_mut().reset(look);
        }
    }

    #[inline]
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Tick> {
        loop {
            std::task::ready!(self.sleep.as_mut().poll(cx));
            let fired = self.sleep.deadline();
            if fired >= self.at {
                return Poll::Ready(Tick::Expired);
            }
            if std::mem::take(&mut self.busy) {
                self.sleep
                    .as_mut()
                    .reset(self.at.min(Instant::now() + IDLE));
            } else {
                self.sleep.as_mut().reset(self.at);
                return Poll::Ready(Tick::Idle);
            }
        }
    }
}

//! Request mirroring: a copy of a routed request sent, fire and forget, to the route's
//! mirror service, whose answer is read and thrown away.
//!
//! The copy is the head the primary endpoint gets (method, target, rewritten fields, `Host`
//! as the primary's), made before the primary is sent and handed to a task of its own, so
//! the real request never waits for it and never sees its failure. A body is copied as it
//! goes to the primary ([`tap`]), up to the route's `max_body_bytes`, and the copy leaves
//! once the body is over: the primary is never slowed to the mirror's pace, and a body over
//! the cap (declared, or found on the way) is not mirrored but counted `dropped`. Copies in
//! flight are bounded by the route's `max_in_flight` slots; when all are taken the copy is
//! not made and counted `dropped`. The copy goes through [`attempts::send`] with no route policy, so its failures
//! count for the mirror service's passive health like any request's, and never for the
//! primary's endpoints. Mirror services are reached over plain HTTP/1.1 (their pool); another
//! upstream protocol counts every copy `failed`.

use super::attempts::{self, H1};
use super::clients;
use super::conn::Conn;
use crate::http1::head;
use crate::http1::io::poll_write_all;
use crate::ingress::{Outcome, RouteTarget, UpstreamPolicy};
use crate::service_table::{Service, Snapshot};
use crate::upstream::http::UpstreamBody;
use crate::upstream::pool::{Exchanged, PoolBody, RequestBody, SendFailure};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use hyper::body::Body;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

mod tap;
pub(super) use tap::{Tap, TapBody, Tee};

/// Sends a copy of a bodiless request routed to `target`, if its route mirrors this one:
/// `head` makes the whole request head (ended by the empty line) the endpoint gets. Returns
/// at once.
pub(super) fn fire(
    conn: &Conn,
    snapshot: &Snapshot,
    target: &RouteTarget,
    head: impl FnOnce() -> Vec<u8>,
) {
    if let Some(copy) = start(conn, snapshot, target, true) {
        tokio::spawn(copy.send(Pending::Ready(head())));
    }
}

/// Readies a copy of a request with a body (of `length` bytes, if declared) routed to
/// `target`, if its route mirrors this one and the body may fit its `max_body_bytes`: the
/// returned [`Tap`] gets the body as it goes to the primary, and the copy leaves once it is
/// over. `head` makes the head without its framing field and empty line, or `None` when the
/// tap sees the request as written (the fast path).
pub(super) fn fire_with_body(
    conn: &Conn,
    snapshot: &Snapshot,
    target: &RouteTarget,
    length: Option<u64>,
    head: impl FnOnce() -> Option<Vec<u8>>,
) -> Option<Box<Tap>> {
    let mirror = target.upstream.config.mirror.as_ref()?;
    let max = mirror.max_body_bytes;
    let copy = start(conn, snapshot, target, length.is_none_or(|n| n <= max))?;
    let (tx, rx) = oneshot::channel();
    let head = head();
    // As written, the bytes include the head and the chunk framing.
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let cap = match head {
        Some(_) => cap,
        None => cap.saturating_add(WIRE_ALLOWANCE),
    };
    let tap = Tap::new(cap, tx, Arc::clone(&copy.policy));
    tokio::spawn(copy.send(Pending::Body(head, rx)));
    // Boxed: the fast path keeps it in a request's state, which most requests need small.
    Some(Box::new(tap))
}

/// Room for the head and chunk framing when the tap sees the request as written.
const WIRE_ALLOWANCE: usize = 64 * 1024;

/// A copy's slot and upstream client, when the route mirrors this request, its body `fits`
/// and a slot is free.
fn start(conn: &Conn, snapshot: &Snapshot, target: &RouteTarget, fits: bool) -> Option<Copy> {
    let policy = &target.upstream;
    let mirror = policy.config.mirror.as_ref()?;
    if !policy.mirror_this() {
        return None;
    }
    if !fits {
        policy.count(Outcome::MirrorDropped);
        return None;
    }
    let Ok(permit) = Arc::clone(&policy.mirror_slots).try_acquire_owned() else {
        policy.count(Outcome::MirrorDropped);
        return None;
    };
    let Some(service) = snapshot.service(&mirror.service) else {
        policy.count(Outcome::MirrorFailed);
        return None;
    };
    let client = match clients::client_for(service, conn) {
        Ok(client) if client.pool().is_some() => client,
        _ => {
            policy.count(Outcome::MirrorFailed);
            return None;
        }
    };
    Some(Copy {
        service: Arc::clone(service),
        policy: Arc::clone(policy),
        client,
        ip: conn.client.ip(),
        _permit: permit,
    })
}

/// What a copy is made of.
enum Pending {
    /// The whole request, ready.
    Ready(Vec<u8>),
    /// A head without framing (or none: the tap has the request as written) and the body
    /// still on its way.
    Body(Option<Vec<u8>>, oneshot::Receiver<Vec<u8>>),
}

/// Mirrors a request hyper serves (see [`fire`] and [`fire_with_body`]): `body` comes back
/// tapped when it is copied. `head` makes the head without framing field and empty line; a
/// request that asks for an upgrade is not mirrored.
pub(super) fn copy(
    conn: &Conn,
    snapshot: &Snapshot,
    target: &RouteTarget,
    body: UpstreamBody,
    upgrade: bool,
    head: impl FnOnce() -> Vec<u8>,
) -> UpstreamBody {
    if upgrade || target.upstream.config.mirror.is_none() {
        return body;
    }
    if body.is_end_stream() {
        fire(conn, snapshot, target, || {
            [head(), b"\r\n".to_vec()].concat()
        });
        return body;
    }
    let length = body.size_hint().exact();
    match fire_with_body(conn, snapshot, target, length, || Some(head())) {
        Some(tap) => TapBody::new(body, tap).boxed(),
        None => body,
    }
}

/// The head of a request hyper serves, for a copy: request line and `fields` but its
/// framing ones, without the empty line.
pub(super) fn head_of(method: &Method, target: &str, fields: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A copy on its way, holding its slot.
struct Copy {
    /// The mirror service.
    service: Arc<Service>,
    /// The route's policy, for the counters.
    policy: Arc<UpstreamPolicy>,
    /// The mirror service's client (one with a pool).
    client: Arc<crate::upstream::http::HttpClient>,
    /// The client's address, for the mirror's scheduler.
    ip: std::net::IpAddr,
    /// The slot, given back when the copy is over.
    _permit: OwnedSemaphorePermit,
}

impl Copy {
    async fn send(self, pending: Pending) {
        let timeout = self.service.config.response_timeout;
        let request = match pending {
            Pending::Ready(request) => request,
            // A body that does not come within the mirror's `response_timeout` is given up;
            // one that went over the cap, or whose request failed, was counted by its tap.
            Pending::Body(head, rx) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(body)) => whole(head, body),
                Ok(Err(_)) => return,
                Err(_) => {
                    self.policy.count(Outcome::MirrorFailed);
                    return;
                }
            },
        };
        let outcome = match self.exchange(&request).await {
            true => Outcome::MirrorSent,
            false => Outcome::MirrorFailed,
        };
        self.policy.count(outcome);
    }

    /// Sends the copy and reads its answer to the end, within the mirror service's
    /// `response_timeout` for each.
    async fn exchange(&self, request: &[u8]) -> bool {
        let Some(pool) = self.client.pool() else {
            return false;
        };
        let timeout = self.service.config.response_timeout;
        let mut attempt = H1 {
            pool,
            body: Fixed {
                head: request,
                written: 0,
            },
            head_request: request.starts_with(b"HEAD "),
            // So that a pooled connection the mirror had closed is retried, not failed.
            idempotent: idempotent(request),
            timeout,
            on_head: |_: &head::Response<'_>| (),
        };
        let none = no_policy();
        let Ok(sent) =
            attempts::send(&self.service, self.ip.into(), None, &mut attempt, none).await
        else {
            return false;
        };
        let Exchanged { reply, lease, .. } = sent.response;
        let mut body = PoolBody::h1(lease, reply.framing, reply.reusable);
        let drain = async {
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    return false;
                }
            }
            true
        };
        tokio::time::timeout(timeout, drain).await.unwrap_or(false)
    }
}

/// The policy of a copy: none (the mirror service's own `connect_attempts`), shared.
fn no_policy() -> &'static UpstreamPolicy {
    static NONE: std::sync::OnceLock<UpstreamPolicy> = std::sync::OnceLock::new();
    NONE.get_or_init(UpstreamPolicy::default)
}

/// Whether the method on a request line may be sent twice (RFC 9110 §9.2.2).
fn idempotent(request: &[u8]) -> bool {
    let method = request.split(|b| *b == b' ').next().unwrap_or_default();
    matches!(
        method,
        b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE"
    )
}

/// The request a copy sends: `head` (without framing) and `body` with its length, or `body`
/// alone when it is the request as written.
fn whole(head: Option<Vec<u8>>, body: Vec<u8>) -> Vec<u8> {
    let Some(mut out) = head else {
        return body;
    };
    crate::http1::io::write_length(&mut out, body.len() as u64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    out
}

/// A request already written out whole.
struct Fixed<'h> {
    /// The bytes.
    head: &'h [u8],
    /// How many are written.
    written: usize,
}

impl RequestBody for Fixed<'_> {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        endpoint: &mut TcpStream,
    ) -> Poll<Result<(), SendFailure>> {
        poll_write_all(cx, endpoint, self.head, &mut self.written).map_err(SendFailure::Endpoint)
    }

    fn informational(&mut self, _: &head::Response<'_>) {}

    fn can_resend(&self) -> bool {
        true
    }

    fn rewind(&mut self) {
        self.written = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_with_a_separate_head_is_framed_by_its_length() {
        let head = b"POST /x HTTP/1.1\r\nhost: a\r\n".to_vec();
        assert_eq!(
            whole(Some(head), b"abc".to_vec()),
            b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\n\r\nabc"
        );
        // As written on the fast path: already whole.
        assert_eq!(whole(None, b"raw".to_vec()), b"raw");
    }

    #[test]
    fn only_idempotent_methods_may_be_sent_twice() {
        assert!(idempotent(b"GET / HTTP/1.1\r\n"));
        assert!(idempotent(b"DELETE /x HTTP/1.1\r\n"));
        assert!(!idempotent(b"POST / HTTP/1.1\r\n"));
        assert!(!idempotent(b"GETX / HTTP/1.1\r\n"));
    }

    #[test]
    fn a_hyper_head_leaves_out_framing_fields_and_the_empty_line() {
        let mut fields = HeaderMap::new();
        fields.insert("host", http::HeaderValue::from_static("a.test"));
        fields.insert(CONTENT_LENGTH, http::HeaderValue::from_static("3"));
        assert_eq!(
            head_of(&Method::PUT, "/p?q", &fields),
            b"PUT /p?q HTTP/1.1\r\nhost: a.test\r\n"
        );
    }
}

//! Request mirroring: a copy of a routed request sent, fire and forget, to the route's
//! mirror service, whose answer is read and thrown away.
//!
//! The copy is the head the primary endpoint gets (method, target, rewritten fields, `Host`
//! as the primary's), made before the primary is sent and handed to a task of its own, so
//! the real request never waits for it and never sees its failure. Only requests without a
//! body are mirrored: copying a body would mean holding it (or slowing the primary to the
//! mirror's pace), so requests with one are left out. Copies in flight are bounded by the
//! route's `max_in_flight` slots; when all are taken the copy is not made and counted
//! `dropped`. The copy goes through [`attempts::send`] with no route policy, so its failures
//! count for the mirror service's passive health like any request's, and never for the
//! primary's endpoints. Mirror services are reached over plain HTTP/1.1 (their pool); another
//! upstream protocol counts every copy `failed`.

use super::attempts::{self, H1};
use super::clients;
use super::conn::Conn;
use crate::http1::head;
use crate::http1::io::poll_write_all;
use crate::ingress::{Outcome, RoutePolicy, RouteTarget};
use crate::service_table::{Service, Snapshot};
use crate::upstream::pool::{Exchanged, PoolBody, RequestBody, SendFailure};
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

/// Sends a copy of a request routed to `target`, if its route mirrors this one: `bodiless`
/// says whether it has no body, `head` makes the whole request head (ended by the empty
/// line) the endpoint gets. Returns at once.
pub(super) fn fire(
    conn: &Conn,
    snapshot: &Snapshot,
    target: &RouteTarget,
    bodiless: bool,
    head: impl FnOnce() -> Vec<u8>,
) {
    let policy = &target.policy;
    let Some(mirror) = &policy.config.mirror else {
        return;
    };
    if !bodiless || !policy.mirror_this() {
        return;
    }
    let Ok(permit) = Arc::clone(&policy.mirror_slots).try_acquire_owned() else {
        policy.count(Outcome::MirrorDropped);
        return;
    };
    let Some(service) = snapshot.service(&mirror.service) else {
        policy.count(Outcome::MirrorFailed);
        return;
    };
    let client = match clients::client_for(service, conn) {
        Ok(client) if client.pool().is_some() => client,
        _ => {
            policy.count(Outcome::MirrorFailed);
            return;
        }
    };
    let copy = Copy {
        service: Arc::clone(service),
        policy: Arc::clone(policy),
        client,
        head: head(),
        ip: conn.client.ip(),
        _permit: permit,
    };
    tokio::spawn(copy.send());
}

/// The head of a request hyper serves, for a copy: request line, `fields`, empty line.
pub(super) fn head_of(method: &Method, target: &str, fields: &HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A copy on its way, holding its slot.
struct Copy {
    service: Arc<Service>,
    policy: Arc<RoutePolicy>,
    client: Arc<crate::upstream::http::HttpClient>,
    head: Vec<u8>,
    ip: std::net::IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Copy {
    async fn send(self) {
        let outcome = match self.exchange().await {
            true => Outcome::MirrorSent,
            false => Outcome::MirrorFailed,
        };
        self.policy.count(outcome);
    }

    /// Sends the copy and reads its answer to the end, within the mirror service's
    /// `response_timeout` for each.
    async fn exchange(&self) -> bool {
        let Some(pool) = self.client.pool() else {
            return false;
        };
        let timeout = self.service.config.response_timeout;
        let mut attempt = H1 {
            pool,
            body: Fixed {
                head: &self.head,
                written: 0,
            },
            head_request: self.head.starts_with(b"HEAD "),
            idempotent: false,
            timeout,
            on_head: |_: &head::Response<'_>| (),
        };
        let none = RoutePolicy::default();
        let Ok(sent) = attempts::send(&self.service, self.ip, None, &mut attempt, &none).await
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

/// A request that is all head.
struct Fixed<'h> {
    head: &'h [u8],
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

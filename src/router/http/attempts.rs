//! Sending a routed request to one of its service's endpoints: the endpoint the affinity
//! cookie names or the scheduler picks, and after a failure the route retries ([`retry`]:
//! by default a failed connect, while the request can be sent again) the next one, within
//! the route's retry budget and whole-request timeout. This is the one retry loop of the
//! HTTP path. Every failure counts for passive health and in the metrics, with the upstream
//! to blame; a retried answer (a 503, say) is dropped unread, which closes its connection.
//!
//! How one attempt is made is an [`Attempt`]: on a pooled HTTP/1.1 connection ([`H1`], for
//! both the fast path and hyper's requests), or through hyper-util's client ([`Hyper`], for
//! `h2c` and `https` services).

use super::reply::{Local, upstream_error};
use super::retry::{self, Replay};
use super::sticky;
use crate::balance::Key;
use crate::http1::head;
use crate::ingress::{Outcome, UpstreamPolicy};
use crate::service_table::{ActiveGuard, Endpoint, Service};
use crate::upstream::blame::{self, Blame};
use crate::upstream::http::{HttpClient, UpstreamBody, UpstreamError};
use crate::upstream::pool::{Exchanged, Pool, RequestBody, SendError};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::time::Duration;

/// One way to send a request to an endpoint.
pub(super) trait Attempt {
    /// What comes back: a response head and what its body is read from.
    type Response;

    /// Sends the request to `endpoint` and waits for the response head.
    async fn send(&mut self, endpoint: &Endpoint) -> Result<Self::Response, UpstreamError>;

    /// Whether the request can be sent again, to another endpoint (it has no body).
    fn replayable(&self) -> bool;

    /// Whether the method may be sent twice.
    fn idempotent(&self) -> bool;

    /// The status of an answer.
    fn status(response: &Self::Response) -> u16;
}

/// A request an endpoint answered.
#[derive(Debug)]
pub(super) struct Sent<'a, R> {
    /// The answer.
    pub response: R,
    /// Who answered.
    pub endpoint: &'a Endpoint,
    /// Counts the endpoint busy until the response is over.
    pub busy: ActiveGuard,
    /// Whether the affinity cookie chose the endpoint (else it is set on the response).
    pub pinned: bool,
}

/// Why no endpoint answered.
#[derive(Debug)]
pub(super) enum Failed {
    /// None could be picked.
    NoEndpoint,
    /// The last one tried failed so.
    Upstream(UpstreamError, SocketAddr),
    /// The route's whole-request timeout passed.
    Deadline,
}

impl Failed {
    /// What the client gets.
    pub(super) fn reply(&self) -> Local {
        match self {
            Failed::NoEndpoint => {
                Local::new(StatusCode::SERVICE_UNAVAILABLE, "no endpoint available\n")
            }
            Failed::Upstream(error, _) => upstream_error(error),
            Failed::Deadline => Local::new(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n"),
        }
    }

    /// The endpoint that failed last.
    pub(super) fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Failed::NoEndpoint | Failed::Deadline => None,
            Failed::Upstream(_, address) => Some(*address),
        }
    }
}

/// Sends with `attempt` to an endpoint of `service` chosen for the affinity key `key` (and
/// the affinity cookie value `sticky`), trying the next one after a failure the route's
/// `policy` retries (see [`retry`]), up to its attempts (else the service's
/// `connect_attempts`) while its budget allows, all within its whole-request timeout.
pub(super) async fn send<'a, A: Attempt>(
    service: &'a Service,
    key: Key,
    sticky: Option<&str>,
    attempt: &mut A,
    policy: &UpstreamPolicy,
) -> Result<Sent<'a, A::Response>, Failed> {
    match policy.config.timeouts.request {
        None => tries(service, key, sticky, attempt, policy).await,
        // Boxed: only routes with a deadline pay for it, and the future of a request without
        // one stays the size of its attempts.
        Some(limit) => tokio::time::timeout(
            limit,
            Box::pin(tries(service, key, sticky, attempt, policy)),
        )
        .await
        .unwrap_or(Err(Failed::Deadline)),
    }
}

/// What the last attempt came to.
enum Last<'a, R> {
    /// An answer a retry may replace.
    Answered(Sent<'a, R>),
    /// A failure, and whether it is retried.
    Failed(UpstreamError, SocketAddr, bool),
}

async fn tries<'a, A: Attempt>(
    service: &'a Service,
    key: Key,
    sticky: Option<&str>,
    attempt: &mut A,
    policy: &UpstreamPolicy,
) -> Result<Sent<'a, A::Response>, Failed> {
    let config = &service.config;
    let retry_policy = policy.config.retry.as_ref();
    let replay = Replay {
        replayable: attempt.replayable(),
        idempotent: attempt.idempotent(),
    };
    let limit = match retry_policy {
        Some(p) => {
            policy.budget.deposit(p.budget_percent, p.min_retries);
            p.attempts.get()
        }
        None => config.connect_attempts.get(),
    };
    // Inline for the usual few attempts: no allocation per request.
    let mut tried: smallvec::SmallVec<[usize; 4]> = smallvec::SmallVec::new();
    let mut last: Option<Last<'a, A::Response>> = None;
    for n in 0..limit {
        if n > 0 && !matches!(last, Some(Last::Answered(_) | Last::Failed(_, _, true))) {
            break;
        }
        let pinned = sticky.and_then(|id| sticky::endpoint(service, id, &tried));
        let Some(i) = pinned.or_else(|| service.pick(key, &tried)) else {
            break;
        };
        if n > 0 && retry_policy.is_some() {
            if !policy.budget.withdraw() {
                policy.count(Outcome::RetryDenied);
                break;
            }
            policy.count(Outcome::RetrySent);
        }
        // A retried answer is dropped here: its connection closes, its body unread.
        drop(last.take());
        tried.push(i);
        let endpoint = &service.endpoints[i];
        let busy = endpoint.state.open();
        match attempt.send(endpoint).await {
            Ok(response) => {
                endpoint.state.record_success();
                let sent = Sent {
                    response,
                    endpoint,
                    busy,
                    pinned: pinned.is_some(),
                };
                let Some(retry) = retry_policy else {
                    return Ok(sent);
                };
                let status = A::status(&sent.response);
                if !retry::after_status(Some(retry), status, replay) {
                    return Ok(sent);
                }
                tracing::debug!(service = %config.name, endpoint = %endpoint.address, status, "retrying an answer");
                last = Some(Last::Answered(sent));
            }
            Err(error) => {
                failed(service, endpoint, &error);
                let again = retry::after_error(retry_policy, &error, replay);
                last = Some(Last::Failed(error, endpoint.address, again));
            }
        }
    }
    match last {
        Some(Last::Answered(sent)) => Ok(sent),
        Some(Last::Failed(error, address, _)) => Err(Failed::Upstream(error, address)),
        None => Err(Failed::NoEndpoint),
    }
}

/// Counts a failed attempt for the endpoint's passive health and in the metrics.
fn failed(service: &Service, endpoint: &Endpoint, error: &UpstreamError) {
    let config = &service.config;
    service.live.metrics.http_upstream_error(error.reason());
    let blame = error.blame();
    // A client whose body broke, or our own lack of descriptors, says nothing about the
    // endpoint's health.
    if blame == Blame::Upstream
        && endpoint
            .state
            .record_failure(config.max_failures, config.failure_backoff)
    {
        service.live.metrics.benched();
    }
    if blame == Blame::Ours {
        blame::warn_exhausted("http upstream connect", error);
    } else {
        tracing::warn!(service = %config.name, endpoint = %endpoint.address, %error,
            blame = blame.label(), "upstream request failed");
    }
}

/// An attempt on a pooled HTTP/1.1 connection: `body` writes the request, `on_head` reads
/// the response head.
pub(super) struct H1<'p, B, F> {
    /// The service's (or the client connection's) pool.
    pub pool: &'p Pool,
    /// Writes the request.
    pub body: B,
    /// A HEAD request (its response has no body).
    pub head_request: bool,
    /// The method may be sent twice.
    pub idempotent: bool,
    /// The deadline of one attempt: the route's `backend_request`, else the service's
    /// `response_timeout`.
    pub timeout: Duration,
    /// Reads the final response head.
    pub on_head: F,
}

impl<B, R, F> Attempt for H1<'_, B, F>
where
    B: RequestBody,
    F: FnMut(&head::Response<'_>) -> R,
{
    type Response = Exchanged<R>;

    async fn send(&mut self, endpoint: &Endpoint) -> Result<Exchanged<R>, UpstreamError> {
        if self.body.can_resend() {
            self.body.rewind();
        }
        let exchange = self.pool.send(
            endpoint.address,
            &mut self.body,
            self.head_request,
            self.idempotent,
            &mut self.on_head,
        );
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(UpstreamError::Timeout(self.timeout)),
            Ok(Ok(exchanged)) => Ok(exchanged),
            Ok(Err(SendError::Connect(e))) => Err(UpstreamError::Connect(e.into())),
            Ok(Err(SendError::Exchange(crate::upstream::pool::ExchangeError::Body(e)))) => {
                Err(UpstreamError::Body(e.into()))
            }
            Ok(Err(e)) => Err(UpstreamError::Request(e.into())),
        }
    }

    fn replayable(&self) -> bool {
        self.body.can_resend()
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    fn status(response: &Exchanged<R>) -> u16 {
        response.reply.status
    }
}

/// An attempt through hyper-util's client (`h2c`, `https`).
pub(super) struct Hyper<'c> {
    /// The service's client.
    pub client: &'c HttpClient,
    /// The request's method, path and (rewritten) fields.
    pub method: Method,
    /// Path and query.
    pub path: PathAndQuery,
    /// The fields to send.
    pub headers: HeaderMap,
    /// The body, until it is sent.
    pub body: Option<UpstreamBody>,
    /// Whether the body is empty (so the request can go to another endpoint).
    pub bodiless: bool,
    /// The `:protocol` of an extended CONNECT (RFC 8441), if it is one.
    pub protocol: Option<hyper::ext::Protocol>,
    /// The method may be sent twice.
    pub idempotent: bool,
    /// The deadline of one attempt: the route's `backend_request`, else the service's
    /// `response_timeout`.
    pub timeout: Duration,
}

impl Attempt for Hyper<'_> {
    type Response = Response<Incoming>;

    async fn send(&mut self, endpoint: &Endpoint) -> Result<Response<Incoming>, UpstreamError> {
        // Fields are copied per attempt only while another attempt is possible.
        let headers = if self.replayable() {
            self.headers.clone()
        } else {
            std::mem::take(&mut self.headers)
        };
        let body = self.body.take().unwrap_or_else(empty);
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.client.uri(&endpoint.authority, self.path.clone());
        *request.version_mut() = self.client.version();
        *request.headers_mut() = headers;
        if let Some(protocol) = &self.protocol {
            request.extensions_mut().insert(protocol.clone());
        }
        self.client.send_hyper(request, self.timeout).await
    }

    fn replayable(&self) -> bool {
        self.bodiless
    }

    fn idempotent(&self) -> bool {
        self.idempotent
    }

    fn status(response: &Response<Incoming>) -> u16 {
        response.status().as_u16()
    }
}

fn empty() -> UpstreamBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

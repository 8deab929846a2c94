//! Sending a routed request to one of its service's endpoints: the endpoint the affinity
//! cookie names or the scheduler picks, and on a failed connect the next one, while the
//! request can be sent again (it has no body). Every failure counts for passive health and in
//! the metrics, with the upstream to blame.
//!
//! How one attempt is made is an [`Attempt`]: on a pooled HTTP/1.1 connection ([`H1`], for
//! both the fast path and hyper's requests), or through hyper-util's client ([`Hyper`], for
//! `h2c` and `https` services).

use super::reply::{Local, upstream_error};
use super::sticky;
use crate::balance::Key;
use crate::http1::head;
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
}

impl Failed {
    /// What the client gets.
    pub(super) fn reply(&self) -> Local {
        match self {
            Failed::NoEndpoint => {
                Local::new(StatusCode::SERVICE_UNAVAILABLE, "no endpoint available\n")
            }
            Failed::Upstream(error, _) => upstream_error(error),
        }
    }

    /// The endpoint that failed last.
    pub(super) fn endpoint(&self) -> Option<SocketAddr> {
        match self {
            Failed::NoEndpoint => None,
            Failed::Upstream(_, address) => Some(*address),
        }
    }
}

/// Sends with `attempt` to an endpoint of `service` chosen for the affinity key `key` (and
/// the affinity cookie value `sticky`), trying the next one after a failed connect while the request can
/// be sent again, up to the service's `connect_attempts`.
pub(super) async fn send<'a, A: Attempt>(
    service: &'a Service,
    key: Key,
    sticky: Option<&str>,
    attempt: &mut A,
) -> Result<Sent<'a, A::Response>, Failed> {
    let config = &service.config;
    let replayable = attempt.replayable();
    let mut attempts_left = if replayable {
        config.connect_attempts.get()
    } else {
        1
    };
    let mut tried: Vec<usize> = Vec::new();
    let mut last = None;
    while attempts_left > 0 {
        attempts_left -= 1;
        let pinned = sticky.and_then(|id| sticky::endpoint(service, id, &tried));
        let Some(i) = pinned.or_else(|| service.pick(key, &tried)) else {
            break;
        };
        tried.push(i);
        let endpoint = &service.endpoints[i];
        let busy = endpoint.state.open();
        match attempt.send(endpoint).await {
            Ok(response) => {
                endpoint.state.record_success();
                return Ok(Sent {
                    response,
                    endpoint,
                    busy,
                    pinned: pinned.is_some(),
                });
            }
            Err(error) => {
                service.live.metrics.http_upstream_error(error.reason());
                let blame = error.blame();
                // A client whose body broke, or our own lack of descriptors, says nothing
                // about the endpoint's health.
                if blame == Blame::Upstream
                    && endpoint
                        .state
                        .record_failure(config.max_failures, config.failure_backoff)
                {
                    service.live.metrics.benched();
                }
                if blame == Blame::Ours {
                    blame::warn_exhausted("http upstream connect", &error);
                } else {
                    tracing::warn!(service = %config.name, endpoint = %endpoint.address, %error,
                        blame = blame.label(), "upstream request failed");
                }
                // Another endpoint would fail the same way when the fault is ours.
                let retry = matches!(error, UpstreamError::Connect(_))
                    && replayable
                    && blame != Blame::Ours;
                last = Some((error, endpoint.address));
                if !retry {
                    break;
                }
            }
        }
    }
    Err(match last {
        Some((error, address)) => Failed::Upstream(error, address),
        None => Failed::NoEndpoint,
    })
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
    /// The service's `response_timeout`.
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
    /// The service's `response_timeout`.
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
        self.client.send_hyper(request, self.timeout).await
    }

    fn replayable(&self) -> bool {
        self.bodiless
    }
}

fn empty() -> UpstreamBody {
    use http_body_util::BodyExt;
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

//! The pooled HTTP client the router forwards requests with: HTTP/1.1 keep-alive, or HTTP/2
//! over plain TCP (`h2c`, one multiplexed connection per endpoint) for gRPC services.
//!
//! hyper-util's client keeps idle keep-alive connections per `scheme://authority`, and the
//! router always addresses an endpoint by `ip:port`, so the pool is per endpoint. There is one
//! client per service (kept in the service's live state, so endpoint changes never throw the
//! pool away); it is rebuilt only when the service's connect timeout changes.
//!
//! Errors carry their blame: a failed connect (retryable on another endpoint: nothing was
//! sent) and a timeout waiting for response headers are upstream's fault (502 / 504).

use crate::config::UpstreamProtocol;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::time::Duration;

/// Body of a request sent upstream: the client's streaming body (possibly length-limited), or
/// nothing (which can be sent again to another endpoint).
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// The error type of [`UpstreamBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Idle pooled connections are closed after this long (endpoints commonly time out at 60 s+).
const POOL_IDLE: Duration = Duration::from_secs(50);
/// Most idle connections kept per endpoint.
const POOL_MAX_IDLE: usize = 256;

/// A pooled client for one service.
#[derive(Debug, Clone)]
pub struct HttpClient {
    connect_timeout: Duration,
    protocol: UpstreamProtocol,
    client: Client<HttpConnector, UpstreamBody>,
}

/// Why a request got no response from upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made; nothing was sent, so another endpoint may be tried.
    #[error("connect failed: {0}")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// No response headers within the deadline.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The exchange failed after the request was (maybe) sent.
    #[error("request failed: {0}")]
    Request(#[source] hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Request(_) => "request",
        }
    }
}

impl HttpClient {
    /// A client speaking `protocol` whose connects give up after `connect_timeout`.
    pub fn new(connect_timeout: Duration, protocol: UpstreamProtocol) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .http2_only(protocol == UpstreamProtocol::H2c)
            .build(connector);
        Self {
            connect_timeout,
            protocol,
            client,
        }
    }

    /// Whether this client was built with these settings.
    pub fn fits(&self, connect_timeout: Duration, protocol: UpstreamProtocol) -> bool {
        self.connect_timeout == connect_timeout && self.protocol == protocol
    }

    /// The HTTP version requests sent with this client carry.
    pub fn version(&self) -> http::Version {
        match self.protocol {
            UpstreamProtocol::Http1 => http::Version::HTTP_11,
            UpstreamProtocol::H2c => http::Version::HTTP_2,
        }
    }

    /// Sends `request` (whose URI names the endpoint) and waits for response headers.
    pub async fn send(
        &self,
        request: Request<UpstreamBody>,
        response_timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        match tokio::time::timeout(response_timeout, self.client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(response_timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(e)),
            Ok(Err(e)) => Err(UpstreamError::Request(e)),
        }
    }
}

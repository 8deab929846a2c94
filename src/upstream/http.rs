//! The pooled HTTP client the router forwards requests with: HTTP/1.1 keep-alive, or HTTP/2
//! over plain TCP (`h2c`, one multiplexed connection per endpoint) for gRPC services, or
//! either over TLS (`https`: ALPN http/1.1; `h2`: ALPN h2, gRPC over TLS; see [`super::trust`]).
//!
//! Plain HTTP/1.1 (the common case) goes through [`super::pool`], our own per-endpoint pool of
//! connections spoken to with [`crate::http1`]; `h2c`, `https` and `h2` use
//! hyper-util's client, which keeps its connections per `scheme://authority`, so both pools
//! are per endpoint. There is one client per service (kept in the service's live state, so
//! endpoint changes never throw the pool away); it is rebuilt only when the service's client
//! settings change.
//!
//! Errors carry their blame: a failed connect (retryable on another endpoint: nothing was
//! sent) and a timeout waiting for response headers are upstream's fault (502 / 504).
//!
//! PROXY protocol to HTTP endpoints: a PROXY header names one client, so a connection that
//! carries one must never serve another client's requests. Like HAProxy's `send-proxy` (which
//! makes such connections private), a service with `proxy_protocol = "v2"` gets a client per
//! downstream connection ([`HttpClient::with_proxy_header`]) whose connector writes that
//! client's header first; its small pool lives and dies with the downstream connection.

use super::blame::{self, Blame};
use super::pool::{POOL_IDLE, POOL_MAX_IDLE, Pool};
use crate::config::UpstreamProtocol;
use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_rustls::{
    DefaultServerNameResolver, FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder,
    ResolveServerName,
};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Body of a request sent upstream: the client's streaming body (possibly length-limited), or
/// nothing (which can be sent again to another endpoint).
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// The error type of [`UpstreamBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a service's client is built from; a change rebuilds it (and its pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Connect deadline.
    pub connect_timeout: Duration,
    /// Protocol to the endpoints.
    pub protocol: UpstreamProtocol,
    /// `https`/`h2`: the CA(s) that sign the endpoints' certificates.
    pub ca: Option<crate::config::Trust>,
    /// `https`/`h2`: name to send as SNI and verify the certificate against (default: the
    /// endpoint's IP address).
    pub sni: Option<String>,
    /// `https`/`h2`: names verified instead of the SNI (see `upstream::verify_names`).
    pub verify_names: Vec<crate::config::SubjectName>,
    /// `https`: check the endpoints' certificates (`false`: encryption only, see
    /// `upstream::unverified`).
    pub verify: bool,
}

impl ClientSettings {
    /// The client settings of a service.
    pub fn of(c: &crate::config::ServiceConfig) -> Self {
        ClientSettings {
            connect_timeout: c.connect_timeout,
            protocol: c.upstream_protocol,
            ca: c.upstream_ca.clone(),
            sni: c.upstream_sni.clone(),
            verify_names: c.upstream_verify_names.clone(),
            verify: c.upstream_verify,
        }
    }

    /// Whether these are the settings of `c` (checked per request: compares, never copies).
    pub fn is_for(&self, c: &crate::config::ServiceConfig) -> bool {
        self.connect_timeout == c.connect_timeout
            && self.protocol == c.upstream_protocol
            && self.ca == c.upstream_ca
            && self.sni == c.upstream_sni
            && self.verify_names == c.upstream_verify_names
            && self.verify == c.upstream_verify
    }
}

/// A pooled client for one service.
#[derive(Debug)]
pub struct HttpClient {
    settings: ClientSettings,
    tls: rustls::ClientConfig,
    via: Via,
}

/// Which pool a client's requests go through.
#[derive(Debug)]
enum Via {
    /// Plain HTTP/1.1: our own pool.
    Pool(Pool),
    /// `h2c` and `https`: hyper-util's pooled client.
    Legacy(Box<Client<HttpsConnector<Connector>, UpstreamBody>>),
}

/// hyper-util's TCP connector, plus an optional PROXY protocol header written on every new
/// connection before anything else (before TLS, too).
#[derive(Debug, Clone)]
pub struct Connector {
    tcp: HttpConnector,
    proxy_header: Option<Arc<[u8]>>,
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.tcp.call(uri);
        let header = self.proxy_header.clone();
        Box::pin(async move {
            let mut io = connecting.await?;
            if let Some(header) = header {
                io.inner_mut().write_all(&header).await?;
            }
            Ok(io)
        })
    }
}

/// Why a client could not be built (an `https` service's CA or SNI is unusable).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The CAs could not be read or hold no certificate.
    #[error("upstream CA {what}: {reason}")]
    Ca {
        /// The file (or "(inline PEM)", "(system roots)").
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// `https` or `h2` without a CA to verify the endpoints with.
    #[error("a tls upstream_protocol needs upstream_ca")]
    NoCa,
    /// rustls refused to build the verifier.
    #[error("upstream certificate verifier: {0}")]
    Verifier(String),
    /// The SNI is not a valid server name.
    #[error("invalid upstream_sni {0:?}")]
    Sni(String),
    /// The PROXY header could not be built.
    #[error("proxy protocol header: {0}")]
    ProxyHeader(String),
    /// rustls refused the configuration.
    #[error("tls client config: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request got no response from upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made; nothing was sent, so another endpoint may be tried.
    #[error("connect failed: {0}")]
    Connect(#[source] BoxError),
    /// No response headers within the deadline.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The exchange failed after the request was (maybe) sent.
    #[error("request failed: {0}")]
    Request(#[source] BoxError),
    /// The client's request body failed while it was sent (the client went away, broke its
    /// chunked framing, or went over the route's `max_body_bytes`).
    #[error("request body: {0}")]
    Body(#[source] BoxError),
}

impl UpstreamError {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        if self.blame() == Blame::Ours {
            return blame::LOCAL_RESOURCES;
        }
        match self {
            UpstreamError::Connect(_) => "connect",
            UpstreamError::Timeout(_) => "timeout",
            UpstreamError::Request(_) => "request",
            UpstreamError::Body(_) => "request_body",
        }
    }

    /// Who is at fault: the client (its request body), this proxy (out of descriptors,
    /// memory or ports: see [`blame`]), or the endpoint.
    pub fn blame(&self) -> Blame {
        match self {
            UpstreamError::Body(_) => Blame::Client,
            UpstreamError::Connect(e) | UpstreamError::Request(e)
                if blame::caused_by_exhaustion(&**e) =>
            {
                Blame::Ours
            }
            _ => Blame::Upstream,
        }
    }
}

impl HttpClient {
    /// A client for `settings`.
    pub fn new(settings: ClientSettings) -> Result<Self, ClientError> {
        let tls = super::trust::tls_config(&settings)?;
        Self::build(settings, tls, None)
    }

    /// A client like this one whose connections start with `proxy_header` (see the module
    /// docs); for one downstream connection only.
    pub fn with_proxy_header(&self, proxy_header: Vec<u8>) -> Result<Self, ClientError> {
        Self::build(
            self.settings.clone(),
            self.tls.clone(),
            Some(proxy_header.into()),
        )
    }

    fn build(
        settings: ClientSettings,
        tls: rustls::ClientConfig,
        proxy_header: Option<Arc<[u8]>>,
    ) -> Result<Self, ClientError> {
        if settings.protocol == UpstreamProtocol::Http1 {
            let pool = Pool::new(settings.connect_timeout, proxy_header);
            return Ok(Self {
                settings,
                tls,
                via: Via::Pool(pool),
            });
        }
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(settings.connect_timeout));
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let tcp = Connector { tcp, proxy_header };
        let alpn: &[u8] = match settings.protocol {
            UpstreamProtocol::Https => b"http/1.1",
            UpstreamProtocol::H2 => b"h2",
            UpstreamProtocol::Http1 | UpstreamProtocol::H2c => b"",
        };
        let connector = if !alpn.is_empty() {
            // ALPN offers exactly the one protocol the service speaks.
            let mut tls = tls.clone();
            tls.alpn_protocols = vec![alpn.to_vec()];
            let resolver: Arc<dyn ResolveServerName + Send + Sync> = match &settings.sni {
                Some(sni) => Arc::new(FixedServerNameResolver::new(
                    rustls::pki_types::ServerName::try_from(sni.clone())
                        .map_err(|_| ClientError::Sni(sni.clone()))?,
                )),
                None => Arc::new(DefaultServerNameResolver::default()),
            };
            HttpsConnector::new(tcp, tls, true, resolver)
        } else {
            HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_all_versions()
                .wrap_connector(tcp)
        };
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .http2_only(matches!(
                settings.protocol,
                UpstreamProtocol::H2c | UpstreamProtocol::H2
            ))
            .build(connector);
        Ok(Self {
            settings,
            tls,
            via: Via::Legacy(Box::new(client)),
        })
    }

    /// The settings this client was built with.
    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The HTTP version requests sent with this client carry.
    pub fn version(&self) -> http::Version {
        match self.settings.protocol {
            UpstreamProtocol::Http1 | UpstreamProtocol::Https => http::Version::HTTP_11,
            UpstreamProtocol::H2c | UpstreamProtocol::H2 => http::Version::HTTP_2,
        }
    }

    /// The URI of a request for `path` sent to the endpoint at `authority`: origin-form on
    /// our HTTP/1.1 connections, absolute (naming the endpoint) for hyper-util's client.
    pub fn uri(&self, authority: &http::uri::Authority, path: http::uri::PathAndQuery) -> Uri {
        let mut uri = http::uri::Parts::default();
        uri.path_and_query = Some(path);
        match self.settings.protocol {
            UpstreamProtocol::Http1 => {}
            UpstreamProtocol::Https | UpstreamProtocol::H2 => {
                uri.scheme = Some(http::uri::Scheme::HTTPS);
                uri.authority = Some(authority.clone());
            }
            UpstreamProtocol::H2c => {
                uri.scheme = Some(http::uri::Scheme::HTTP);
                uri.authority = Some(authority.clone());
            }
        }
        // Every part is valid and a path is always present (a scheme only with an
        // authority), so this cannot fail; an empty URI would only make the send fail.
        Uri::from_parts(uri).unwrap_or_default()
    }

    /// The pool of plain HTTP/1.1 connections, for a service that speaks `http1`.
    pub fn pool(&self) -> Option<&Pool> {
        match &self.via {
            Via::Pool(pool) => Some(pool),
            Via::Legacy(_) => None,
        }
    }

    /// Sends `request` (whose URI came from [`HttpClient::uri`]) through hyper-util's client
    /// (`h2c`, `https`) and waits for the response headers.
    pub async fn send_hyper(
        &self,
        request: Request<UpstreamBody>,
        response_timeout: Duration,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let Via::Legacy(client) = &self.via else {
            return Err(UpstreamError::Request(
                "no hyper client for an http1 service".into(),
            ));
        };
        match tokio::time::timeout(response_timeout, client.request(request)).await {
            Err(_) => Err(UpstreamError::Timeout(response_timeout)),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_connect() => Err(UpstreamError::Connect(e.into())),
            Ok(Err(e)) => Err(UpstreamError::Request(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ClientSettings;
    use crate::config::{ServiceConfig, UpstreamProtocol};

    #[test]
    fn settings_match_their_service_until_a_client_setting_changes() {
        let mut c = ServiceConfig::with_defaults("s".into());
        let settings = ClientSettings::of(&c);
        assert!(settings.is_for(&c));
        c.idle_timeout *= 2; // not a client setting
        assert!(settings.is_for(&c));
        for change in [
            |c: &mut ServiceConfig| c.connect_timeout *= 2,
            |c: &mut ServiceConfig| c.upstream_protocol = UpstreamProtocol::H2c,
            |c: &mut ServiceConfig| c.upstream_sni = Some("x".into()),
            |c: &mut ServiceConfig| c.upstream_ca = Some(crate::config::Trust::System),
            |c: &mut ServiceConfig| {
                c.upstream_verify_names = vec![crate::config::SubjectName::Dns("n".into())]
            },
            |c: &mut ServiceConfig| c.upstream_verify = false,
        ] {
            let mut changed = c.clone();
            change(&mut changed);
            assert!(!settings.is_for(&changed));
            assert!(ClientSettings::of(&changed).is_for(&changed));
        }
    }
}

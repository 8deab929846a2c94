//! One HTTP request: route, forward, answer. Errors carry blame: the client's (400, 404, 413,
//! 421), upstream's (502, 504) or the table's (503: no usable endpoint).

use super::record::{CountIn, Record, ResponseBody, Tracked};
use super::reply::{redirect_https, status, upstream_error};
use super::sticky;
use crate::config::AccessLog;
use crate::ingress::{Hostname, Lookup, RouteTarget};
use crate::router::forward::{self, Origin};
use crate::service_table::{Service, Snapshot, TableHandle};
use crate::telemetry::metrics::HttpMetrics;
use crate::tls::CertStore;
use crate::upstream::http::{BoxError, HttpClient, UpstreamBody, UpstreamError};
use arc_swap::ArcSwap;
use futures::future::Either;
use http::header::{CONTENT_LENGTH, HOST};
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::{Body, Incoming};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// What a request handler knows about its connection.
#[derive(Debug)]
pub struct Conn {
    /// The client (after PROXY protocol, if any).
    pub client: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
    /// The listener's name.
    pub listener: Arc<str>,
    /// TLS server name the client sent, if TLS.
    pub sni: Option<String>,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The listener's certificates (TLS listeners), for the SNI/Host check.
    pub certs: Option<Arc<ArcSwap<CertStore>>>,
    /// The live table.
    pub table: Arc<TableHandle>,
    /// The client's address and port as header values.
    pub forwarding: forward::ClientHeaders,
    /// Upstream clients private to this connection (services that send PROXY headers).
    pub private: super::clients::Private,
}

const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

/// Handles one request; never fails (errors become responses). The request is counted and
/// logged when its response body is over (see [`super::record`]).
///
/// Every request's future is this one, moved into hyper's connection (and, for HTTP/2, into
/// a task), so it is kept small: routing is synchronous ([`prepare`]), and no `async fn`
/// layer keeps a second copy of the request beside the future it awaits.
#[allow(
    clippy::manual_async_fn,
    reason = "an async fn would keep a second copy of the request in its state"
)]
pub fn handle(
    req: Request<Incoming>,
    conn: Arc<Conn>,
) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send {
    async move {
        let started = Instant::now();
        let snapshot = conn.table.load_full();
        let method = req.method().clone();
        let authority = authority(&req);
        // What only the access log needs is not gathered when it is off.
        let logging = snapshot.http.access_log != AccessLog::Off;
        let host = authority
            .as_ref()
            .filter(|_| logging)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let path = if logging {
            req.uri().path().to_owned()
        } else {
            String::new()
        };
        let bytes_in = logging.then(|| Arc::new(AtomicU64::new(0)));
        let mut log = LogInfo::default();
        // One future either way, moved whole into the await, so that no partly moved value
        // stays in this future's state while it waits.
        let exchange = match prepare(req, &conn, &snapshot, authority, &bytes_in, &mut log) {
            Ok(forward) => Either::Left(forward_request(forward, &conn)),
            Err(response) => Either::Right(std::future::ready((response, None))),
        };
        let (mut response, upstream) = exchange.await;
        log.upstream = upstream;
        let record = Record {
            started,
            client: conn.client,
            listener: Arc::clone(&conn.listener),
            method,
            host,
            path,
            status: response.status(),
            service: log.service,
            upstream: log.upstream,
            request_id: log.request_id,
            bytes_in,
            metrics: log.metrics.unwrap_or_else(HttpMetrics::unrouted),
            format: snapshot.http.access_log,
        };
        response.body_mut().finish_with(record);
        Ok(response)
    }
}

/// What the access log wants to know beyond the request line.
#[derive(Default)]
struct LogInfo {
    service: Option<Arc<str>>,
    /// The route's metric handles.
    metrics: Option<Arc<HttpMetrics>>,
    upstream: Option<SocketAddr>,
    request_id: Option<HeaderValue>,
}

/// The request's authority: the URI's (HTTP/2, absolute-form) or the Host header, as the
/// header value the endpoint will get (the client's own Host value when it is the same).
fn authority(req: &Request<Incoming>) -> Option<HeaderValue> {
    let host = req.headers().get(HOST);
    match req.uri().authority() {
        Some(a) => match host {
            Some(v) if v.as_bytes() == a.as_str().as_bytes() => Some(v.clone()),
            _ => HeaderValue::from_str(a.as_str()).ok(),
        },
        None => host.cloned(),
    }
}

/// Routes the request and readies it for the endpoint, or answers it here (redirects and
/// errors). Fills in what the access log wants as it learns it.
#[allow(
    clippy::result_large_err,
    reason = "the answer is returned once per request, and is no larger than the Ok side"
)]
fn prepare<'a>(
    mut req: Request<Incoming>,
    conn: &Conn,
    snapshot: &'a Snapshot,
    authority: Option<HeaderValue>,
    bytes_in: &Option<Arc<AtomicU64>>,
    log: &mut LogInfo,
) -> Result<Forward<'a>, Response<ResponseBody>> {
    let parsed = authority.and_then(|value| {
        let host = Hostname::from_authority(value.to_str().ok()?)?;
        Some((host, value))
    });
    let Some((host, host_value)) = parsed else {
        return Err(status(StatusCode::BAD_REQUEST, "missing or invalid Host\n"));
    };
    if misdirected(conn, &host) {
        return Err(status(
            StatusCode::MISDIRECTED_REQUEST,
            "TLS server name does not match Host\n",
        ));
    }
    let routes = &snapshot.http;
    let path = req.uri().path();
    let target = match routes.lookup(Some(&host), path) {
        Lookup::Matched { backend, .. }
        | Lookup::HostDefault(backend)
        | Lookup::Default(backend) => Some(backend),
        Lookup::NoHost | Lookup::NoPath => None,
    };
    if let Some(t) = target {
        log.metrics = Some(routes.metrics(t));
        if !t.allows(conn.client.ip()) {
            return Err(status(StatusCode::FORBIDDEN, "forbidden\n"));
        }
    }
    let redirect = target.map_or_else(|| routes.redirects(&host), |t| t.redirect_https);
    if redirect && !conn.tls && !path.starts_with(ACME_PREFIX) {
        return Err(redirect_https(host.as_str(), req.uri()));
    }
    let Some(target) = target else {
        return Err(status(
            StatusCode::NOT_FOUND,
            "no route for this host and path\n",
        ));
    };
    log.service = Some(Arc::clone(&target.service));
    let Some(service) = snapshot.service(&target.service) else {
        return Err(status(
            StatusCode::SERVICE_UNAVAILABLE,
            "service not available\n",
        ));
    };
    if let Some(resp) = too_large(&req, target) {
        return Err(resp);
    }
    log.request_id = Some(forward::ensure_request_id(req.headers_mut()));
    let origin = Origin {
        conn: &conn.forwarding,
        trusted: routes.trusts(conn.client.ip()),
        proto: if conn.tls { "https" } else { "http" },
        host: &host_value,
    };
    let upgrade =
        super::upgrade::requested(&req).map(|value| (value, hyper::upgrade::on(&mut req)));
    let (parts, body) = req.into_parts();
    let body = CountIn::new(body, bytes_in.clone());
    let mut headers = parts.headers;
    forward::remove_hop_by_hop(&mut headers);
    if let Some((value, _)) = &upgrade {
        super::upgrade::restore(&mut headers, value);
    }
    forward::set_forwarding(&mut headers, &origin, routes.forwarded);
    // The request was routed (and checked against the certificate) by this authority, so
    // this is the Host the endpoint gets, even if the client also sent a different Host
    // header (RFC 9112 §3.2.2, RFC 9113 §8.3.1).
    headers.insert(HOST, host_value);
    let sticky = target.sticky_cookie.as_ref().map(|name| {
        (
            Arc::clone(name),
            sticky::cookie(&headers, name).map(str::to_owned),
        )
    });
    let head = UpstreamHead {
        sticky,
        method: parts.method,
        uri: parts.uri,
        headers,
        upgrade: upgrade.map(|(_, on)| on),
    };
    Ok(Forward {
        head,
        body,
        target,
        service,
    })
}

/// The parts of the request every attempt reuses.
struct UpstreamHead {
    /// The route's affinity cookie name, and its value in the request.
    sticky: Option<(Arc<str>, Option<String>)>,
    method: Method,
    uri: Uri,
    headers: http::HeaderMap,
    /// The client side of a requested protocol upgrade.
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

/// A routed request, ready to go to one of the service's endpoints.
struct Forward<'a> {
    head: UpstreamHead,
    body: CountIn<Incoming>,
    target: &'a RouteTarget,
    service: &'a Arc<Service>,
}

/// Sends the request to an endpoint, trying the next one when the connect fails and the body
/// can be sent again (it was empty).
fn forward_request<'a>(
    forward: Forward<'a>,
    conn: &'a Conn,
) -> impl Future<Output = (Response<ResponseBody>, Option<SocketAddr>)> + 'a {
    // Unpacked before the `async` block, which then holds each part once.
    let Forward {
        mut head,
        body,
        target,
        service,
    } = forward;
    async move {
        let config = &service.config;
        let client = match super::clients::client_for(service, conn) {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(service = %config.name, %error, blame = "config", "no upstream client");
                return (
                    status(StatusCode::BAD_GATEWAY, "upstream not usable\n"),
                    None,
                );
            }
        };
        let replayable = body.is_end_stream();
        // Headers are cloned per attempt only while another attempt is possible.
        let mut attempts_left = if replayable {
            config.connect_attempts.get()
        } else {
            1
        };
        let mut body = Some(limit(body, target.max_body_bytes));
        let mut tried: Vec<usize> = Vec::new();
        let mut last = None;
        while attempts_left > 0 {
            attempts_left -= 1;
            let pinned = match &head.sticky {
                Some((_, Some(id))) => sticky::endpoint(service, id, &tried),
                _ => None,
            };
            let Some(i) = pinned.or_else(|| service.pick(conn.client.ip(), &tried)) else {
                break;
            };
            tried.push(i);
            let endpoint = &service.endpoints[i];
            let headers = if attempts_left > 0 {
                head.headers.clone()
            } else {
                std::mem::take(&mut head.headers)
            };
            let request = build(&head, headers, endpoint, body.take(), &client);
            let busy = endpoint.state.open();
            match client
                .send(endpoint.address, request, config.response_timeout)
                .await
            {
                Ok(mut response) => {
                    endpoint.state.record_success();
                    let switched_to = response.headers().get(http::header::UPGRADE).cloned();
                    forward::remove_hop_by_hop(response.headers_mut());
                    if let Some(client_side) = head.upgrade.take() {
                        super::upgrade::tunnel(
                            client_side,
                            &mut response,
                            switched_to,
                            &config.name,
                        );
                    }
                    if let Some((name, _)) = &head.sticky
                        && pinned.is_none()
                    {
                        sticky::set(response.headers_mut(), name, endpoint);
                    }
                    let response = response.map(|body| Tracked::upstream(body, busy));
                    return (response, Some(endpoint.address));
                }
                Err(error) => {
                    service.live.metrics.http_upstream_error(error.reason());
                    if endpoint
                        .state
                        .record_failure(config.max_failures, config.failure_backoff)
                    {
                        service.live.metrics.benched();
                    }
                    let retry = matches!(error, UpstreamError::Connect(_)) && replayable;
                    tracing::warn!(service = %config.name, endpoint = %endpoint.address, %error,
                    blame = "upstream", "upstream request failed");
                    last = Some((error, endpoint.address));
                    if !retry {
                        break;
                    }
                }
            }
        }
        match last {
            Some((error, address)) => (upstream_error(&error), Some(address)),
            None => (
                status(StatusCode::SERVICE_UNAVAILABLE, "no endpoint available\n"),
                None,
            ),
        }
    }
}

/// The request for one attempt. `body` is the client's body on the first attempt and `None`
/// on a retry, which only happens for requests without a body.
fn build(
    head: &UpstreamHead,
    headers: http::HeaderMap,
    endpoint: &crate::service_table::Endpoint,
    body: Option<UpstreamBody>,
    client: &HttpClient,
) -> Request<UpstreamBody> {
    let path = head
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let body = body.unwrap_or_else(|| Empty::new().map_err(|never| match never {}).boxed());
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = client.uri(&endpoint.authority, path);
    *req.version_mut() = client.version();
    *req.headers_mut() = headers;
    req
}

fn limit(body: CountIn<Incoming>, max: Option<u64>) -> UpstreamBody {
    match max {
        Some(max) => Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX)).boxed(),
        None => body.map_err(|e| Box::new(e) as BoxError).boxed(),
    }
}

/// 413 when the declared length is over the route's limit (a chunked body that goes over is
/// cut by [`limit`] while streaming).
fn too_large(req: &Request<Incoming>, target: &RouteTarget) -> Option<Response<ResponseBody>> {
    let max = target.max_body_bytes?;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse::<u64>()
        .ok()?;
    (declared > max).then(|| status(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n"))
}

/// 421 when the client reached us with the certificate of one name but asks for another name
/// that has a certificate of its own (a connection reused across hosts it must not be).
fn misdirected(conn: &Conn, host: &Hostname) -> bool {
    let (Some(certs), Some(sni)) = (&conn.certs, &conn.sni) else {
        return false;
    };
    if sni.eq_ignore_ascii_case(host.as_str()) {
        return false;
    }
    let store = certs.load();
    match (store.for_host(host.as_str()), store.for_sni(Some(sni))) {
        (Some(wanted), Some(used)) => !Arc::ptr_eq(wanted, &used),
        _ => false,
    }
}

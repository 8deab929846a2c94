//! One HTTP request that hyper serves (HTTP/2, and the HTTP/1.x requests the fast path in
//! [`super::h1`] hands over) or HTTP/3 serves ([`crate::router::http3`]): route, forward,
//! answer. Errors become responses (see [`super::route`] and [`super::reply`] for who is to
//! blame).
//!
//! The handler is generic over the request body ([`ClientBody`]: hyper's `Incoming`, or an
//! HTTP/3 stream's), so every version goes through this one preparation; each body type gets
//! its own copy of the code, so hyper's path pays nothing for the other.

mod send;

use super::conn::Conn;
use super::prepare::{self, Ready};
use super::record::{CountIn, Record, ResponseBody};
use super::route::{Asked, LogInfo};
use super::{mirror, reply::Local, upgrade};
use crate::config::AccessLog;
use crate::forward::{self, map_pairs};
use crate::policy::cors::{CorsAsk, LazyAsk};
use crate::service_table::{Service, Snapshot};
use crate::telemetry::metrics::HttpMetrics;
use crate::upstream::http::{BoxError, HttpClient, UpstreamBody};
use crate::upstream::pool::EncodeBody;
use futures::future::Either;
use http::header::{CONTENT_LENGTH, COOKIE, HOST};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use send::forward_request;
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

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
pub fn handle<B: ClientBody>(
    req: Request<B>,
    conn: Arc<Conn>,
    snapshot: Option<Arc<Snapshot>>,
) -> impl Future<Output = Result<Response<ResponseBody>, Infallible>> + Send {
    async move {
        let started = Instant::now();
        // A request the fast path handed over took its rate-limit token there.
        let handed_over = snapshot.is_some();
        let snapshot = snapshot.unwrap_or_else(|| conn.table.load_full());
        let method = req.method().clone();
        let version = req.version();
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
        let routed = prepare(
            req,
            &conn,
            &snapshot,
            authority,
            &bytes_in,
            &mut log,
            handed_over,
        );
        let exchange = match routed {
            Ok(forward) => Either::Left(forward_request(
                forward,
                &conn,
                log.policy.as_mut().and_then(|p| p.cors.take()),
            )),
            Err(local) => Either::Right(std::future::ready((local.into_response(), None))),
        };
        let (mut response, upstream) = exchange.await;
        if method == Method::HEAD {
            // hyper leaves out an HTTP/1.1 body on a HEAD, but HTTP/2 would send it as DATA.
            if let Some(len) = response.body_mut().drop_local() {
                response
                    .headers_mut()
                    .insert(CONTENT_LENGTH, HeaderValue::from(len));
            }
        }
        log.upstream = upstream;
        let record = Record {
            started,
            client: conn.client,
            listener: Arc::clone(&conn.listener),
            method,
            version,
            host,
            path,
            status: response.status(),
            service: log.service,
            upstream: log.upstream,
            request_id: log.request_id,
            bytes_in,
            metrics: log.metrics.unwrap_or_else(HttpMetrics::unrouted),
            format: snapshot.http.access_log,
            held: log.policy.and_then(|p| p.held),
        };
        response.body_mut().finish_with(record);
        if let Some(alt_svc) = &conn.alt_svc {
            response
                .headers_mut()
                .insert(http::header::ALT_SVC, alt_svc.clone());
        }
        Ok(response)
    }
}

/// The request's authority: the URI's (HTTP/2, absolute-form) or the Host header, as the
/// header value the endpoint will get (the client's own Host value when it is the same).
fn authority<B>(req: &Request<B>) -> Option<HeaderValue> {
    let host = req.headers().get(HOST);
    match req.uri().authority() {
        Some(a) => match host {
            Some(v) if v.as_bytes() == a.as_str().as_bytes() => Some(v.clone()),
            _ => HeaderValue::from_str(a.as_str()).ok(),
        },
        None => host.cloned(),
    }
}

/// A routed request, ready to go to one of the service's endpoints.
struct Forward<'a> {
    service: &'a Arc<Service>,
    client: Arc<HttpClient>,
    method: Method,
    /// The method may be sent twice.
    idempotent: bool,
    /// The affinity cookie value the request carries, for a route that has one.
    sticky: Option<(Arc<str>, Option<String>)>,
    /// What a hashing scheduler hashes.
    key: crate::balance::Key,
    /// The route's response header edits.
    response_headers: Option<&'a crate::forward::edits::HeaderEdits>,
    /// The client side of a requested protocol upgrade.
    upgrade: Option<upgrade::ClientSide>,
    outgoing: Outgoing,
    /// The route's retries and timeouts.
    policy: Arc<crate::ingress::UpstreamPolicy>,
}

/// The request as it goes out, by the way the service is reached.
enum Outgoing {
    /// A pooled HTTP/1.1 connection: the head is written once, for every attempt.
    H1(EncodeBody),
    /// hyper-util's client.
    Hyper {
        path: PathAndQuery,
        headers: HeaderMap,
        body: UpstreamBody,
        bodiless: bool,
        /// The `:protocol` of an extended CONNECT passed on.
        protocol: Option<hyper::ext::Protocol>,
    },
}

/// Routes the request and readies it for the endpoint, or says what to answer here.
fn prepare<'a, B: ClientBody>(
    mut req: Request<B>,
    conn: &Conn,
    snapshot: &'a Snapshot,
    authority: Option<HeaderValue>,
    bytes_in: &Option<Arc<AtomicU64>>,
    log: &mut LogInfo,
    handed_over: bool,
) -> Result<Forward<'a>, Local> {
    let cors = || CorsAsk::from_fields(map_pairs(req.headers()));
    let asked = Asked {
        method: upgrade::routed_method(&req),
        authority: authority.as_ref().and_then(|v| v.to_str().ok()),
        target: req.uri().path_and_query().map_or("/", |p| p.as_str()),
        length: declared_length(req.headers()),
        cors: LazyAsk::new(&cors),
        handed_over,
        fields: req.headers(),
    };
    let cookies = req.headers().get_all(COOKIE);
    let Ready {
        target,
        service,
        forward,
        client,
        sticky,
        idempotent,
        key,
    } = prepare::prepare(
        conn,
        snapshot,
        &asked,
        cookies.iter().map(HeaderValue::as_bytes),
        || map_pairs(req.headers()),
        log,
    )?;
    // The target goes on as normalised; unchanged, it is the request's own (no copy).
    let path = match forward {
        Cow::Borrowed(_) => None,
        Cow::Owned(target) => Some(
            PathAndQuery::try_from(target)
                .map_err(|_| Local::new(StatusCode::BAD_REQUEST, "invalid request target\n"))?,
        ),
    };
    let mut upgrade = upgrade::requested(&mut req, service)?;
    // An `h2c` service takes an HTTP/2 WebSocket as the extended CONNECT it is.
    let connect = client.version() == Version::HTTP_2
        && upgrade
            .as_mut()
            .is_some_and(|u| u.client.connect_upstream());
    let (parts, body) = req.into_parts();
    let bodiless = body.is_end_stream();
    let body = limit(CountIn::new(body, bytes_in.clone()), target.max_body_bytes);
    let host = authority.as_ref().map_or(&b""[..], HeaderValue::as_bytes);
    let h1 = client.pool().is_some();
    let rw = prepare::rewrite(
        conn,
        snapshot,
        target,
        host,
        !h1,
        upgrade
            .as_ref()
            .filter(|_| !connect)
            .map(|u| u.value.as_bytes()),
        forward::connection_options(map_pairs(&parts.headers)),
    );
    let path = path.unwrap_or_else(|| {
        parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"))
    });
    let fields = || map_pairs(&parts.headers);
    let upgrading = upgrade.is_some();
    let (outgoing, id) = if h1 {
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(parts.method.as_str().as_bytes());
        head.push(b' ');
        head.extend_from_slice(path.as_str().as_bytes());
        head.extend_from_slice(b" HTTP/1.1\r\n");
        let id = forward::request(fields, &rw, &mut head);
        let body = mirror::copy(conn, snapshot, target, body, upgrading, || head.clone());
        let logged = log_id(bytes_in, id);
        (
            Outgoing::H1(EncodeBody::new(head, &parts.method, body)),
            logged,
        )
    } else {
        let mut headers = HeaderMap::new();
        let id = forward::request(fields, &rw, &mut headers);
        let protocol = connect.then(|| upgrade::connect::to_connect(&mut headers));
        let body = mirror::copy(conn, snapshot, target, body, upgrading, || {
            mirror::head_of(&parts.method, path.as_str(), &headers)
        });
        let logged = log_id(bytes_in, id);
        (
            Outgoing::Hyper {
                path,
                headers,
                body,
                bodiless,
                protocol,
            },
            logged,
        )
    };
    log.request_id = id;
    Ok(Forward {
        service,
        client,
        method: if connect {
            Method::CONNECT
        } else {
            parts.method
        },
        idempotent,
        sticky,
        key,
        response_headers: target
            .filters
            .as_deref()
            .and_then(|f| f.response_headers.as_ref()),
        upgrade: upgrade.map(|u| u.client),
        outgoing,
        policy: Arc::clone(&target.upstream),
    })
}

/// The request id for the access log, when it is on (`bytes_in` is counted only then).
fn log_id(bytes_in: &Option<Arc<AtomicU64>>, id: forward::RequestId<'_>) -> Option<HeaderValue> {
    bytes_in.as_ref().map(|_| id.to_value())
}

/// The `Content-Length` a request declares, if valid.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    crate::http1::fields::content_length(headers.get(CONTENT_LENGTH)?.as_bytes())
}

fn limit<B: ClientBody>(body: CountIn<B>, max: Option<u64>) -> UpstreamBody {
    match max {
        Some(max) => Limited::new(body, usize::try_from(max).unwrap_or(usize::MAX)).boxed(),
        None => body.map_err(Into::into).boxed(),
    }
}

/// A client's request body, as the handler takes it: hyper's `Incoming` (HTTP/1.x, HTTP/2) or
/// an HTTP/3 request stream's ([`crate::router::http3`]).
pub trait ClientBody:
    Body<Data = bytes::Bytes, Error: Into<BoxError>> + Unpin + Send + Sync + 'static
{
}

impl<B> ClientBody for B where
    B: Body<Data = bytes::Bytes, Error: Into<BoxError>> + Unpin + Send + Sync + 'static
{
}

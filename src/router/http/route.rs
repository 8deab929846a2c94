//! Where a request goes: the decision every request takes, whichever way it arrived (the
//! HTTP/1.1 fast path, hyper's HTTP/1.x or HTTP/2), from its method, authority, target and
//! declared length alone. Errors carry blame: the client's (400, 403, 404, 405, 413, 421, and
//! the 308 to https) or the table's (500: the chosen backend's service is not there; see
//! [`super::backends`]).
//!
//! The target is normalised here, once, before anything looks at it
//! ([`crate::ingress::normalize`]): the route, the `allow_sources` check, the redirect and the
//! endpoint all see the same path, so `/%61dmin`, `//admin` or `/x/../admin` cannot reach
//! what `/admin` may not, nor an endpoint that decodes them itself. A route's policy (CORS
//! preflights, limits per client: 429) is checked right after `allow_sources`.

use super::conn::Conn;
use super::filters;
use super::reply::{Local, redirect_https};
use crate::ingress::normalize::{self, NormalizeOptions};
use crate::ingress::{Hostname, Lookup, RouteTarget};
use crate::service_table::{Service, Snapshot};
use crate::telemetry::metrics::HttpMetrics;
use http::{HeaderValue, StatusCode};
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

const ACME_PREFIX: &str = "/.well-known/acme-challenge/";

/// What routing looks at in a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked<'r> {
    /// The method.
    pub method: &'r str,
    /// The authority: HTTP/2's `:authority` or absolute-form URI, else `Host`.
    pub authority: Option<&'r str>,
    /// Path and query in origin form as sent (or `*`), not yet normalised.
    pub target: &'r str,
    /// The declared body length (`Content-Length`), if any.
    pub length: Option<u64>,
    /// `Origin` and whether `Access-Control-Request-Method` is there (for CORS).
    pub cors: crate::policy::cors::LazyAsk<'r>,
    /// The fast path routed this request before and handed it to hyper (its rate-limit
    /// token is taken).
    pub handed_over: bool,
    /// The header fields, for routes with header conditions.
    pub fields: &'r dyn crate::ingress::Fields,
}

/// A routed request: the route's target and its service.
#[derive(Debug, Clone)]
pub(super) struct Routed<'a, 'r> {
    /// The route target (limits, affinity).
    pub target: &'a RouteTarget,
    /// The service.
    pub service: &'a Arc<Service>,
    /// The request target the endpoint gets: the normalised path and the query as sent.
    pub forward: Cow<'r, str>,
}

/// What the access log and the metrics learn about a request as it is handled.
#[derive(Debug, Default)]
pub(super) struct LogInfo {
    /// The service chosen for the request.
    pub service: Option<Arc<str>>,
    /// The route's metric handles.
    pub metrics: Option<Arc<HttpMetrics>>,
    /// The endpoint that answered.
    pub upstream: Option<SocketAddr>,
    /// The `X-Request-Id` sent (kept only when the access log is on).
    pub request_id: Option<HeaderValue>,
    /// What the route's policy admitted: the request's count in flight, its CORS fields.
    pub policy: Option<Box<crate::policy::Admitted>>,
}

/// Routes a request by the Kubernetes Ingress rules, or says what to answer instead.
pub(super) fn route<'a, 'r>(
    conn: &Conn,
    snapshot: &'a Snapshot,
    asked: &Asked<'r>,
    log: &mut LogInfo,
) -> Result<Routed<'a, 'r>, Local> {
    if asked.method == "CONNECT" {
        // No service is a forward proxy: nginx answers CONNECT the same way.
        return Err(Local::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        ));
    }
    let forward = normalized(asked, conn.normalize)?;
    let (path, query) = split_target(&forward);
    let Some(host) = asked.authority.and_then(Hostname::from_authority) else {
        return Err(Local::new(
            StatusCode::BAD_REQUEST,
            "missing or invalid Host\n",
        ));
    };
    if misdirected(conn, &host) {
        return Err(Local::new(
            StatusCode::MISDIRECTED_REQUEST,
            "TLS server name does not match Host\n",
        ));
    }
    let routes = &snapshot.http;
    let request = crate::ingress::RequestView {
        method: asked.method,
        query,
        fields: asked.fields,
    };
    let sni = conn.sni.as_deref();
    let target = match routes.lookup_on_tls(&conn.listener, sni, &host, path, &request) {
        Lookup::Matched { backend, .. }
        | Lookup::HostDefault(backend)
        | Lookup::Default(backend) => Some(backend),
        Lookup::NoHost | Lookup::NoPath => None,
    };
    if let Some(t) = target {
        log.metrics = Some(routes.metrics(t));
        if !t.allows(conn.client.ip()) {
            return Err(Local::new(StatusCode::FORBIDDEN, "forbidden\n"));
        }
        super::policy::check(t, conn, asked, log)?;
    }
    let redirect = target.map_or_else(
        || routes.redirects_on(&conn.listener, &host),
        |t| t.redirect_https,
    );
    if redirect && !conn.tls && !path.starts_with(ACME_PREFIX) {
        return Err(redirect_https(host.as_str(), &forward));
    }
    let Some(target) = target else {
        return Err(Local::new(
            StatusCode::NOT_FOUND,
            "no route for this host and path\n",
        ));
    };
    if target.filters.is_some()
        && let Some(answer) =
            filters::redirect(target, conn, asked.authority.unwrap_or(""), &forward)
    {
        return Err(answer);
    }
    let service = super::backends::choose(snapshot, target, log).map_err(|e| for_grpc(e, asked))?;
    if let (Some(max), Some(declared)) = (target.max_body_bytes, asked.length)
        && declared > max
    {
        return Err(Local::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n",
        ));
    }
    Ok(Routed {
        target,
        service,
        forward: match target.filters {
            Some(_) => filters::rewritten(target, forward),
            None => forward,
        },
    })
}

/// The target a request goes on with, normalised (the asterisk form of `OPTIONS *` goes on
/// as it is), or a 400 for one that cannot be made unambiguous.
fn normalized<'r>(asked: &Asked<'r>, options: NormalizeOptions) -> Result<Cow<'r, str>, Local> {
    let invalid = || Local::new(StatusCode::BAD_REQUEST, "invalid request target\n");
    if asked.target == "*" {
        return match asked.method {
            "OPTIONS" => Ok(Cow::Borrowed("*")),
            _ => Err(invalid()),
        };
    }
    normalize::normalize_target(asked.target, options).map_err(|error| {
        tracing::debug!(%error, "request target refused");
        invalid()
    })
}

/// The path of a normalised target, which routes it (`/` for `*`).
pub(super) fn path_of(target: &str) -> &str {
    split_target(target).0
}

/// The path (`/` for `*`) and the query of a normalised target, split once.
fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        _ if target == "*" => ("/", None),
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    }
}

/// A backend that cannot be used answers 500, which a gRPC client reads as UNKNOWN; to a gRPC
/// request (`content-type: application/grpc…`) it answers 503, read as UNAVAILABLE, as the
/// Gateway API asks of a GRPCRoute whose backends all have weight 0 (conformance
/// GRPCRouteAllBackendsWeightZero).
fn for_grpc(mut answer: Local, asked: &Asked<'_>) -> Local {
    let grpc = asked
        .fields
        .any_value("content-type", &mut |v| v.starts_with(b"application/grpc"));
    if grpc && answer.status == StatusCode::INTERNAL_SERVER_ERROR {
        answer.status = StatusCode::SERVICE_UNAVAILABLE;
    }
    answer
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
    match store.for_host(host.as_str()) {
        Some(wanted) => !Arc::ptr_eq(wanted, &store.for_sni(Some(sni))),
        None => false,
    }
}

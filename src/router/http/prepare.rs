//! The one preparation every request goes through before it is sent, whichever way it came
//! (the HTTP/1.1 fast path, or hyper's HTTP/1.x or HTTP/2): routed ([`route`]: method, target
//! normalised, Host, `allow_sources`, limits), its service's upstream client chosen, its
//! affinity cookie read, whether it may be sent twice, and how its fields are rewritten. Each
//! path then only writes the head its way (bytes on the wire, or a `HeaderMap`), so a rule
//! changed here holds for all of them at once.

use super::backends;
use super::clients;
use super::conn::Conn;
use super::reply::Local;
use super::route::{Asked, LogInfo, Routed, route};
use super::sticky;
use crate::forward::{Origin, Rewrite};
use crate::http1::fields::ConnectionOptions;
use crate::ingress::RouteTarget;
use crate::service_table::{Service, Snapshot};
use crate::upstream::http::HttpClient;
use http::StatusCode;
use std::borrow::Cow;
use std::sync::Arc;

/// A request routed and ready to be sent.
pub(super) struct Ready<'a, 'r> {
    /// The route's target (limits, affinity).
    pub target: &'a RouteTarget,
    /// The service.
    pub service: &'a Arc<Service>,
    /// The request target the endpoint gets: normalised path, query as sent.
    pub forward: Cow<'r, str>,
    /// The upstream client to send it with.
    pub client: Arc<HttpClient>,
    /// The route's affinity cookie name and the value the request carries.
    pub sticky: Option<(Arc<str>, Option<String>)>,
    /// The method may be sent twice (RFC 9110 §9.2.2).
    pub idempotent: bool,
    /// What a hashing scheduler hashes (the route's `hash_on`, else the client address).
    pub key: crate::balance::Key,
}

/// Routes the request and picks its client, or says what to answer here. `cookies` are the
/// values of its `Cookie` fields; `fields` gives all its fields afresh each time it is called.
pub(super) fn prepare<'a, 'r, 'h, 'f, I>(
    conn: &Conn,
    snapshot: &'a Snapshot,
    asked: &Asked<'r>,
    cookies: impl Iterator<Item = &'h [u8]>,
    fields: impl Fn() -> I,
    log: &mut LogInfo,
) -> Result<Ready<'a, 'r>, Local>
where
    I: Iterator<Item = (&'f [u8], &'f [u8])>,
{
    let Routed {
        target,
        service,
        forward,
    } = route(conn, snapshot, asked, log)?;
    let client = clients::client_for(service, conn).map_err(|error| {
        tracing::error!(service = %service.config.name, %error, blame = "config", "no upstream client");
        Local::new(StatusCode::BAD_GATEWAY, "upstream not usable\n")
    })?;
    let sticky = target.sticky_cookie.as_ref().map(|name| {
        let value = sticky::cookie(cookies, name);
        (Arc::clone(name), value.map(str::to_owned))
    });
    let key = backends::key(target, conn.client.ip(), &forward, fields);
    Ok(Ready {
        target,
        service,
        forward,
        client,
        sticky,
        idempotent: idempotent(asked.method),
        key,
    })
}

/// Whether a request with this method may be sent again after a failure.
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
    )
}

/// How the fields of a request on `conn` are rewritten for the endpoint: `host` is the
/// authority it was routed by, `keep_length` whether `Content-Length` stays (hyper frames by
/// it), `upgrade` the protocol passed on, `connection` what its `Connection` fields say;
/// `target`'s filters add their header edits and `Host` rewrite.
pub(super) fn rewrite<'a>(
    conn: &'a Conn,
    snapshot: &Snapshot,
    target: &'a RouteTarget,
    host: &'a [u8],
    keep_length: bool,
    upgrade: Option<&'a [u8]>,
    connection: ConnectionOptions,
) -> Rewrite<'a> {
    let (headers, endpoint_host) = super::filters::request_edits(target);
    Rewrite {
        origin: Origin {
            conn: &conn.forwarding,
            trusted: snapshot.http.trusts(conn.client.ip()),
            proto: conn.proto(),
            host,
        },
        rfc7239: snapshot.http.forwarded,
        keep_length,
        upgrade,
        connection,
        underscores: conn.underscores,
        headers,
        endpoint_host,
    }
}

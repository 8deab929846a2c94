//! Sending a request hyper serves to its service: on a pooled HTTP/1.1 connection (the
//! response body then reads from it), or through hyper-util's client for `h2c` and `https`
//! services; upgrades become tunnels, and the affinity cookie is set on the way back.

use super::{Conn, Forward, Outgoing};
use crate::forward::edits::HeaderEdits;
use crate::forward::{self, map_pairs};
use crate::http1::head;
use crate::ingress::UpstreamPolicy;
use crate::policy::cors::CorsReply;
use crate::router::http::attempts::{self, H1, Hyper};
use crate::router::http::record::{ResponseBody, Tracked};
use crate::router::http::reply::Local;
use crate::router::http::{sticky, upgrade};
use crate::service_table::{Endpoint, Service};
use crate::upstream::pool::{EncodeBody, Exchanged, Pool, PoolBody};
use http::header::UPGRADE;
use http::response::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::Arc;

/// Sends the request to an endpoint (see [`attempts`]) and readies its response for hyper.
pub(super) fn forward_request<'a>(
    forward: Forward<'a>,
    conn: &'a Conn,
    cors: Option<CorsReply>,
) -> impl Future<Output = (Response<ResponseBody>, Option<SocketAddr>)> + 'a {
    // Unpacked before the `async` block, which then holds each part once.
    let Forward {
        service,
        client,
        method,
        idempotent,
        sticky,
        key,
        response_headers,
        upgrade,
        outgoing,
        policy,
    } = forward;
    async move {
        let to = To {
            service,
            key,
            conn,
            sticky: sticky.as_ref(),
            response_headers,
            upgrade,
            cors: cors.as_ref(),
            policy: &policy,
        };
        match (outgoing, client.pool()) {
            (Outgoing::H1(body), Some(pool)) => via_pool(to, pool, body, &method, idempotent).await,
            (
                Outgoing::Hyper {
                    path,
                    headers,
                    body,
                    bodiless,
                    protocol,
                },
                _,
            ) => {
                let attempt = Hyper {
                    client: &client,
                    method,
                    path,
                    headers,
                    body: Some(body),
                    bodiless,
                    protocol,
                    idempotent,
                    timeout: policy.attempt_timeout(service.config.response_timeout),
                };
                via_hyper(to, attempt).await
            }
            // Built only for a client with a pool ([`super::prepare`]).
            (Outgoing::H1(_), None) => (
                Local::new(StatusCode::BAD_GATEWAY, "upstream not usable\n").into_response(),
                None,
            ),
        }
    }
}

/// Where a routed request goes, and what its response needs from it.
struct To<'a> {
    service: &'a Arc<Service>,
    /// What a hashing scheduler hashes.
    key: crate::balance::Key,
    conn: &'a Conn,
    /// The route's affinity cookie name and the request's value of it.
    sticky: Option<&'a (Arc<str>, Option<String>)>,
    /// The route's response header edits.
    response_headers: Option<&'a HeaderEdits>,
    /// The client side of a requested protocol upgrade.
    upgrade: Option<upgrade::ClientSide>,
    /// The route's CORS fields for the response.
    cors: Option<&'a CorsReply>,
    /// The route's retries and timeouts.
    policy: &'a UpstreamPolicy,
}

impl To<'_> {
    fn sticky_id(&self) -> Option<&str> {
        self.sticky.and_then(|(_, id)| id.as_deref())
    }

    /// Sets the affinity cookie on a response the scheduler's endpoint gave.
    fn pin(&self, headers: &mut HeaderMap, pinned: bool, endpoint: &Endpoint) {
        if let (Some((name, _)), false) = (self.sticky, pinned) {
            sticky::set(headers, name, endpoint);
        }
    }
}

/// Sends on a pooled HTTP/1.1 connection; the response body reads from it.
async fn via_pool(
    to: To<'_>,
    pool: &Pool,
    body: EncodeBody,
    method: &Method,
    idempotent: bool,
) -> (Response<ResponseBody>, Option<SocketAddr>) {
    let config = &to.service.config;
    let cors = to.cors;
    let mut attempt = H1 {
        pool,
        body,
        head_request: method == Method::HEAD,
        idempotent,
        timeout: to.policy.attempt_timeout(config.response_timeout),
        on_head: move |resp: &head::Response<'_>| response_parts(resp, to.response_headers, cors),
    };
    let sent =
        match attempts::send(to.service, to.key, to.sticky_id(), &mut attempt, to.policy).await {
            Ok(sent) => sent,
            Err(failed) => return (failed.reply().into_response(), failed.endpoint()),
        };
    let Exchanged {
        head: (mut parts, switched_to),
        reply,
        lease,
    } = sent.response;
    to.pin(&mut parts.headers, sent.pinned, sent.endpoint);
    let address = Some(sent.endpoint.address);
    if let Some(failed) = to
        .upgrade
        .as_ref()
        .and_then(|c| c.not_switched(parts.status))
    {
        return (failed.into_response(), address);
    }
    let body = match (reply.status, to.upgrade) {
        (101, Some(client_side)) => {
            let switched = client_side.switched(&mut parts.status, &mut parts.headers, switched_to);
            if let Err(failed) = switched {
                return (failed.into_response(), address);
            }
            let body = client_side.run(to.conn, |client| {
                upgrade::tunnel_pooled(client, lease, &config.name, sent.busy)
            });
            return (Response::from_parts(parts, body), address);
        }
        (101, None) => {
            tracing::warn!(service = %config.name, endpoint = %sent.endpoint.address,
                blame = "upstream", "unrequested 101");
            let failed = Local::new(StatusCode::BAD_GATEWAY, "upstream failed\n");
            return (failed.into_response(), Some(sent.endpoint.address));
        }
        _ => PoolBody::h1(lease, reply.framing, reply.reusable),
    };
    let response = Response::from_parts(parts, Tracked::upstream(body, sent.busy));
    (response, Some(sent.endpoint.address))
}

/// Sends through hyper-util's client (`h2c`, `https`).
async fn via_hyper(
    mut to: To<'_>,
    mut attempt: Hyper<'_>,
) -> (Response<ResponseBody>, Option<SocketAddr>) {
    let sent =
        match attempts::send(to.service, to.key, to.sticky_id(), &mut attempt, to.policy).await {
            Ok(sent) => sent,
            Err(failed) => return (failed.reply().into_response(), failed.endpoint()),
        };
    let mut response = sent.response;
    let switched_to = response.headers().get(UPGRADE).cloned();
    let mut headers = HeaderMap::new();
    let connection = forward::connection_options(map_pairs(response.headers()));
    forward::response(
        || map_pairs(response.headers()),
        connection,
        true,
        to.response_headers,
        to.cors,
        &mut headers,
    );
    *response.headers_mut() = headers;
    to.pin(response.headers_mut(), sent.pinned, sent.endpoint);
    let address = Some(sent.endpoint.address);
    if let Some(client_side) = to.upgrade.take() {
        if client_side.switched_by(response.status()) {
            let upstream = hyper::upgrade::on(&mut response);
            let (mut parts, _) = response.into_parts();
            let switched = client_side.switched(&mut parts.status, &mut parts.headers, switched_to);
            if let Err(failed) = switched {
                return (failed.into_response(), address);
            }
            let name = &to.service.config.name;
            let body = client_side.run(to.conn, |client| {
                upgrade::tunnel(client, upstream, name, sent.busy)
            });
            return (Response::from_parts(parts, body), address);
        }
        if let Some(failed) = client_side.not_switched(response.status()) {
            return (failed.into_response(), address);
        }
    }
    let response = response.map(|b| Tracked::upstream(PoolBody::Hyper(b), sent.busy));
    (response, Some(sent.endpoint.address))
}

/// The response head for hyper, and the endpoint's `Upgrade` value (for a `101`).
fn response_parts(
    resp: &head::Response<'_>,
    edits: Option<&HeaderEdits>,
    cors: Option<&CorsReply>,
) -> (Parts, Option<HeaderValue>) {
    let (mut parts, ()) = Response::new(()).into_parts();
    parts.status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::BAD_GATEWAY);
    forward::response(
        || resp.pairs(),
        resp.connection,
        resp.length_passes(),
        edits,
        cors,
        &mut parts.headers,
    );
    let switched_to = (resp.status == 101)
        .then(|| {
            resp.fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(UPGRADE.as_str()))
        })
        .flatten()
        .and_then(|f| HeaderValue::from_bytes(f.value).ok());
    (parts, switched_to)
}

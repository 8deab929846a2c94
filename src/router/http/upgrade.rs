//! Protocol upgrades (WebSocket and any other `Upgrade:` over HTTP/1.1) passed through.
//!
//! `Connection` and `Upgrade` are hop-by-hop, so the generic rewrite removes them; for an
//! upgrade request they are put back on the way up, and on a `101 Switching Protocols` on the
//! way down. Once both sides have switched, bytes are copied between the two connections
//! until either side closes. The tunnel holds its own sockets, so table reloads never touch it.
//!
//! The copy runs in the client connection's own task, after hyper lets go of the connection
//! ([`super::conn::Conn::set_tunnel`], run by [`super::listener`]), not in a task of its own:
//! so a tunnel keeps its listener's connection slot (`max_connections`) and its place in
//! `switchyard_http_connections_active`, holds its endpoint's active count (for `lc`, `wlc`
//! and `twos`, which exist for long-lived connections like these), and is drained on shutdown
//! and cut at `drain_timeout` like any other connection.
//!
//! Upgrade requests are served by hyper (the HTTP/1.1 fast path hands them over), which gives
//! the client's side of the tunnel; the endpoint's side is the pooled connection the `101`
//! came on, or hyper-util's for `https` services.

use super::conn::Tunnel;
use crate::service_table::{ActiveGuard, Service};
use crate::upstream::pool::Lease;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// The `Upgrade` value of an HTTP/1.1 request whose `Connection` asks for an upgrade to a
/// protocol `service` allows (see [`allowed`]); any other upgrade is not passed on, so the
/// request goes as an ordinary one (an endpoint that switches anyway gets a 502).
pub(super) fn requested(req: &Request<Incoming>, service: &Service) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let asks = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    let value = asks.then(|| req.headers().get(UPGRADE)).flatten()?;
    allowed(value.as_bytes(), service).then(|| value.clone())
}

/// Whether every protocol an `Upgrade` value names is one `service` lets through (its
/// `upgrades`; `websocket` by default). `h2c` never is: its 101 would hand the client a
/// connection past routing and `allow_sources`.
pub(super) fn allowed(value: &[u8], service: &Service) -> bool {
    let mut protocols = crate::http1::fields::list(value).peekable();
    protocols.peek().is_some()
        && protocols.all(|p| {
            let name = p.split(|&b| b == b'/').next().unwrap_or_default();
            !name.eq_ignore_ascii_case(b"h2c")
                && service
                    .config
                    .upgrades
                    .iter()
                    .any(|u| u.as_bytes().eq_ignore_ascii_case(name))
        })
}

/// Puts `Connection: upgrade` and the endpoint's `Upgrade` back on a `101`.
pub(super) fn restore(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    if let Some(upgrade) = upgrade {
        headers.insert(UPGRADE, upgrade);
    }
}

/// The tunnel between the client and the pooled connection a `101` came on (with whatever
/// the endpoint sent after its head), holding `busy` (the endpoint's active count) while it
/// lasts.
pub(super) fn tunnel_pooled(
    client: OnUpgrade,
    lease: Lease,
    service: &str,
    busy: ActiveGuard,
) -> Tunnel {
    let service = service.to_owned();
    let mut endpoint = lease.conn;
    Box::pin(async move {
        let _busy = busy;
        let client = match client.await {
            Ok(client) => client,
            Err(error) => return tracing::debug!(%service, %error, "upgrade did not complete"),
        };
        let mut client = TokioIo::new(client);
        let early = endpoint.io.buf.split();
        if let Err(error) = client.write_all(&early).await {
            return tracing::debug!(%service, %error, "upgraded connection ended with error");
        }
        copy(&mut client, &mut endpoint.io.io, &service).await;
    })
}

/// If the endpoint switched protocols, the tunnel between the client's and the endpoint's
/// connections (hyper-util's client, for `https` services), holding `busy` while it lasts.
pub(super) fn tunnel<B>(
    client: OnUpgrade,
    response: &mut Response<B>,
    service: &str,
    busy: ActiveGuard,
) -> Option<Tunnel> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return None;
    }
    let upstream = hyper::upgrade::on(response);
    let service = service.to_owned();
    Some(Box::pin(async move {
        let _busy = busy;
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(error) => return tracing::debug!(%service, %error, "upgrade did not complete"),
        };
        copy(
            &mut TokioIo::new(client),
            &mut TokioIo::new(upstream),
            &service,
        )
        .await;
    }))
}

async fn copy<A, B>(client: &mut A, upstream: &mut B, service: &str)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::io::copy_bidirectional(client, upstream).await {
        Ok((up, down)) => tracing::debug!(%service, up, down, "upgraded connection closed"),
        Err(error) => tracing::debug!(%service, %error, "upgraded connection ended with error"),
    }
}

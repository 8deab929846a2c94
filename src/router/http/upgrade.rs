//! Protocol upgrades (WebSocket and any other `Upgrade:` over HTTP/1.1) passed through.
//!
//! `Connection` and `Upgrade` are hop-by-hop, so the generic rewrite removes them; for an
//! upgrade request they are put back on the way up, and on a `101 Switching Protocols` on the
//! way down. Once both sides have switched, hyper hands over the two raw connections and a
//! task copies bytes between them until either side closes. The tunnel holds its own sockets,
//! so table reloads never touch it.

use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The `Upgrade` value of an HTTP/1.1 request whose `Connection` asks for an upgrade.
pub(super) fn requested(req: &Request<Incoming>) -> Option<HeaderValue> {
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
    asks.then(|| req.headers().get(UPGRADE).cloned()).flatten()
}

/// Puts `Connection: upgrade` and `Upgrade` back after the hop-by-hop rewrite.
pub(super) fn restore(headers: &mut HeaderMap, upgrade: &HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, upgrade.clone());
}

/// If the endpoint switched protocols, keeps the upgrade headers on its 101 and starts the
/// tunnel between the client's and the endpoint's connections.
/// `switched_to` is the endpoint's `Upgrade` header, read before the hop-by-hop rewrite.
pub(super) fn tunnel<B>(
    client: OnUpgrade,
    response: &mut Response<B>,
    switched_to: Option<HeaderValue>,
    service: &str,
) {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    if let Some(upgrade) = switched_to {
        restore(response.headers_mut(), &upgrade);
    }
    let upstream = hyper::upgrade::on(response);
    let service = service.to_owned();
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(error) => return tracing::debug!(%service, %error, "upgrade did not complete"),
        };
        let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(%service, up, down, "upgraded connection closed"),
            Err(error) => tracing::debug!(%service, %error, "upgraded connection ended with error"),
        }
    });
}

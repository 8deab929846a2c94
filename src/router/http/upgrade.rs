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
//!
//! An HTTP/2 extended CONNECT for a WebSocket (RFC 8441) is prepared here too, as the
//! HTTP/1.1 upgrade it stands for; its tunnel is a stream, run as [`h2`] says.

pub(super) mod h2;

use super::conn::{Conn, Tunnel};
use super::record::{ResponseBody, Tracked};
use super::reply::Local;
use crate::service_table::{ActiveGuard, Service};
use crate::upstream::pool::Lease;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Request, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// An upgrade the client asked for, to be asked of the endpoint.
pub(super) struct Requested {
    /// The `Upgrade` value the endpoint gets.
    pub value: HeaderValue,
    /// The client's side of it.
    pub client: ClientSide,
}

/// The client's side of an upgrade: its connection (HTTP/1.1) or its stream (an HTTP/2
/// extended CONNECT), once the answer is sent.
pub(super) struct ClientSide {
    on: OnUpgrade,
    mode: Mode,
}

/// How an upgrade goes to the endpoint, by the client's HTTP version and the service's.
enum Mode {
    /// An HTTP/1.1 upgrade, passed on as it is.
    H1,
    /// An HTTP/2 extended CONNECT, sent as an HTTP/1.1 upgrade with this key.
    H2(h2::Key),
    /// An HTTP/2 extended CONNECT, passed on as one (an `h2c` service).
    H2Connect,
}

/// The upgrade `req` asks for, if `service` allows it (see [`allowed`]): an HTTP/1.1 upgrade
/// (any other goes as an ordinary request), or an HTTP/2 extended CONNECT for a WebSocket,
/// made the HTTP/1.1 handshake it stands for ([`h2::to_handshake`]); one `service` does not
/// allow is refused as any CONNECT is (405: no service is a forward proxy).
pub(super) fn requested<B>(
    req: &mut Request<B>,
    service: &Service,
) -> Result<Option<Requested>, Local> {
    if !h2::is_websocket(req) {
        return Ok(asked_h1(req, service).map(|value| Requested {
            value,
            client: ClientSide {
                on: hyper::upgrade::on(req),
                mode: Mode::H1,
            },
        }));
    }
    if !allowed(b"websocket", service) {
        return Err(Local::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        ));
    }
    let (value, key) = h2::to_handshake(req);
    let on = hyper::upgrade::on(req);
    Ok(Some(Requested {
        value,
        client: ClientSide {
            on,
            mode: Mode::H2(key),
        },
    }))
}

/// The method `req` is routed by: `GET` for an HTTP/2 extended CONNECT for a WebSocket (the
/// handshake it stands for), else its own.
pub(super) fn routed_method<B>(req: &Request<B>) -> &str {
    if h2::is_websocket(req) {
        "GET"
    } else {
        req.method().as_str()
    }
}

/// The `Upgrade` value of an HTTP/1.1 request whose `Connection` asks for an upgrade to a
/// protocol `service` allows (see [`allowed`]); any other upgrade is not passed on, so the
/// request goes as an ordinary one (an endpoint that switches anyway gets a 502).
fn asked_h1<B>(req: &Request<B>, service: &Service) -> Option<HeaderValue> {
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

impl ClientSide {
    /// For an `h2c` service: an HTTP/2 extended CONNECT goes on as one (RFC 8441 both ways:
    /// no key, and the endpoint's `2xx` is the switch). Whether it does.
    pub(super) fn connect_upstream(&mut self) -> bool {
        let h2 = matches!(self.mode, Mode::H2(_));
        if h2 {
            self.mode = Mode::H2Connect;
        }
        h2
    }

    /// Whether the endpoint's answer with `status` switched protocols: a `101`, or a `2xx` to
    /// an extended CONNECT.
    pub(super) fn switched_by(&self, status: StatusCode) -> bool {
        match self.mode {
            Mode::H2Connect => status.is_success(),
            Mode::H1 | Mode::H2(_) => status == StatusCode::SWITCHING_PROTOCOLS,
        }
    }

    /// Readies the client's answer once the endpoint switched: over HTTP/1.1 the `101` with
    /// `Connection` and the endpoint's `Upgrade` back; over HTTP/2 a `200`, if the endpoint's
    /// accept is the one for our key (else the 502 to answer), or the endpoint's own `2xx`.
    pub(super) fn switched(
        &self,
        status: &mut StatusCode,
        headers: &mut HeaderMap,
        upgrade: Option<HeaderValue>,
    ) -> Result<(), Local> {
        match &self.mode {
            Mode::H1 => {
                restore(headers, upgrade);
                Ok(())
            }
            Mode::H2(key) => key.switched(status, headers),
            Mode::H2Connect => Ok(()),
        }
    }

    /// The 502 for an endpoint's answer the client would take for a switch that did not
    /// happen (a `2xx` to an HTTP/2 extended CONNECT sent as an HTTP/1.1 upgrade).
    pub(super) fn not_switched(&self, status: StatusCode) -> Option<Local> {
        match self.mode {
            Mode::H2(_) => h2::Key::not_switched(status),
            Mode::H1 | Mode::H2Connect => None,
        }
    }

    /// Leaves the tunnel `make` builds from the client's side to run, and gives the body of
    /// the answer: an HTTP/1.1 tunnel runs in the connection's task once hyper lets go of it
    /// ([`Conn::set_tunnel`]); an HTTP/2 one is carried by the answer's body to where the
    /// request is counted in flight on its connection ([`Tracked::hold`]).
    pub(super) fn run(self, conn: &Conn, make: impl FnOnce(OnUpgrade) -> Tunnel) -> ResponseBody {
        let tunnel = make(self.on);
        match self.mode {
            Mode::H1 => {
                conn.set_tunnel(tunnel);
                Tracked::local(Default::default())
            }
            Mode::H2(_) | Mode::H2Connect => Tracked::tunnel(tunnel),
        }
    }
}

/// Puts `Connection: upgrade` and the endpoint's `Upgrade` back on a `101`.
fn restore(headers: &mut HeaderMap, upgrade: Option<HeaderValue>) {
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

/// The tunnel between the client's and the endpoint's connections once both have switched
/// (hyper-util's client, for `https` services), holding `busy` while it lasts.
pub(super) fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    service: &str,
    busy: ActiveGuard,
) -> Tunnel {
    let service = service.to_owned();
    Box::pin(async move {
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
    })
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

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
//! An extended CONNECT for a WebSocket over HTTP/2 (RFC 8441) or HTTP/3 (RFC 9220) is
//! prepared here too, as the HTTP/1.1 upgrade it stands for; its tunnel is a stream, run as
//! [`connect`] says. The client's side of a tunnel is hyper's (an HTTP/1.1 connection, an
//! HTTP/2 stream) or an HTTP/3 request stream ([`ClientUpgrade`]); the copy is the same
//! tunnel either way, with the same accounting.

pub(super) mod connect;

use super::conn::{Conn, Tunnel};
use super::record::{ResponseBody, Tracked};
use super::reply::Local;
use crate::router::http3::{Handover, TunnelStream};
use crate::service_table::{ActiveGuard, Service};
use crate::upstream::http::BoxError;
use crate::upstream::pool::Lease;
use bytes::Bytes;
use http::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use http::{Request, StatusCode, Version};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// An upgrade the client asked for, to be asked of the endpoint.
pub(super) struct Requested {
    /// The `Upgrade` value the endpoint gets.
    pub value: HeaderValue,
    /// The client's side of it.
    pub client: ClientSide,
}

/// The client's side of an upgrade: its connection (HTTP/1.1) or its stream (an extended
/// CONNECT), once the answer is sent.
pub(super) struct ClientSide {
    on: ClientUpgrade,
    mode: Mode,
}

/// Where the client's side of a tunnel comes from once the answer is sent: hyper (an
/// HTTP/1.1 connection, an HTTP/2 stream) or the HTTP/3 request's task.
pub(super) enum ClientUpgrade {
    /// hyper's upgrade.
    Hyper(OnUpgrade),
    /// An HTTP/3 request stream, handed over after the `200`.
    Http3(Handover),
}

/// The client's side of a tunnel.
enum ClientIo {
    /// hyper's upgraded connection or stream.
    Hyper(TokioIo<Upgraded>),
    /// An HTTP/3 request stream (boxed: it is ten times the size of hyper's).
    Http3(Box<TunnelStream>),
}

impl ClientUpgrade {
    /// The client's side of `req`: its HTTP/3 stream if the request carries the handover
    /// ([`crate::router::http3`] puts it there), else hyper's.
    fn of<B>(req: &mut Request<B>) -> Self {
        match req.extensions_mut().remove::<Handover>() {
            Some(handover) => ClientUpgrade::Http3(handover),
            None => ClientUpgrade::Hyper(hyper::upgrade::on(req)),
        }
    }

    /// Waits for the answer to be sent and the client's side to be handed over.
    async fn io(self) -> Result<ClientIo, BoxError> {
        Ok(match self {
            ClientUpgrade::Hyper(on) => ClientIo::Hyper(TokioIo::new(on.await?)),
            ClientUpgrade::Http3(handover) => ClientIo::Http3(Box::new(handover.stream().await?)),
        })
    }
}

/// How an upgrade goes to the endpoint, by the client's HTTP version and the service's.
enum Mode {
    /// An HTTP/1.1 upgrade, passed on as it is.
    H1,
    /// An extended CONNECT (HTTP/2, HTTP/3), sent as an HTTP/1.1 upgrade with this key.
    Connect(connect::Key),
    /// An extended CONNECT, passed on as one (an `h2c` service).
    ConnectAsIs,
}

/// The upgrade `req` asks for, if `service` allows it (see [`allowed`]): an HTTP/1.1 upgrade
/// (any other goes as an ordinary request), or an extended CONNECT for a WebSocket,
/// made the HTTP/1.1 handshake it stands for ([`connect::to_handshake`]); one `service` does not
/// allow is refused as any CONNECT is (405: no service is a forward proxy).
pub(super) fn requested<B>(
    req: &mut Request<B>,
    service: &Service,
) -> Result<Option<Requested>, Local> {
    if !connect::is_websocket(req) {
        return Ok(asked_h1(req, service).map(|value| Requested {
            value,
            client: ClientSide {
                on: ClientUpgrade::of(req),
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
    let (value, key) = connect::to_handshake(req);
    let on = ClientUpgrade::of(req);
    Ok(Some(Requested {
        value,
        client: ClientSide {
            on,
            mode: Mode::Connect(key),
        },
    }))
}

/// The method `req` is routed by: `GET` for an extended CONNECT for a WebSocket (the
/// handshake it stands for), else its own.
pub(super) fn routed_method<B>(req: &Request<B>) -> &str {
    if connect::is_websocket(req) {
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
    /// For an `h2c` service: an extended CONNECT goes on as one (RFC 8441 upstream: no key,
    /// and the endpoint's `2xx` is the switch). Whether it does.
    pub(super) fn connect_upstream(&mut self) -> bool {
        let connect = matches!(self.mode, Mode::Connect(_));
        if connect {
            self.mode = Mode::ConnectAsIs;
        }
        connect
    }

    /// Whether the endpoint's answer with `status` switched protocols: a `101`, or a `2xx` to
    /// an extended CONNECT.
    pub(super) fn switched_by(&self, status: StatusCode) -> bool {
        match self.mode {
            Mode::ConnectAsIs => status.is_success(),
            Mode::H1 | Mode::Connect(_) => status == StatusCode::SWITCHING_PROTOCOLS,
        }
    }

    /// Readies the client's answer once the endpoint switched: over HTTP/1.1 the `101` with
    /// `Connection` and the endpoint's `Upgrade` back; to an extended CONNECT a `200`, if the
    /// endpoint's accept is the one for our key (else the 502 to answer), or the endpoint's
    /// own `2xx`.
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
            Mode::Connect(key) => key.switched(status, headers),
            Mode::ConnectAsIs => Ok(()),
        }
    }

    /// The 502 for an endpoint's answer the client would take for a switch that did not
    /// happen (a `2xx` to an extended CONNECT sent as an HTTP/1.1 upgrade).
    pub(super) fn not_switched(&self, status: StatusCode) -> Option<Local> {
        match self.mode {
            Mode::Connect(_) => connect::Key::not_switched(status),
            Mode::H1 | Mode::ConnectAsIs => None,
        }
    }

    /// Leaves the tunnel `make` builds from the client's side to run, and gives the body of
    /// the answer: an HTTP/1.1 tunnel runs in the connection's task once hyper lets go of it
    /// ([`Conn::set_tunnel`]); a stream's (an extended CONNECT's) is carried by the answer's
    /// body to where the request is counted in flight on its connection ([`Tracked::hold`] for
    /// HTTP/2, the request's own task for HTTP/3).
    pub(super) fn run(
        self,
        conn: &Conn,
        make: impl FnOnce(ClientUpgrade) -> Tunnel,
    ) -> ResponseBody {
        let tunnel = make(self.on);
        match self.mode {
            Mode::H1 => {
                conn.set_tunnel(tunnel);
                Tracked::local(Default::default())
            }
            Mode::Connect(_) | Mode::ConnectAsIs => Tracked::tunnel(tunnel),
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
    client: ClientUpgrade,
    lease: Lease,
    service: &str,
    busy: ActiveGuard,
) -> Tunnel {
    let service = service.to_owned();
    let mut endpoint = lease.conn;
    Box::pin(async move {
        let _busy = busy;
        let client = match client.io().await {
            Ok(client) => client,
            Err(error) => return tracing::debug!(%service, %error, "upgrade did not complete"),
        };
        let early = endpoint.io.buf.split().freeze();
        copy(client, early, &mut endpoint.io.io, &service).await;
    })
}

/// The tunnel between the client's and the endpoint's connections once both have switched
/// (hyper-util's client, for `https` and `h2c` services), holding `busy` while it lasts.
pub(super) fn tunnel(
    client: ClientUpgrade,
    upstream: OnUpgrade,
    service: &str,
    busy: ActiveGuard,
) -> Tunnel {
    let service = service.to_owned();
    Box::pin(async move {
        let _busy = busy;
        let (client, upstream) = match tokio::try_join!(client.io(), async {
            upstream.await.map_err(BoxError::from)
        }) {
            Ok(pair) => pair,
            Err(error) => return tracing::debug!(%service, %error, "upgrade did not complete"),
        };
        copy(client, Bytes::new(), &mut TokioIo::new(upstream), &service).await;
    })
}

/// Copies both ways until both sides are done, after giving the client `early` (what the
/// endpoint sent behind its `101`).
async fn copy<B>(client: ClientIo, early: Bytes, upstream: &mut B, service: &str)
where
    B: AsyncRead + AsyncWrite + Unpin,
{
    let copied = match client {
        ClientIo::Hyper(mut client) => match client.write_all(&early).await {
            Ok(()) => tokio::io::copy_bidirectional(&mut client, upstream).await,
            Err(error) => Err(error),
        },
        ClientIo::Http3(stream) => (*stream).copy(early, upstream).await,
    };
    match copied {
        Ok((up, down)) => tracing::debug!(%service, up, down, "upgraded connection closed"),
        Err(error) => tracing::debug!(%service, %error, "upgraded connection ended with error"),
    }
}

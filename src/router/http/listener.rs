//! An HTTP(S) listener: accept, optional TLS, then HTTP/1.x on the fast path (handed to hyper
//! for what it does not serve) or HTTP/2 with hyper (by ALPN on TLS, by the connection
//! preface on plain TCP).
//!
//! Limits per connection: the TLS handshake deadline, the header-read deadline (slowloris),
//! the request-head size (431 above it), HTTP/2 concurrent streams and hyper's rapid-reset
//! guard (`max_pending_accept_reset_streams`). HTTP/2 also gets the deadlines hyper lacks
//! (preface, header block, idle connection: [`super::h2_watch`]) and hyper's keep-alive PINGs.
//! When the listener is told to stop (shutdown, or the listener left the config), every
//! connection is shut down gracefully: requests in flight finish, then the connection closes;
//! an HTTP/2 one with nothing in flight whose client does not answer the GOAWAY's PING closes
//! `header_read_timeout` later, not at the drain deadline.
//!
//! Memory: a connection's task is as large as the largest state its future can reach, and
//! 10,000 idle ones are common, so the task holds only what a plain HTTP/1.1 connection waits
//! with (about 1 KiB); the TLS path, the handshake, HTTP/2 and hyper after a hand-over are
//! boxed when a connection takes them, and the fast path boxes its busy state the same way
//! (`h1`). (An `async fn` gives every value it keeps across more than one `.await` a
//! slot of its own, beside all its other states: before this, the task was 16.5 KiB.) A
//! plain HTTP/1.1 connection that has waited about half a second for a request gives up even that
//! task: it waits in the listener socket's idle set ([`idle`]) until it is readable.
//!
//! hyper's keep-alive (`h2_keepalive_interval`) is not free: with it on, each request head
//! and each request body frame the handler reads, and each poll of the connection, takes the
//! lock of hyper's ping state (uncontended) and reads the clock.

use super::conn::{Conn, Peers};
use super::h1::Ended;
use super::prefixed::Prefixed;
use super::proxy;
use super::record::ResponseBody;
use crate::config::ListenerConfig;
use crate::router::Lifecycle;
use crate::router::cancel::Cancelled;
use crate::service_table::TableHandle;
use crate::tls::{Accepted, CertStore};
use arc_swap::ArcSwap;
use bytes::BytesMut;
use http::Response;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

mod hyper_conn;
mod idle;
mod plain;
mod slots;

use hyper_conn::{h2, serve_with};
use plain::{parking, serve_plain};
pub use slots::Open;
use slots::admit;
pub(crate) use slots::{Slot, try_admit};

/// TLS for a listener: the acceptor and the store its resolver reads.
#[derive(Clone)]
pub struct Tls {
    /// Built once; certificates change under it through `certs`.
    pub acceptor: TlsAcceptor,
    /// The certificates, swapped on reload.
    pub certs: Arc<ArcSwap<CertStore>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

/// Accepts and serves connections until told to stop.
pub async fn run(
    listener: TcpListener,
    settings: Arc<ArcSwap<ListenerConfig>>,
    tls: Option<Tls>,
    table: Arc<TableHandle>,
    life: Lifecycle,
) {
    run_sharing(listener, settings, tls, table, life, Arc::default()).await;
}

/// [`run`] for one of a listener's sockets (one per worker), counting its connections in
/// `open` with the other sockets' for `max_connections`.
pub async fn run_sharing(
    listener: TcpListener,
    settings: Arc<ArcSwap<ListenerConfig>>,
    tls: Option<Tls>,
    table: Arc<TableHandle>,
    life: Lifecycle,
    open: Arc<Open>,
) {
    let accepted_here = crate::telemetry::metrics::worker_accepted();
    let idle = match &tls {
        None => parking(&settings.load().name, &table, &life),
        Some(_) => None,
    };
    let mut backoff = Duration::from_millis(10);
    let mut gauge = None;
    loop {
        let config = settings.load_full();
        if let Some(max) = config.max_connections {
            // At the limit, stop accepting (clients wait in the kernel backlog, as with
            // HAProxy's maxconn) until a connection closes.
            let freed = open.freed.notified();
            if open.count.load(Ordering::Acquire) >= max.get() {
                tokio::select! {
                    () = life.stop_accepting.cancelled() => break,
                    () = freed => continue,
                }
            }
        }
        let (socket, peer) = tokio::select! {
            biased;
            () = life.stop_accepting.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => { backoff = Duration::from_millis(10); pair }
                Err(error) => {
                    crate::telemetry::metrics::http_accept_error(&config.name);
                    tracing::warn!(listener = %config.name, %error, pause = ?backoff, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        accepted_here.increment(1);
        let gauge = gauge
            .get_or_insert_with(|| {
                metrics::gauge!(crate::telemetry::metrics::HTTP_CONNECTIONS_ACTIVE,
                    "listener" => config.name.to_string())
            })
            .clone();
        let slot = admit(&open, config.max_connections, gauge, &life).await;
        // A task of its own kind for each kind of listener: a plain connection's task does
        // not carry the TLS path's state, nor a TLS one's the plain path's.
        let (table, each) = (Arc::clone(&table), life.clone());
        match &tls {
            None => {
                let served = serve_plain(socket, peer, config, table, each, slot, idle.clone());
                life.connections.spawn(served);
            }
            Some(tls) => {
                let served = serve_tls(socket, peer, config, tls.clone(), table, each, slot);
                life.connections.spawn(served);
            }
        }
    }
    tracing::debug!(listener = %settings.load().name, "http listener stopped");
}

/// Sets up an accepted connection: `TCP_NODELAY`, and the PROXY protocol header if the
/// listener takes one. The client's address (the header's, if any), or `None` if the header
/// was refused (the connection is then closed).
async fn accepted(
    socket: &mut TcpStream,
    client: SocketAddr,
    config: &ListenerConfig,
) -> Option<SocketAddr> {
    let _ = socket.set_nodelay(true);
    if !config.accept_proxy_protocol {
        return Some(client);
    }
    match crate::router::proxy_header::read(socket, config.handshake_timeout).await {
        Ok(Some(real)) => Some(real),
        Ok(None) => Some(client),
        Err(error) => {
            tracing::debug!(listener = %config.name, %client, %error, "PROXY header refused");
            None
        }
    }
}

/// What every request on the connection shares.
fn conn(
    peers: Peers,
    config: &ListenerConfig,
    tls: Option<&Tls>,
    table: Arc<TableHandle>,
    sni: Option<String>,
) -> Arc<Conn> {
    let alt_svc = tls
        .filter(|_| config.http3)
        .and_then(|_| crate::router::http3::alt_svc(peers.local.port(), config));
    let certs = tls.map(|t| Arc::clone(&t.certs));
    Conn::for_listener(peers, config, certs, table, sni, alt_svc)
}

/// Serves one TLS connection (its task's future, spawned as it is): the TLS handshake, then
/// HTTP/2 (by ALPN) or HTTP/1.x over the TLS stream; or, for an SNI name passed through, the
/// L4 copy to its service ([`super::passthrough`]).
async fn serve_tls(
    mut socket: TcpStream,
    client: SocketAddr,
    config: Arc<ListenerConfig>,
    tls: Tls,
    table: Arc<TableHandle>,
    life: Lifecycle,
    _slot: Slot,
) {
    let (config, life) = (&*config, &life);
    let Some(client) = accepted(&mut socket, client, config).await else {
        return;
    };
    // Boxed: the handshake's state (about 3 KiB) is freed once it is over, and the stream
    // (rustls' state, 1.2 KiB) is moved as one pointer from here on. (The result is bound
    // before it is used, so that it is not kept beside what follows.)
    let passthrough = |sni: &str| super::passthrough::lookup(&table, &config.name, sni);
    let handshake = Box::pin(crate::tls::accept(
        &tls.acceptor,
        &tls.certs,
        socket,
        config.handshake_timeout,
        passthrough,
    ));
    let stream = match handshake.await {
        Ok(Accepted::Terminated { stream, fallback }) => {
            if fallback {
                crate::telemetry::metrics::tls_default_certificate(&config.name);
            }
            stream
        }
        Ok(Accepted::Passthrough(p)) => {
            let served = super::passthrough::serve(p, client, &config.name, &life.force_close);
            return Box::pin(served).await;
        }
        Err(error) => {
            return tracing::debug!(listener = %config.name, %client, %error, reason = error.reason(), "tls handshake failed");
        }
    };
    let h2_chosen = stream.session().alpn_protocol() == Some(b"h2");
    let sni = stream.server_name().map(str::to_owned);
    // Read after the handshake, so that it is not kept across it.
    let local = stream.tcp().local_addr().unwrap_or(config.listen);
    let conn = conn(Peers { client, local }, config, Some(&tls), table, sni);
    if h2_chosen {
        let io = Prefixed::new(stream, BytesMut::new());
        Box::pin(h2(io, conn, config, life)).await;
    } else {
        http(stream, conn, config, life, false, None).await;
    }
}

/// Serves HTTP/1.x on the fast path ([`super::h1`]) until a request needs hyper, which then
/// serves the connection (that one HTTP/1.x request, or HTTP/2 when the client opened with
/// its preface); the
/// handler's state lives inside hyper's connection, polled in place. While the listener
/// drains, the fast path finishes the request in flight; at the drain deadline it is dropped.
/// With `park`, a connection that goes idle on the fast path is returned, with its
/// header-read deadline; `until` is that deadline for one taken back from idleness.
async fn http<S>(
    io: S,
    conn: Arc<Conn>,
    config: &ListenerConfig,
    life: &Lifecycle,
    park: bool,
    until: Option<Instant>,
) -> Option<(S, Instant)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handed = {
        let fast = super::h1::serve(io, &conn, config, &life.stop_accepting, park, until);
        tokio::pin!(fast);
        let ended = tokio::select! {
            biased;
            ended = fast.as_mut() => ended,
            () = Cancelled::new(&life.stop_accepting) => tokio::select! {
                ended = fast.as_mut() => ended,
                () = Cancelled::new(&life.force_close) => Ended::Closed,
            },
        };
        match ended {
            Ended::Closed => return None,
            Ended::Idle { io, until } => return Some((io, until)),
            // Boxed: the connection's task carries hyper's state only when hyper serves it.
            Ended::Handover(handed) => {
                Box::pin(hyper_serves(handed, Arc::clone(&conn), config, life))
            }
        }
    };
    handed.await;
    None
}

/// Serves a connection the fast path handed over ([`http`]). Over HTTP/1.x hyper serves this
/// one request, then closes: every request hyper parses went through the fast path's checks
/// first, and is routed on the snapshot the fast path routed it on. An upgrade's connection
/// is kept for the tunnel if the endpoint switches, and closed after any other answer.
async fn hyper_serves<S>(
    handed: super::h1::Handover<S>,
    conn: Arc<Conn>,
    config: &ListenerConfig,
    life: &Lifecycle,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let super::h1::Handover {
        io,
        read,
        snapshot,
        upgrade,
    } = handed;
    let io = Prefixed::new(io, read);
    let kept = Arc::clone(&conn);
    let handler = move |req| {
        let answer = proxy::handle(req, Arc::clone(&conn), snapshot.clone());
        async move {
            answer
                .await
                .map(|r| if upgrade { close_unless_switched(r) } else { r })
        }
    };
    serve_with(io, handler, config, life, upgrade).await;
    if let Some(tunnel) = kept.take_tunnel() {
        // Still this connection's task: its slot and its gauge hold, and a drain waits
        // for it until the deadline.
        tokio::select! {
            () = tunnel => {}
            () = life.force_close.cancelled() => {}
        }
    }
}

/// The response to an upgrade request hyper serves after a hand-over: hyper closes the
/// connection after it (so it never parses a request the fast path did not check), unless it
/// switched protocols and the connection is now a tunnel.
fn close_unless_switched(mut response: Response<ResponseBody>) -> Response<ResponseBody> {
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

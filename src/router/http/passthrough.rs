//! A TLS connection passed through by SNI: connect to the service at L4, replay the bytes the
//! ClientHello peek read, then copy both ways, undecrypted.
//!
//! It is the L4 path ([`crate::upstream::connect`], [`crate::router::copy`]) run from the TLS
//! listener's connection task, so it holds what any connection of the listener holds: the
//! listener's slot (`max_connections`, the active gauge), the endpoint's active count (for
//! `lc` and draining endpoints), and the drain: it runs until both sides close, the service's
//! idle timeout, or the drain deadline (`force_close`), like an L4 connection. Bytes count in
//! the service's `switchyard_bytes_total`, connections in
//! `switchyard_tls_passthrough_connections_total`.

use crate::config::ProxyProtocol;
use crate::router::cancel::Cancelled;
use crate::router::copy::{self, Ended};
use crate::service_table::{Service, TableHandle};
use crate::telemetry::metrics;
use crate::tls::Passthrough;
use crate::upstream;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tracing::debug;

/// The service a passthrough name leads to: its name, and the service if the snapshot has it.
pub(super) type Target = (Arc<str>, Option<Arc<Service>>);

/// The target of `sni` on `listener`, if it is passed through: one snapshot load.
pub(super) fn lookup(table: &TableHandle, listener: &str, sni: &str) -> Option<Target> {
    let snapshot = table.load();
    let name = snapshot.passthrough.lookup(listener, sni)?;
    Some((Arc::clone(name), snapshot.service(name).cloned()))
}

/// Proxies one passed-through connection until it ends or `force_close` fires.
pub(super) async fn serve(
    passthrough: Passthrough<Target>,
    client: SocketAddr,
    listener: &str,
    force_close: &CancellationToken,
) {
    let Passthrough {
        target: (name, service),
        mut tcp,
        hello,
    } = passthrough;
    let Some(service) = service else {
        metrics::tls_passthrough(listener, &name, "no_service");
        return tracing::warn!(listener, service = %name, %client, "passthrough service not in the table: closing");
    };
    let preamble = match service.config.proxy_protocol {
        ProxyProtocol::None => None,
        ProxyProtocol::V2 => match tcp
            .local_addr()
            .and_then(|local| upstream::proxy_v2_header(client, local))
        {
            Ok(header) => Some(header),
            Err(error) => return debug!(%error, "client gone before passthrough"),
        },
    };
    let proxied = async {
        let mut up = match upstream::connect(&service, client, preamble.as_deref()).await {
            Ok(up) => up,
            Err(error) => {
                metrics::tls_passthrough(listener, &name, "no_upstream");
                return tracing::warn!(listener, service = %name, %error, "passthrough: no upstream connection, closing client");
            }
        };
        metrics::tls_passthrough(listener, &name, "ok");
        let counters = &service.live.metrics;
        if let Err(error) = up.stream.write_all(&hello).await {
            return debug!(endpoint = %up.address, %error, "passthrough: endpoint gone before the ClientHello");
        }
        counters.bytes_in.increment(hello.len() as u64);
        let result = copy::bidirectional(
            &mut tcp,
            &mut up.stream,
            service.config.idle_timeout,
            (&counters.bytes_in, &counters.bytes_out),
        )
        .await;
        match result {
            Ok((Ended::Closed, totals)) => {
                debug!(endpoint = %up.address, sent = totals.sent, received = totals.received, "passthrough closed")
            }
            Ok((Ended::Idle, _)) => debug!(endpoint = %up.address, "passthrough idle timeout"),
            Err(error) => debug!(endpoint = %up.address, %error, "passthrough ended with error"),
        }
    };
    tokio::select! {
        () = proxied => {}
        () = Cancelled::new(force_close) => debug!(listener, %client, "passthrough closed at drain deadline"),
    }
}

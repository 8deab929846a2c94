//! Binding a service's listener (TCP: one socket, or one per worker; UDP: one socket) and
//! resizing a kept UDP socket's buffers: the parts of [`super::App::apply`] that touch sockets.

use super::{AppError, BACKLOG, workers};
use crate::config::{Protocol, ServiceConfig, SocketBuffers};
use crate::router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// A service's bound listener, before its accept loop or relay starts.
pub(super) enum Bound {
    /// TCP: the socket, or one per worker.
    Tcp(workers::TcpListeners),
    /// UDP: one socket.
    Udp(Arc<UdpSocket>),
}

/// A kept UDP listener whose buffer settings changed: its socket is resized (flows opened
/// from now on get the new sizes, open ones keep theirs). A setting taken out cannot give the
/// socket back the kernel's default: it keeps its size until the listener is bound anew.
pub(super) fn resize_udp(socket: &UdpSocket, before: SocketBuffers, service: &ServiceConfig) {
    let name = &service.name;
    if let Err(error) = router::udp::size_service_socket(socket, name, service.udp_buffers) {
        tracing::warn!(service = %name, %error, "udp socket buffers not resized");
    }
    let after = service.udp_buffers;
    if before.recv.is_some() && after.recv.is_none()
        || before.send.is_some() && after.send.is_none()
    {
        tracing::info!(service = %name, "udp socket buffer setting removed: the socket keeps its size until its listener is bound anew");
    }
}

pub(super) async fn bind(
    service: &ServiceConfig,
    listen: SocketAddr,
    workers: &workers::Workers,
) -> Result<Bound, AppError> {
    let err = |source| AppError::Bind {
        what: format!("service {}", service.name),
        protocol: service.protocol,
        address: listen,
        source,
    };
    match service.protocol {
        Protocol::Tcp => Ok(Bound::Tcp(workers.bind_tcp(listen, BACKLOG).map_err(err)?)),
        Protocol::Udp => {
            let socket = UdpSocket::bind(listen).await.map_err(err)?;
            router::udp::size_service_socket(&socket, &service.name, service.udp_buffers)
                .map_err(err)?;
            Ok(Bound::Udp(Arc::new(socket)))
        }
    }
}

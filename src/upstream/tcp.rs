//! Connecting one TCP connection to a service's endpoints.
//!
//! One function, [`connect`], owns the upstream side of a new TCP connection: pick an
//! endpoint, connect under the service's `connect_timeout`, and on failure record it for
//! passive health and move on to another endpoint, up to `connect_attempts` endpoints. Each
//! failure is counted with a bounded `reason` label. When the service asks for it, the caller
//! passes a PROXY protocol v2 header that goes out first, so the endpoint learns the real
//! client address.

use super::blame;
use crate::service_table::{ActiveGuard, Service};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// An open upstream connection.
#[derive(Debug)]
pub struct Upstream {
    /// The socket, with any PROXY header already written.
    pub stream: TcpStream,
    /// The endpoint it goes to.
    pub address: SocketAddr,
    /// Keeps the endpoint's active-connection count while the connection lives.
    pub guard: ActiveGuard,
}

/// Why no upstream connection could be made. The blame is upstream's (or the table's, or
/// ours when this process is out of descriptors: see [`super::blame`]), never the client's.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The service has no endpoint that may take new connections.
    #[error("no usable endpoint")]
    NoEndpoint,
    /// Every attempt failed; carries the last failure.
    #[error("{attempts} connect attempt(s) failed, last to {address}: {source}")]
    Failed {
        /// Attempts made.
        attempts: u32,
        /// The endpoint tried last.
        address: SocketAddr,
        /// Its error.
        #[source]
        source: io::Error,
    },
}

/// Connects `client` to an endpoint of `service`, writing `preamble` (a PROXY protocol
/// header, see [`proxy_v2_header`]) first when given.
pub async fn connect(
    service: &Service,
    client: SocketAddr,
    preamble: Option<&[u8]>,
) -> Result<Upstream, ConnectError> {
    let config = &service.config;
    let mut tried: Vec<usize> = Vec::new();
    let mut last = None;
    for _ in 0..config.connect_attempts.get() {
        let Some(i) = service.pick(client.ip(), &tried) else {
            break;
        };
        tried.push(i);
        let endpoint = &service.endpoints[i];
        match open(endpoint.address, service.config.connect_timeout, preamble).await {
            Ok(stream) => {
                endpoint.state.record_success();
                return Ok(Upstream {
                    stream,
                    address: endpoint.address,
                    guard: endpoint.state.open(),
                });
            }
            Err(error) if blame::is_local_exhaustion(&error) => {
                // Ours, not the endpoint's: no failure mark, and no other endpoint to try.
                service.live.metrics.connect_error(blame::LOCAL_RESOURCES);
                blame::warn_exhausted("tcp upstream connect", &error);
                last = Some((endpoint.address, error));
                break;
            }
            Err(error) => {
                let reason = reason(&error);
                service.live.metrics.connect_error(reason);
                let benched = endpoint
                    .state
                    .record_failure(config.max_failures, config.failure_backoff);
                if benched {
                    service.live.metrics.benched();
                    tracing::warn!(service = %config.name, endpoint = %endpoint.address,
                        backoff = ?config.failure_backoff, "endpoint benched after repeated failures");
                }
                tracing::debug!(service = %config.name, endpoint = %endpoint.address, %error, reason, "connect failed");
                last = Some((endpoint.address, error));
            }
        }
    }
    match last {
        Some((address, source)) => Err(ConnectError::Failed {
            attempts: tried.len() as u32,
            address,
            source,
        }),
        None => {
            service.live.metrics.connect_error("no_endpoint");
            Err(ConnectError::NoEndpoint)
        }
    }
}

/// One TCP connection to `address` within `deadline`, with Nagle off and `preamble` (a PROXY
/// header) written first; shared by L4 connections and the HTTP/1.1 upstream pool.
pub(crate) async fn open(
    address: SocketAddr,
    deadline: Duration,
    preamble: Option<&[u8]>,
) -> io::Result<TcpStream> {
    let mut stream = timeout(deadline, TcpStream::connect(address))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    if let Some(bytes) = preamble {
        stream.write_all(bytes).await?;
    }
    Ok(stream)
}

/// The binary PROXY protocol v2 header for a TCP connection from `client` to `local`.
pub fn proxy_v2_header(client: SocketAddr, local: SocketAddr) -> io::Result<Vec<u8>> {
    use ppp::v2::{Builder, Command, Protocol, Version};
    // Both addresses must be of one family; an IPv4 client on a dual-stack socket shows up
    // as an IPv4-mapped IPv6 address, which we unmap.
    let canon = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (client, local) = (canon(client), canon(local));
    let local = match (client, local) {
        (SocketAddr::V4(_), SocketAddr::V6(l)) => SocketAddr::new([0, 0, 0, 0].into(), l.port()),
        (SocketAddr::V6(_), SocketAddr::V4(l)) => {
            SocketAddr::new(l.ip().to_ipv6_mapped().into(), l.port())
        }
        _ => local,
    };
    Builder::with_addresses(
        Version::Two | Command::Proxy,
        Protocol::Stream,
        (client, local),
    )
    .build()
}

/// A bounded label for a connect error.
fn reason(error: &io::Error) -> &'static str {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "refused",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "reset",
        io::ErrorKind::AddrNotAvailable => "no_local_address",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_v2_header_round_trips_through_a_parser() {
        let client: SocketAddr = "192.0.2.10:40000".parse().unwrap();
        let local: SocketAddr = "198.51.100.1:443".parse().unwrap();
        let bytes = proxy_v2_header(client, local).unwrap();
        let header = ppp::v2::Header::try_from(bytes.as_slice()).unwrap();
        match header.addresses {
            ppp::v2::Addresses::IPv4(a) => {
                assert_eq!(a.source_address, std::net::Ipv4Addr::new(192, 0, 2, 10));
                assert_eq!(a.source_port, 40000);
                assert_eq!(
                    a.destination_address,
                    std::net::Ipv4Addr::new(198, 51, 100, 1)
                );
                assert_eq!(a.destination_port, 443);
            }
            other => panic!("expected IPv4 addresses, got {other:?}"),
        }
    }

    #[test]
    fn proxy_v2_header_unmaps_ipv4_mapped_clients() {
        let client: SocketAddr = "[::ffff:192.0.2.10]:1".parse().unwrap();
        let local: SocketAddr = "[::]:443".parse().unwrap();
        let bytes = proxy_v2_header(client, local).unwrap();
        let header = ppp::v2::Header::try_from(bytes.as_slice()).unwrap();
        assert!(matches!(header.addresses, ppp::v2::Addresses::IPv4(_)));
    }
}

//! The upstream side: connecting to a service's endpoints.
//!
//! - [`blame`]: who a failure is blamed on (client, endpoint, or this proxy's own limits);
//! - [`tcp`]: one L4 connection: pick, connect under a deadline, retry the next endpoint,
//!   passive health, optional PROXY v2 preamble;
//! - [`http`]: the pooled HTTP client the L7 router forwards requests with;
//! - [`pool`]: its keep-alive pool of HTTP/1.1 connections per endpoint;
//! - [`trust`]: the rustls config of TLS upstreams: CA file, PEM text or system roots;
//! - `verify_names`: the certificate verifier of `upstream_verify_names` (subject names other
//!   than the SNI);
//! - `unverified`: the certificate verifier of `upstream_verify = false`.

pub mod blame;
pub mod http;
pub mod pool;
pub mod tcp;
pub mod trust;
pub mod unverified;
mod verify_names;

pub use tcp::{ConnectError, Upstream, connect, proxy_v2_header};

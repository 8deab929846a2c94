//! # Switchyard
//!
//! An IPVS-style data-plane proxy: a lock-free table of virtual services (VIP:port → endpoints),
//! IPVS schedulers, and user-space TCP/UDP proxying, fed by a TOML file.
//!
//! ```text
//! client ──> listener (one per service: VIP:port, tcp or udp)
//!               │  one ArcSwap::load() per connection, no lock
//!               ▼
//!      service table snapshot: name -> Service { endpoints, picker }
//!               │  pick (rr | wrr | lc | wlc | sh | mh | twos), skip benched/tried
//!               ▼
//!      connect (deadline, retry next endpoint) ──> copy both ways (half-close, idle timeout)
//! ```
//!
//! The control plane builds whole new snapshots and publishes them:
//!
//! ```text
//! TOML file ──(start, SIGHUP, file change)──> validate ──┐
//!     bad file: logged, counted, old table keeps serving  ├─ merge ─> Snapshot::rebuild ─> TableHandle
//! Kubernetes watchers (discovery) ──> per-object checks ──┘               ├─> listeners (start/stop)
//!     bad object: skipped, logged, counted                                └─> admin /debug/table
//! ```
//!
//! Modules:
//! - [`config`]: the TOML file, in two layers (raw serde structs → validated domain types);
//! - [`service_table`]: snapshots, endpoints and their live state, publishing;
//! - [`balance`]: the schedulers, one file each behind the [`balance::Pick`] trait;
//! - [`upstream`]: connecting to endpoints (deadline, retry, passive health, PROXY v2);
//! - [`router`]: listeners, the HTTP router and the TCP and UDP proxies;
//! - [`http1`]: HTTP/1.1 heads and body framing on the wire (the HTTP fast path's codec);
//! - [`forward`]: the header rewrite every proxied HTTP message goes through, both versions;
//! - [`policy`]: route policy per request: limits per client address, CORS;
//! - [`ipvs`]: the optional kernel IPVS data plane (genetlink client, pure diff, reconciler);
//! - [`admin`]: `/metrics`, `/livez`, `/readyz`, `/debug/table`, `/debug/ipvs`;
//! - [`app`]: wires everything together, owns reload, shutdown and drain;
//! - [`demo`]: the embedded default config and its demo backends;
//! - [`discovery`]: the Kubernetes source (Services, EndpointSlices, Ingresses, TLS Secrets);
//! - [`telemetry`]: metric names and logging.

pub mod admin;
pub mod app;
pub mod balance;
pub mod config;
pub mod demo;
pub mod discovery;
pub mod forward;
pub mod http1;
pub mod ingress;
pub mod ipvs;
pub mod policy;
pub mod router;
pub mod service_table;
pub mod telemetry;
pub mod tls;
pub mod upstream;
#[cfg(test)]
mod wake_count;

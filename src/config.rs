//! Validated configuration: the domain types the rest of the proxy runs on.
//!
//! Loading is two layers (see DESIGN.md §4.3): [`file`] holds serde structs that mirror the
//! TOML file, and [`validate`] turns them into a [`Config`] of real types (`SocketAddr`,
//! `Duration`, `NonZeroU32`). Syntax errors stop at the first problem (that is what the TOML
//! parser can do); semantic errors are all collected, each with the path of the offending key,
//! so `switchyard check` shows everything wrong with a file in one go.

pub mod file;
pub mod filters;
mod http;
mod ipvs;
mod matches;
pub mod policy;
mod route_source;
pub mod upstream_policy;
mod upstream_tls;
mod validate;
mod validate_backends;
mod validate_fence;
mod validate_http;
mod validate_passthrough;
mod validate_udp;
mod validate_upstream_tls;

pub use http::{AccessLog, HostConfig, HttpConfig, ListenerConfig, PassthroughConfig, RouteConfig};
pub use ipvs::{Dataplane, Forwarding, IpvsConfig, ServiceIpvs};
pub use route_source::RouteSource;
pub use upstream_tls::{SubjectName, SubjectNameError, Trust};

use crate::balance::Scheduler;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The whole validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Admin listener settings.
    pub admin: AdminConfig,
    /// Process-wide settings.
    pub runtime: RuntimeConfig,
    /// Virtual services, in file order.
    pub services: Vec<ServiceConfig>,
    /// The HTTP router: listeners, certificates, hosts and routes.
    pub http: HttpConfig,
    /// Kernel IPVS data plane settings.
    pub ipvs: IpvsConfig,
}

/// `[admin]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminConfig {
    /// Where `/metrics`, `/livez`, `/readyz` and `/debug/table` are served.
    pub listen: SocketAddr,
}

/// `[runtime]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeConfig {
    /// Data-plane worker threads; `None`: the process default ([`crate::app::workers::set_defaults`],
    /// one per CPU in the binary; without it, no pool: listeners run on the caller's runtime).
    pub workers: Option<NonZeroUsize>,
    /// How long open connections may drain on shutdown.
    pub drain_timeout: Duration,
    /// How often the config file is polled for changes; `None` turns watching off.
    pub watch_interval: Option<Duration>,
}

/// One virtual service: a listen address and the endpoints behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// Unique name, also the `service` metric label.
    pub name: Arc<str>,
    /// Address the L4 listener binds; `None` for a service reached only through HTTP routes.
    pub listen: Option<SocketAddr>,
    /// Transport protocol.
    pub protocol: Protocol,
    /// How endpoints are chosen.
    pub scheduler: Scheduler,
    /// Maglev table size (prime); used by `mh` only.
    pub mh_table_size: u32,
    /// Upstream connect deadline.
    pub connect_timeout: Duration,
    /// HTTP: deadline for response headers.
    pub response_timeout: Duration,
    /// HTTP: protocol spoken to the endpoints.
    pub upstream_protocol: UpstreamProtocol,
    /// HTTP `https`/`h2`: the CAs the endpoints' certificates are verified with.
    pub upstream_ca: Option<Trust>,
    /// HTTP `https`/`h2`: SNI and name to verify (default: the endpoint's IP).
    pub upstream_sni: Option<String>,
    /// HTTP `https`/`h2`: names the certificate must carry instead of the SNI (any one).
    pub upstream_verify_names: Vec<SubjectName>,
    /// `https`: verify the endpoints' certificates (false: encryption only).
    pub upstream_verify: bool,
    /// Endpoints tried per connection before giving up.
    pub connect_attempts: NonZeroU32,
    /// Close connections (forget flows) idle for this long.
    pub idle_timeout: Duration,
    /// Most concurrent TCP connections; `None` is unlimited.
    pub max_connections: Option<NonZeroUsize>,
    /// Most concurrent UDP flows.
    pub max_flows: NonZeroUsize,
    /// UDP: kernel buffer sizes of the service's socket and its flows' sockets.
    pub udp_buffers: SocketBuffers,
    /// PROXY protocol header sent to endpoints.
    pub proxy_protocol: ProxyProtocol,
    /// HTTP: `Upgrade` protocols passed on to the endpoints (lowercase; never `h2c`).
    pub upgrades: Vec<Arc<str>>,
    /// Passive health: consecutive failures before an endpoint is skipped (`None`: never).
    pub max_failures: Option<NonZeroU32>,
    /// Passive health: how long a failed endpoint is skipped.
    pub failure_backoff: Duration,
    /// The real servers.
    pub endpoints: Vec<EndpointConfig>,
    /// Data plane and kernel IPVS settings.
    pub ipvs: ServiceIpvs,
}

/// Kernel socket buffer sizes asked for, in bytes; `None` keeps the kernel's default.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// `SO_RCVBUF`: how much may queue before the kernel drops incoming datagrams.
    pub recv: Option<NonZeroU32>,
    /// `SO_SNDBUF`: how much may wait to go out before a send would block.
    pub send: Option<NonZeroU32>,
}

/// One real server of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointConfig {
    /// Its address.
    pub address: SocketAddr,
    /// Relative weight; 0 means drain (no new connections).
    pub weight: u32,
}

/// Transport protocol of a service.
#[derive(
    Debug, Default, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP stream proxying.
    #[default]
    Tcp,
    /// UDP datagram proxying.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// Protocol spoken to a service's endpoints by the HTTP router.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 with keep-alive.
    #[default]
    Http1,
    /// HTTP/2 over plain TCP ("prior knowledge"): for gRPC endpoints.
    H2c,
    /// HTTP/1.1 over TLS to the endpoints (ALPN http/1.1), verified with `upstream_ca`.
    Https,
    /// HTTP/2 over TLS to the endpoints (ALPN h2), verified with `upstream_ca`: gRPC over TLS.
    H2,
}

/// PROXY protocol header sent to endpoints.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// Send nothing.
    #[default]
    None,
    /// Binary PROXY protocol v2.
    V2,
}

/// Largest endpoint weight accepted (the same bound as HAProxy's `weight` × 256).
pub const MAX_WEIGHT: u32 = 65_535;
/// Default Maglev table size: the prime the NSDI'16 paper and `ip_vs_mh` use.
pub const DEFAULT_MH_TABLE_SIZE: u32 = 65_537;

/// One problem found in a config, with the path of the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted path, e.g. `services[2].endpoints[0].address`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML or does not fit the schema.
    #[error("{origin}: {path}: {message}")]
    Syntax {
        /// File name (or `<embedded>`).
        origin: String,
        /// Path of the key at fault (`.` when unknown).
        path: String,
        /// The parser's message.
        message: String,
    },
    /// The file parsed but some values are not acceptable.
    #[error("{origin}: {} problem(s):\n  {}", .issues.len(), join_issues(.issues))]
    Invalid {
        /// File name (or `<embedded>`).
        origin: String,
        /// Every problem found.
        issues: Vec<Issue>,
    },
}

fn join_issues(issues: &[Issue]) -> String {
    let lines: Vec<String> = issues.iter().map(Issue::to_string).collect();
    lines.join("\n  ")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, origin, false)
    }

    /// `external_certificates`: TLS listeners may lack `[[certificates]]`.
    fn parse_with(
        text: &str,
        origin: &str,
        external_certificates: bool,
    ) -> Result<Config, ConfigError> {
        // An empty file is far more often a truncated write than a wish to stop everything.
        let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
        if text.lines().all(blank) {
            return Err(ConfigError::Syntax {
                origin: origin.to_owned(),
                path: ".".to_owned(),
                message: "the file is empty".to_owned(),
            });
        }
        let raw = parse_raw(text, origin)?;
        validate::validate(raw, external_certificates).map_err(|issues| ConfigError::Invalid {
            origin: origin.to_owned(),
            issues,
        })
    }

    /// Like [`Config::load`], for a file beside the Kubernetes source: TLS listeners may have
    /// no `[[certificates]]`, since certificates can come from TLS Secrets.
    pub fn load_for_kubernetes(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse_for_kubernetes(&text, &path.display().to_string())
    }

    /// Like [`Config::parse`], allowing TLS listeners without `[[certificates]]`.
    pub fn parse_for_kubernetes(text: &str, origin: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, origin, true)
    }

    /// The service with this name, if any.
    pub fn service(&self, name: &str) -> Option<&ServiceConfig> {
        self.services.iter().find(|s| &*s.name == name)
    }
}

impl ServiceConfig {
    /// A TCP service with the file's defaults for every setting, no listener and no
    /// endpoints: the starting point for services made from Kubernetes objects.
    pub fn with_defaults(name: Arc<str>) -> ServiceConfig {
        ServiceConfig {
            name,
            listen: None,
            protocol: Protocol::Tcp,
            scheduler: Scheduler::default(),
            mh_table_size: DEFAULT_MH_TABLE_SIZE,
            connect_timeout: file::default_connect_timeout(),
            response_timeout: file::default_response_timeout(),
            upstream_protocol: UpstreamProtocol::default(),
            upstream_ca: None,
            upstream_sni: None,
            upstream_verify_names: Vec::new(),
            upstream_verify: true,
            connect_attempts: NonZeroU32::new(file::default_connect_attempts())
                .unwrap_or(NonZeroU32::MIN),
            idle_timeout: Duration::from_secs(600),
            max_connections: None,
            max_flows: NonZeroUsize::new(file::default_max_flows()).unwrap_or(NonZeroUsize::MIN),
            udp_buffers: SocketBuffers::default(),
            proxy_protocol: ProxyProtocol::None,
            upgrades: file::default_upgrades()
                .iter()
                .map(|u| Arc::from(u.as_str()))
                .collect(),
            max_failures: NonZeroU32::new(file::default_max_failures()),
            failure_backoff: file::default_failure_backoff(),
            endpoints: Vec::new(),
            ipvs: ServiceIpvs::default(),
        }
    }
}

fn parse_raw(text: &str, origin: &str) -> Result<file::RawConfig, ConfigError> {
    let syntax = |path: String, message: String| ConfigError::Syntax {
        origin: origin.to_owned(),
        path,
        message,
    };
    let de = toml::Deserializer::parse(text)
        .map_err(|e| syntax(".".to_owned(), one_line(&e.to_string())))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        syntax(path, one_line(&e.into_inner().to_string()))
    })
}

/// The TOML crate renders errors as multi-line snippets that quote the source line; keep the
/// message on one line, and any one word of it short (a one-line file of megabytes would
/// otherwise be quoted whole).
fn one_line(message: &str) -> String {
    const MAX_WORD: usize = 80;
    let short = |word: &str| match word.char_indices().nth(MAX_WORD) {
        Some((end, _)) => format!("{}…", &word[..end]),
        None => word.to_owned(),
    };
    message
        .split_whitespace()
        .map(short)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;

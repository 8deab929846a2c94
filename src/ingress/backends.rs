//! Which service of a route serves a request: one service, or a weighted split across several
//! (a canary), the key a hashing scheduler hashes (`hash_on`), and the service that answers
//! when the chosen one has no usable endpoint (`fallback_service`).
//!
//! The split is drawn once per request, when it is routed (both the HTTP/1.1 fast path and
//! hyper route through the same function), with one number from `fastrand`'s thread-local
//! generator and a binary search over the cumulative weights: no lock, no shared counter, so
//! it costs the same on every core. A weight of 0 keeps a backend in the route but never
//! chosen (the Gateway API's way to drain one side of a canary); all weights 0 is a config
//! error. Each backend keeps its own metric handles, so the `service` label of a request is
//! the service actually chosen.
//!
//! A backend is a [`Role::Primary`] or a [`Role::Canary`] so that rules picking the canary by
//! request (ingress-nginx's `canary-by-header`, `canary-by-cookie`) can be added on top.

use crate::telemetry::metrics::HttpMetrics;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// What a route's hashing schedulers (`sh`, `mh`) hash instead of the client address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    /// The client's address (the default without `hash_on`).
    ClientIp,
    /// The normalised request path, without the query.
    Path,
    /// A request header's value (the name in lowercase); the first one if several.
    Header(Arc<str>),
    /// A cookie's value.
    Cookie(Arc<str>),
}

/// Why a `hash_on` value is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid hash_on {0:?}: use \"client_ip\", \"path\", \"header:NAME\" or \"cookie:NAME\"")]
pub struct HashOnError(pub String);

impl HashOn {
    /// Parses `client_ip`, `path`, `header:NAME` or `cookie:NAME`.
    pub fn parse(text: &str) -> Result<HashOn, HashOnError> {
        let bad = || HashOnError(text.to_owned());
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        match text.split_once(':') {
            None if text == "client_ip" => Ok(HashOn::ClientIp),
            None if text == "path" => Ok(HashOn::Path),
            Some(("header", name)) if token(name) => {
                Ok(HashOn::Header(name.to_ascii_lowercase().into()))
            }
            Some(("cookie", name)) if token(name) => Ok(HashOn::Cookie(name.into())),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for HashOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashOn::ClientIp => f.write_str("client_ip"),
            HashOn::Path => f.write_str("path"),
            HashOn::Header(name) => write!(f, "header:{name}"),
            HashOn::Cookie(name) => write!(f, "cookie:{name}"),
        }
    }
}

/// What a backend is to its route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// The route's own service.
    #[default]
    Primary,
    /// A canary beside it (ingress-nginx's `canary` Ingress).
    Canary,
}

/// One weighted service of a route, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedService {
    /// The service's name.
    pub service: Arc<str>,
    /// Its share: `weight / sum of weights`; 0 never chosen.
    pub weight: u32,
    /// Primary or canary.
    pub role: Role,
}

/// A route's backend settings besides its one `service` (all empty by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendPolicy {
    /// A weighted split; empty: the route's `service` alone. Weights sum to more than 0.
    pub split: Vec<WeightedService>,
    /// What `sh`/`mh` services hash; `None`: the client address.
    pub hash_on: Option<HashOn>,
    /// The service used when the chosen one has no usable endpoint.
    pub fallback_service: Option<Arc<str>>,
}

/// A service a request can be sent to, with its metric handles.
#[derive(Debug)]
pub struct Backend {
    /// The service's name.
    pub service: Arc<str>,
    /// Its weight in the split (0 for a fallback).
    pub weight: u32,
    /// Primary or canary.
    pub role: Role,
    metrics: OnceLock<Arc<HttpMetrics>>,
}

impl Backend {
    fn new(service: &Arc<str>, weight: u32, role: Role) -> Backend {
        Backend {
            service: Arc::clone(service),
            weight,
            role,
            metrics: OnceLock::new(),
        }
    }

    /// The metric handles of requests this backend serves on `route`, registered on first use.
    pub fn metrics(&self, route: &str) -> Arc<HttpMetrics> {
        Arc::clone(
            self.metrics
                .get_or_init(|| Arc::new(HttpMetrics::new(&self.service, route))),
        )
    }
}

impl PartialEq for Backend {
    fn eq(&self, other: &Backend) -> bool {
        (&self.service, self.weight, self.role) == (&other.service, other.weight, other.role)
    }
}
impl Eq for Backend {}

/// A weighted split, built once per snapshot.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    backends: Box<[Backend]>,
    /// Running sums of the weights: backend `i` takes draws in `ends[i-1]..ends[i]`.
    ends: Box<[u64]>,
}

impl Split {
    /// The split of `services`; `None` when the weights sum to 0 (nothing could be chosen).
    pub fn new(services: &[WeightedService]) -> Option<Split> {
        let ends: Box<[u64]> = services
            .iter()
            .scan(0u64, |sum, s| {
                *sum += u64::from(s.weight);
                Some(*sum)
            })
            .collect();
        (ends.last().copied().unwrap_or(0) > 0).then(|| Split {
            backends: services
                .iter()
                .map(|s| Backend::new(&s.service, s.weight, s.role))
                .collect(),
            ends,
        })
    }

    /// A backend drawn by weight.
    pub fn choose(&self) -> &Backend {
        let total = self.ends.last().copied().unwrap_or(1).max(1);
        self.choose_at(fastrand::u64(0..total))
    }

    /// The backend whose share holds `draw` (below the weights' sum).
    pub fn choose_at(&self, draw: u64) -> &Backend {
        let i = self.ends.partition_point(|&end| end <= draw);
        &self.backends[i.min(self.backends.len() - 1)]
    }

    /// The backends, in config order.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }
}

/// A route target's backend settings, built for the data path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RouteBackends {
    /// The weighted split, if the route has one.
    pub split: Option<Arc<Split>>,
    /// What `sh`/`mh` hash.
    pub hash_on: Option<HashOn>,
    /// The fallback service.
    pub fallback: Option<Arc<Backend>>,
}

impl RouteBackends {
    /// Builds the settings of `policy`.
    pub fn build(policy: &BackendPolicy) -> RouteBackends {
        RouteBackends {
            split: Split::new(&policy.split).map(Arc::new),
            hash_on: policy.hash_on.clone(),
            fallback: policy
                .fallback_service
                .as_ref()
                .map(|s| Arc::new(Backend::new(s, 0, Role::Primary))),
        }
    }
}

#[cfg(test)]
#[path = "backends_tests.rs"]
mod tests;

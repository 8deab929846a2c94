//! The routing part of a table snapshot: the config's routes, hosts and defaults built into
//! one [`RouteTable`] whose backends name services of the same snapshot.

use super::{Conflict, HostPattern, Hostname, Lookup, RouteTable, Rule};
use crate::config::HttpConfig;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a matched request goes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The service (by name) whose endpoints serve it.
    pub service: Arc<str>,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: Option<u64>,
    /// Plain-HTTP requests get a 308 to https instead (ACME challenges excepted).
    pub redirect_https: bool,
}

/// Routes of one snapshot, and the request-path settings that change with them.
#[derive(Debug, Default)]
pub struct HttpRoutes {
    /// Peers whose `X-Forwarded-*` headers are trusted.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Also send RFC 7239 `Forwarded`.
    pub forwarded: bool,
    /// Access log format.
    pub access_log: crate::config::AccessLog,
    table: RouteTable<RouteTarget>,
    /// Hosts with `redirect_https`, for requests that match no route at all.
    redirect_hosts: Vec<HostPattern>,
}

impl HttpRoutes {
    /// Builds the routes of `config`. Conflicts were rejected by config validation, so any
    /// left (only possible from other sources) keep the first rule, and are logged.
    pub fn build(config: &HttpConfig) -> HttpRoutes {
        let (routes, conflicts) = HttpRoutes::build_checked(config);
        for conflict in conflicts {
            tracing::warn!(%conflict, "route skipped");
        }
        routes
    }

    /// Builds the routes of `config` and returns the rules it had to leave out (indices are
    /// positions in `config.routes`; host defaults are numbered among hosts that have one).
    pub fn build_checked(config: &HttpConfig) -> (HttpRoutes, Vec<Conflict>) {
        let redirect: HashMap<&HostPattern, bool> = config
            .hosts
            .iter()
            .map(|h| (&h.host, h.redirect_https))
            .collect();
        let redirects = |host: Option<&HostPattern>| {
            host.and_then(|h| redirect.get(h)).copied().unwrap_or(false)
        };
        let rules = config
            .routes
            .iter()
            .map(|r| Rule {
                host: r.host.clone(),
                path: r.path.clone(),
                path_type: r.path_type,
                backend: RouteTarget {
                    service: Arc::clone(&r.service),
                    max_body_bytes: r.max_body_bytes,
                    redirect_https: redirects(r.host.as_ref()),
                },
            })
            .collect();
        let host_defaults = config
            .hosts
            .iter()
            .filter_map(|h| {
                let service = h.default_service.as_ref()?;
                let target = RouteTarget {
                    service: Arc::clone(service),
                    max_body_bytes: None,
                    redirect_https: h.redirect_https,
                };
                Some((h.host.clone(), target))
            })
            .collect();
        let default = config.default_service.as_ref().map(|s| RouteTarget {
            service: Arc::clone(s),
            max_body_bytes: None,
            redirect_https: false,
        });
        let (table, conflicts) = RouteTable::build(rules, host_defaults, default);
        let redirect_hosts = config
            .hosts
            .iter()
            .filter(|h| h.redirect_https)
            .map(|h| h.host.clone())
            .collect();
        let routes = HttpRoutes {
            trusted_proxies: config.trusted_proxies.clone(),
            forwarded: config.forwarded,
            access_log: config.access_log,
            table,
            redirect_hosts,
        };
        (routes, conflicts)
    }

    /// The route for a request.
    pub fn lookup(&self, host: Option<&Hostname>, path: &str) -> Lookup<'_, RouteTarget> {
        self.table.lookup(host, path)
    }

    /// Whether `X-Forwarded-*` from `peer` may be kept.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Whether plain-HTTP requests for `host` are redirected to https, route or not.
    pub fn redirects(&self, host: &Hostname) -> bool {
        self.redirect_hosts.iter().any(|p| p.matches(host))
    }
}

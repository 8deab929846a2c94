//! The routing part of a table snapshot: the config's routes, hosts and defaults built into
//! one [`RouteTable`] whose backends name services of the same snapshot.
//!
//! Each target has its own metric handles (labels `service` and `route`), registered on its
//! first request rather than at build time, so checking a config registers nothing and a
//! reload costs no registry work for routes nobody uses.

use super::{Conflict, HostPattern, Hostname, Lookup, RouteTable, Rule};
use crate::config::HttpConfig;
use crate::telemetry::metrics::HttpMetrics;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Where a matched request goes, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTarget {
    /// The service (by name) whose endpoints serve it (empty when its filters redirect).
    pub service: Arc<str>,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: Option<u64>,
    /// Plain-HTTP requests get a 308 to https instead (ACME challenges excepted).
    pub redirect_https: bool,
    /// Client networks allowed; others get 403. Empty: everyone.
    pub allow_sources: Arc<[ipnet::IpNet]>,
    /// Cookie that pins a client to an endpoint.
    pub sticky_cookie: Option<Arc<str>>,
    /// The `route` metric label.
    pub name: Arc<str>,
    /// Weighted split, hash key and fallback service (see [`super::backends`]).
    pub backends: super::RouteBackends,
    /// Header edits, redirect, rewrite (`None`: none).
    pub filters: Option<Arc<super::filters::RouteFilters>>,
    /// Limits per client and CORS ([`crate::policy`]); `None`: neither.
    pub policy: Option<Arc<crate::policy::RoutePolicy>>,
    /// Retries, timeouts and mirroring, with their live state.
    pub upstream: Arc<super::UpstreamPolicy>,
    /// Index of this target's metric handles in its [`HttpRoutes`].
    metrics: usize,
}

impl RouteTarget {
    fn new(service: &Arc<str>, name: String, redirect_https: bool, metrics: usize) -> Self {
        RouteTarget {
            service: Arc::clone(service),
            max_body_bytes: None,
            redirect_https,
            allow_sources: Arc::from([]),
            sticky_cookie: None,
            filters: None,
            upstream: Arc::default(),
            name: name.into(),
            backends: super::RouteBackends::default(),
            policy: None,
            metrics,
        }
    }

    /// Whether a client at `ip` may use this route.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow_sources.is_empty() || self.allow_sources.iter().any(|n| n.contains(&ip))
    }
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
    /// Listeners with tables of their own (`None`: every listener serves `table`).
    scoped: Option<Box<super::listener_routes::Scoped<RouteTarget>>>,
    /// Hosts with `redirect_https`, for requests that match no route at all.
    redirect_hosts: Vec<HostPattern>,
    /// Metric handles per target, registered on first use.
    metrics: Vec<OnceLock<Arc<HttpMetrics>>>,
    /// The routes' limit state, for the next table to take over ([`HttpRoutes::build_after`]).
    carried: crate::policy::limit::Carried,
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
        HttpRoutes::build_from(config, None)
    }

    /// Builds the routes of `config` to replace `previous`: a route whose name and limits
    /// are unchanged keeps its clients' limit state.
    pub fn build_after(config: &HttpConfig, previous: &HttpRoutes) -> HttpRoutes {
        let (routes, conflicts) = HttpRoutes::build_from(config, Some(previous));
        for conflict in conflicts {
            tracing::warn!(%conflict, "route skipped");
        }
        routes
    }

    fn build_from(
        config: &HttpConfig,
        previous: Option<&HttpRoutes>,
    ) -> (HttpRoutes, Vec<Conflict>) {
        let mut carried = crate::policy::limit::Carried::default();
        let redirect: HashMap<&HostPattern, bool> = config
            .hosts
            .iter()
            .map(|h| (&h.host, h.redirect_https))
            .collect();
        let redirects = |host: Option<&HostPattern>| {
            host.and_then(|h| redirect.get(h)).copied().unwrap_or(false)
        };
        let rules: Vec<_> = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| Rule {
                host: r.host.clone(),
                path: r.path.clone(),
                path_type: r.path_type,
                conditions: r.conditions.clone(),
                backend: RouteTarget {
                    max_body_bytes: r.max_body_bytes,
                    allow_sources: r.allow_sources.clone().into(),
                    sticky_cookie: r.sticky_cookie.clone(),
                    backends: super::RouteBackends::build(&r.backends),
                    filters: r.filters.clone(),
                    policy: crate::policy::RoutePolicy::build(
                        &r.name,
                        &r.limits,
                        r.cors.as_ref(),
                        &mut carried,
                        previous.map(|p| &p.carried),
                    ),
                    upstream: Arc::new(super::UpstreamPolicy::new(
                        r.upstream.clone(),
                        Arc::clone(&r.name),
                    )),
                    ..RouteTarget::new(
                        &r.service,
                        r.name.to_string(),
                        redirects(r.host.as_ref()),
                        i,
                    )
                },
            })
            .collect();
        let mut next = rules.len();
        let host_defaults: Vec<_> = config
            .hosts
            .iter()
            .filter_map(|h| {
                let service = h.default_service.as_ref()?;
                next += 1;
                let name = format!("{} default", h.host);
                let target = RouteTarget::new(service, name, h.redirect_https, next - 1);
                Some((h.host.clone(), target))
            })
            .collect();
        let default = config
            .default_service
            .as_ref()
            .map(|s| RouteTarget::new(s, "default".to_owned(), false, next));
        let fences = config
            .routes
            .iter()
            .map(|r| r.listeners.as_deref())
            .collect();
        let (table, scoped, conflicts) = super::listener_routes::build(
            &config.listeners,
            rules,
            &fences,
            host_defaults,
            default,
        );
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
            scoped,
            redirect_hosts,
            metrics: (0..=next).map(|_| OnceLock::new()).collect(),
            carried,
        };
        (routes, conflicts)
    }

    /// The route for a request.
    pub fn lookup(&self, host: Option<&Hostname>, path: &str) -> Lookup<'_, RouteTarget> {
        self.table.lookup(host, path)
    }

    /// The route for a request whose method, query and headers are `request` (for routes
    /// with conditions).
    pub fn lookup_request(
        &self,
        host: Option<&Hostname>,
        path: &str,
        request: &super::RequestView<'_>,
    ) -> Lookup<'_, RouteTarget> {
        self.table.lookup_request(host, path, request)
    }

    /// The route for a request for `host` that arrived on `listener`: only the routes that
    /// listener serves ([`super::listener_routes`]); `NoHost` where it serves none.
    pub fn lookup_on(
        &self,
        listener: &str,
        host: &Hostname,
        path: &str,
        request: &super::RequestView<'_>,
    ) -> Lookup<'_, RouteTarget> {
        self.lookup_on_tls(listener, None, host, path, request)
    }

    /// [`Self::lookup_on`] for a request on a TLS connection whose server name was `sni`: on
    /// a port of Gateway listeners, the listener is the one the SNI names.
    pub fn lookup_on_tls(
        &self,
        listener: &str,
        sni: Option<&str>,
        host: &Hostname,
        path: &str,
        request: &super::RequestView<'_>,
    ) -> Lookup<'_, RouteTarget> {
        let table = match &self.scoped {
            None => Some(&self.table),
            Some(s) => s.table(&self.table, listener, sni, host),
        };
        match table {
            Some(t) => t.lookup_request(Some(host), path, request),
            None => Lookup::NoHost,
        }
    }

    /// The metric handles of `target` (one of this table's), registered on first use.
    pub fn metrics(&self, target: &RouteTarget) -> Arc<HttpMetrics> {
        match self.metrics.get(target.metrics) {
            Some(cell) => Arc::clone(
                cell.get_or_init(|| Arc::new(HttpMetrics::new(&target.service, &target.name))),
            ),
            None => HttpMetrics::unrouted(),
        }
    }

    /// Whether `X-Forwarded-*` from `peer` may be kept.
    pub fn trusts(&self, peer: std::net::IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// Whether plain-HTTP requests for `host` on `listener` are redirected to https, route or
    /// not: the file's hosts settings apply only where the shared routes are served.
    pub fn redirects_on(&self, listener: &str, host: &Hostname) -> bool {
        let shared = match &self.scoped {
            None => true,
            Some(s) => s.serves_shared(listener, host),
        };
        shared && self.redirects(host)
    }

    /// Whether plain-HTTP requests for `host` are redirected to https, route or not.
    pub fn redirects(&self, host: &Hostname) -> bool {
        self.redirect_hosts.iter().any(|p| p.matches(host))
    }
}

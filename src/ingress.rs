//! Ingress routing: which backend an HTTP request goes to, from its host and path.
//!
//! The semantics are exactly those of a Kubernetes Ingress (`networking.k8s.io/v1`), so an
//! Ingress object, whether it comes from the cluster or from our config file, routes here as
//! the Kubernetes documentation says it does, and as users know it from other controllers:
//!
//! - an exact host beats a wildcard (`*.example.com`, one label only), which beats rules
//!   without a host; only that most specific host group is searched for a path;
//! - within it the longest matching path wins, `Exact` before `Prefix` on a tie; `Prefix`
//!   matches whole `/`-separated elements (`/aaa/bbb` matches `/aaa/bbb/ccc`, not `/aaa/bbbxyz`);
//!   `RegularExpression` paths come after `Exact` and before every prefix;
//! - rules may add [`Conditions`] (method, headers, query parameters); among rules for the same
//!   path they are ordered as the Gateway API orders matches, and when all of a path's rules
//!   fail their conditions the next shorter path is tried;
//! - then the host's default backend, then the global default backend, then a 404
//!   ([`Lookup::NoPath`] or [`Lookup::NoHost`]).
//!
//! Why a module of its own, with no I/O: routing is pure, runs on every request and must be
//! right to the letter, so it is a plain data structure built once per config snapshot
//! ([`RouteTable::build`]) and read without locks or allocation ([`RouteTable::lookup`]),
//! tested against the documentation's own examples. It is generic over the backend type, so the
//! HTTP proxy stores whatever it needs per route.
//!
//! Files: `host.rs` ([`Hostname`]: validated, normalised hosts), `pattern.rs`
//! ([`HostPattern`]: exact and one-label wildcard), `routes.rs` ([`PathType`], [`Rule`],
//! [`RouteTable`], [`Lookup`]: the table, its build and its lookup; its module doc has the
//! details), `path_rules.rs` (path validation, [`PathError`], [`Conflict`]),
//! `host_group.rs`, `route_list.rs` and `regex_paths.rs` (a host's rules, the rules sharing
//! one path, and `RegularExpression` paths), `matches.rs` and `query.rs` ([`Conditions`] on
//! method, headers and query parameters, and their precedence),
//! `http_routes.rs` ([`HttpRoutes`]: the config's routes built into a table of services, as a
//! snapshot holds them), `normalize.rs` ([`normalize_target`], [`split_absolute`]: the one
//! normalised form of a request target that routing, `allow_sources` and the backend all see),
//! `backends.rs` ([`BackendPolicy`], [`RouteBackends`]: weighted splits, `hash_on`, fallback)
//! and `filters.rs` ([`filters::RouteFilters`]: a route's header edits, redirect and rewrite).

pub mod backends;
pub mod filters;
mod host;
mod host_group;
mod host_merge;
mod http_routes;
pub mod listener_routes;
pub mod matches;
pub mod normalize;
mod path_rules;
mod pattern;
mod query;
pub mod regex_paths;
mod route_list;
mod routes;
mod upstream_policy;

pub use backends::{BackendPolicy, HashOn, Role, RouteBackends, Split, WeightedService};
pub use host::{HostError, HostPattern, Hostname, MAX_HOST_LEN, MAX_LABEL_LEN};
pub use http_routes::{HttpRoutes, RouteTarget};
pub use matches::{Conditions, Fields, MatchError, NamedMatch, RequestView, ValueMatch};
pub use normalize::{NormalizeOptions, TargetError, normalize_target, split_absolute};
pub use routes::{Conflict, Lookup, PathError, PathType, RouteTable, Rule};
pub use upstream_policy::{Outcome, RetryBudget, UpstreamPolicy};

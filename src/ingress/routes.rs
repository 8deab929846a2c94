//! The route table: which backend serves a request, given its host and path.
//!
//! The rules and their meaning are those of a Kubernetes Ingress (`networking.k8s.io/v1`), so
//! an Ingress behaves here as the Kubernetes documentation says it does:
//!
//! - **Hosts.** A request is served by one *host group*: the rules (and host default) of its
//!   exact host if there are any, otherwise those of the wildcard covering it, otherwise the
//!   rules without a host. Only that group is searched: a path missing from `foo.example.com`
//!   is not looked for under `*.example.com`. A request without a usable `Host` can only be
//!   served by the rules without a host.
//! - **Paths.** `Exact` is string equality, case-sensitive, trailing slash included. `Prefix`
//!   (and `ImplementationSpecific`, which we treat as `Prefix`) compares `/`-separated elements:
//!   `/aaa/bbb` matches `/aaa/bbb`, `/aaa/bbb/` and `/aaa/bbb/ccc`, never `/aaa/bbbxyz`; a
//!   trailing slash on either side is ignored, and `/` matches every path.
//! - **Several matches.** The longest rule path wins, measured in bytes once a `Prefix` path
//!   has lost its trailing slashes (`/foo/` counts as `/foo`); on a tie `Exact` wins. Among
//!   matching prefixes, more bytes always means more elements, so this is the element count
//!   the documentation speaks of.
//! - **Regular expressions and conditions.** `RegularExpression` paths (not in the Ingress
//!   API; the Gateway API's spelling) are tried after `Exact` and before every prefix
//!   ([`super::regex_paths`]). A rule may add [`Conditions`] (method, headers, query); rules
//!   sharing a path are tried in the Gateway API's order of matches, and when all of them fail
//!   the search goes on with the next candidate path, down to `/` ([`super::host_group`]).
//! - **Misses.** No path in the group: the group's host default, else the global default, else
//!   [`Lookup::NoPath`]. No group at all: the global default, else [`Lookup::NoHost`].
//!
//! The table is built once per config snapshot and then only read, so the build does the work:
//! exact hosts and wildcard suffixes are hash-map keys (a wildcard is found by looking up the
//! request host minus its first label), and within a group exact paths and normalised prefixes
//! are hash-map keys too. A lookup is then at most one probe for the exact path, which beats
//! every prefix when it hits (an exact match is as long as the request path, so no prefix can
//! be longer, and ties go to `Exact`), followed by one probe per `/` in the request path, from
//! the longest candidate prefix down, the first hit being the winner. No allocation, no lock,
//! cost independent of the number of rules.
//!
//! Paths are compared as given: the HTTP layer decides about percent-decoding and dot-segment
//! removal before it asks, and strips the query string (we ignore anything from a `?` on, to be
//! safe).
//!
//! Two rules that would route the same requests (same host pattern, same path once normalised,
//! both `Exact` or both prefix-like or the same pattern, and identical conditions) cannot both
//! be served: the first in input order wins, like
//! the oldest Ingress does in most controllers, and the later one comes back as a [`Conflict`]
//! for the caller to log or reject. Invalid rules are reported the same way, so one bad rule
//! never stops the others.

use super::host::{HostPattern, Hostname};
use super::host_group::{HostGroup, Map, Slot};
use super::matches::{Conditions, RequestView};
use super::path_rules::rule_key;
pub use super::path_rules::{Conflict, PathError};
use super::regex_paths::path_regex;
use super::route_list::Route;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How a rule's path is compared with a request's, spelled as in Kubernetes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum PathType {
    /// Case-sensitive string equality.
    Exact,
    /// Element-wise prefix of the `/`-separated path, ignoring a trailing slash.
    #[default]
    Prefix,
    /// Left to the implementation by Kubernetes; here it is [`PathType::Prefix`].
    ImplementationSpecific,
    /// A regular expression (`regex` crate syntax) the whole path must match; between
    /// `Exact` and the prefixes in precedence (see [`super::regex_paths`]).
    RegularExpression,
}

impl PathType {
    /// The Kubernetes spelling.
    pub fn name(self) -> &'static str {
        match self {
            PathType::Exact => "Exact",
            PathType::Prefix => "Prefix",
            PathType::ImplementationSpecific => "ImplementationSpecific",
            PathType::RegularExpression => "RegularExpression",
        }
    }
}

impl fmt::Display for PathType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One path of an Ingress rule: host, path, path type and where matching requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule<T> {
    /// The hosts it serves; `None` is any host (the rule joins the group of last resort).
    pub host: Option<HostPattern>,
    /// The path; must start with `/` (an `ImplementationSpecific` rule may leave it empty,
    /// which means `/`).
    pub path: String,
    /// How `path` is compared.
    pub path_type: PathType,
    /// Where matching requests go.
    pub backend: T,
    /// What else a request must satisfy (method, headers, query); none by default.
    pub conditions: Conditions,
}

/// The answer of [`RouteTable::lookup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, T> {
    /// A rule matched.
    Matched {
        /// Its backend.
        backend: &'a T,
        /// Its index in the rules given to [`RouteTable::build`].
        rule: usize,
    },
    /// The host group matched but none of its paths did; this is the host's default backend.
    HostDefault(&'a T),
    /// Nothing more specific applied; this is the global default backend.
    Default(&'a T),
    /// No rule is for this host, and there is no global default (HTTP 404).
    NoHost,
    /// Rules exist for this host but no path matched, and there is no default (HTTP 404).
    NoPath,
}

impl<'a, T> Lookup<'a, T> {
    /// The backend to use, if any.
    pub fn backend(&self) -> Option<&'a T> {
        match *self {
            Lookup::Matched { backend, .. }
            | Lookup::HostDefault(backend)
            | Lookup::Default(backend) => Some(backend),
            Lookup::NoHost | Lookup::NoPath => None,
        }
    }
}

// Manual impls: a derive would require `T: Clone`, but only a reference is copied.
impl<T> Clone for Lookup<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Lookup<'_, T> {}

/// A valid rule's place in its host group: its normalised path, or its compiled pattern.
enum RuleKey<'p> {
    Exact(std::borrow::Cow<'p, str>),
    Prefix(std::borrow::Cow<'p, str>),
    Regex(&'p str, regex::Regex),
}

impl<'p> RuleKey<'p> {
    fn of(path: &'p str, path_type: PathType) -> Result<RuleKey<'p>, PathError> {
        Ok(match path_type {
            PathType::RegularExpression => match path_regex(path) {
                Ok(regex) => RuleKey::Regex(path, regex),
                Err(reason) => {
                    let path = path.to_owned();
                    return Err(PathError::Regex { path, reason });
                }
            },
            PathType::Exact => RuleKey::Exact(rule_key(path, path_type)?),
            _ => RuleKey::Prefix(rule_key(path, path_type)?),
        })
    }

    fn slot(&self) -> Slot<'_> {
        match self {
            RuleKey::Exact(key) => Slot::Exact(key),
            RuleKey::Prefix(key) => Slot::Prefix(key),
            RuleKey::Regex(pattern, regex) => Slot::Regex(pattern, regex.clone()),
        }
    }
}

/// Host and path routing for one config snapshot, with the precedence rules of a Kubernetes
/// Ingress (see the [`ingress`](crate::ingress) module).
#[derive(Debug, Clone)]
pub struct RouteTable<T> {
    /// Groups of exact host patterns, by host name.
    exact_hosts: Map<HostGroup<T>>,
    /// Groups of wildcard host patterns, by the suffix after `*.`.
    wildcard_hosts: Map<HostGroup<T>>,
    /// Rules without a host.
    any_host: Option<HostGroup<T>>,
    /// Used when nothing more specific applies.
    default_backend: Option<T>,
    /// `*.x` also covers hosts several labels under `x` (the Gateway API's wildcards, for
    /// Gateway listener tables; [`super::listener_routes`]), the longest suffix first.
    suffix_wildcards: bool,
}

impl<T> Default for RouteTable<T> {
    /// A table without rules or defaults: every lookup is [`Lookup::NoHost`].
    fn default() -> Self {
        RouteTable {
            exact_hosts: Map::default(),
            wildcard_hosts: Map::default(),
            any_host: None,
            default_backend: None,
            suffix_wildcards: false,
        }
    }
}

impl<T> RouteTable<T> {
    /// Builds the table from `rules` (in input order: the first of two conflicting rules
    /// wins), the per-host default backends and the global default backend. Rules and host
    /// defaults that cannot be used are left out and returned as [`Conflict`]s, rules first.
    pub fn build(
        rules: Vec<Rule<T>>,
        host_defaults: Vec<(HostPattern, T)>,
        default_backend: Option<T>,
    ) -> (RouteTable<T>, Vec<Conflict>) {
        let mut table = RouteTable {
            default_backend,
            ..RouteTable::default()
        };
        let mut conflicts = Vec::new();
        for (index, rule) in rules.into_iter().enumerate() {
            let Rule {
                host,
                path,
                path_type,
                backend,
                conditions,
            } = rule;
            let key = match RuleKey::of(&path, path_type) {
                Ok(key) => key,
                Err(reason) => {
                    conflicts.push(Conflict::Invalid {
                        rule: index,
                        reason,
                    });
                    continue;
                }
            };
            let route = Route {
                index,
                backend,
                conditions: conditions.canonical(),
            };
            let group = table.group_mut(host.as_ref());
            if let Err(first) = group.insert(key.slot(), route) {
                conflicts.push(Conflict::Duplicate {
                    rule: index,
                    first,
                    host,
                    path,
                    path_type,
                });
            }
        }
        for (index, (host, backend)) in host_defaults.into_iter().enumerate() {
            let group = table.group_mut(Some(&host));
            match &group.default {
                Some(first) => conflicts.push(Conflict::DuplicateHostDefault {
                    index,
                    first: first.index,
                    host,
                }),
                None => {
                    let conditions = Conditions::default();
                    group.default = Some(Route {
                        index,
                        backend,
                        conditions,
                    });
                }
            }
        }
        let groups = table.exact_hosts.values_mut();
        let groups = groups.chain(table.wildcard_hosts.values_mut());
        groups
            .chain(table.any_host.as_mut())
            .for_each(HostGroup::finish);
        (table, conflicts)
    }

    fn group_mut(&mut self, host: Option<&HostPattern>) -> &mut HostGroup<T> {
        match host {
            Some(HostPattern::Exact(name)) => {
                self.exact_hosts.entry(name.as_str().into()).or_default()
            }
            Some(HostPattern::Wildcard(suffix)) => self
                .wildcard_hosts
                .entry(suffix.as_str().into())
                .or_default(),
            None => self.any_host.get_or_insert_with(HostGroup::default),
        }
    }

    /// Routes a request for `host` (`None` when it has no usable `Host`) and `path` (anything
    /// from a `?` on is ignored; an empty path is `/`) of which nothing else is known: only
    /// rules without conditions match.
    pub fn lookup(&self, host: Option<&Hostname>, path: &str) -> Lookup<'_, T> {
        self.lookup_request(host, path, &RequestView::NONE)
    }

    /// Routes a request for `host` and `path` (as [`RouteTable::lookup`]) whose method,
    /// query and headers are `request`, for the rules' [`Conditions`].
    pub fn lookup_request(
        &self,
        host: Option<&Hostname>,
        path: &str,
        request: &RequestView<'_>,
    ) -> Lookup<'_, T> {
        let group = host
            .and_then(|host| {
                self.exact_hosts.get(host.as_str()).or_else(|| {
                    let parent = host.parent()?;
                    (self.wildcard_hosts.get(parent)).or_else(|| self.deeper_wildcard(parent))
                })
            })
            .or(self.any_host.as_ref());
        let Some(group) = group else {
            return match &self.default_backend {
                Some(backend) => Lookup::Default(backend),
                None => Lookup::NoHost,
            };
        };
        let path = match path.find('?') {
            Some(end) => &path[..end],
            None => path,
        };
        let path = if path.is_empty() { "/" } else { path };
        if let Some(route) = group.find(path, request) {
            return Lookup::Matched {
                backend: &route.backend,
                rule: route.index,
            };
        }
        match (&group.default, &self.default_backend) {
            (Some(route), _) => Lookup::HostDefault(&route.backend),
            (None, Some(backend)) => Lookup::Default(backend),
            (None, None) => Lookup::NoPath,
        }
    }
}

impl<T> RouteTable<T> {
    /// Makes `*.x` cover any depth of labels under `x` (Gateway API semantics).
    pub(super) fn with_suffix_wildcards(mut self) -> Self {
        self.suffix_wildcards = true;
        self
    }

    /// With suffix wildcards, the group of the longest `*.` suffix above `parent`.
    fn deeper_wildcard(&self, mut parent: &str) -> Option<&HostGroup<T>> {
        if !self.suffix_wildcards {
            return None;
        }
        while let Some((_, up)) = parent.split_once('.') {
            if let Some(group) = self.wildcard_hosts.get(up) {
                return Some(group);
            }
            parent = up;
        }
        None
    }
}

#[cfg(test)]
mod tests;

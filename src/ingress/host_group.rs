//! The rules and default of one host pattern (or of "any host"), and the path search within
//! it: exact paths, then regex paths, then prefixes from the longest down, each key holding
//! the rules that share it in the order of their conditions ([`RouteList`]).
//!
//! A key whose rules all fail their conditions does not end the search: the next candidate
//! (a regex, then a shorter prefix, down to `/`) is tried, so a request that misses the
//! canary's header still reaches the stable route of a shorter prefix, as the Gateway API's
//! ordered list of matches implies.

use super::matches::RequestView;
use super::regex_paths::RegexPaths;
use super::route_list::{Route, RouteList};
use std::collections::HashMap;

/// Maps looked up per request, by host or path: foldhash, not SipHash. The keys are the
/// config's, so a client's lookups cannot be made to collide.
pub(super) type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// Where a rule goes in its group.
#[derive(Debug)]
pub(super) enum Slot<'k> {
    /// An `Exact` path.
    Exact(&'k str),
    /// A prefix without trailing slashes (`""` is `/`).
    Prefix(&'k str),
    /// A regular expression, compiled.
    Regex(&'k str, regex::Regex),
}

/// The rules and default of one host pattern.
#[derive(Debug, Clone)]
pub(super) struct HostGroup<T> {
    /// `Exact` rules by path.
    exact: Map<RouteList<T>>,
    /// Prefix rules by path without trailing slashes, never empty (that is `root`).
    prefix: Map<RouteList<T>>,
    /// The prefix rules for `/`, which match every path.
    root: RouteList<T>,
    /// `RegularExpression` rules.
    regex: RegexPaths<T>,
    /// Length of the longest key in `prefix`: longer candidates need no probe.
    longest_prefix: usize,
    /// The host's default backend, with its index in `host_defaults`.
    pub(super) default: Option<Route<T>>,
}

impl<T> Default for HostGroup<T> {
    fn default() -> Self {
        HostGroup {
            exact: Map::default(),
            prefix: Map::default(),
            root: RouteList::default(),
            regex: RegexPaths::default(),
            longest_prefix: 0,
            default: None,
        }
    }
}

impl<T> HostGroup<T> {
    /// Adds a rule, or returns the index of the rule with the same key and conditions.
    pub(super) fn insert(&mut self, slot: Slot<'_>, route: Route<T>) -> Result<(), usize> {
        match slot {
            Slot::Exact(key) => self.exact.entry(key.into()).or_default().insert(route),
            Slot::Prefix("") => self.root.insert(route),
            Slot::Prefix(key) => {
                self.longest_prefix = self.longest_prefix.max(key.len());
                self.prefix.entry(key.into()).or_default().insert(route)
            }
            Slot::Regex(pattern, regex) => self.regex.insert(pattern, regex, route),
        }
    }

    /// Readies the group for lookups once every rule is in.
    pub(super) fn finish(&mut self) {
        self.regex.finish();
    }

    /// The winning rule for `path` (query already removed, never empty).
    pub(super) fn find(&self, path: &str, request: &RequestView<'_>) -> Option<&Route<T>> {
        if let Some(route) = self.exact.get(path).and_then(|l| l.pick(request)) {
            return Some(route);
        }
        if let Some(route) = self.regex.find(path, request) {
            return Some(route);
        }
        if !self.prefix.is_empty() {
            // Candidates, longest first: the path without trailing slashes, then each prefix
            // that ends just before a '/'. Keys never end with '/', so a candidate left with
            // one (from `//`) simply misses.
            let mut candidate = path.trim_end_matches('/');
            while !candidate.is_empty() {
                if candidate.len() <= self.longest_prefix
                    && let Some(route) = self.prefix.get(candidate).and_then(|l| l.pick(request))
                {
                    return Some(route);
                }
                match candidate.rfind('/') {
                    Some(end) => candidate = &candidate[..end],
                    None => break,
                }
            }
        }
        if self.root.is_empty() {
            return None;
        }
        self.root.pick(request)
    }
}

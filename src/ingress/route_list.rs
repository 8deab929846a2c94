//! The rules that share one path key in a host group, in the order they are tried.
//!
//! Several rules may have the same host and path when their [`Conditions`] differ (a canary by
//! header beside the stable route). They are kept sorted by the Gateway API's precedence (method
//! match, most header matches, most query matches, then input order), so a lookup takes the
//! first whose conditions hold; a rule without conditions sorts last and always holds, so the
//! common single-rule list costs one check. Two rules with identical conditions would route the
//! same requests: the later one is refused, and its caller reports a duplicate.

use super::matches::{Conditions, RequestView};

/// A backend with the index of the entry it came from and its conditions.
#[derive(Debug, Clone)]
pub(super) struct Route<T> {
    /// Index of the rule (or host default) in the build's input.
    pub(super) index: usize,
    /// Where matching requests go.
    pub(super) backend: T,
    /// What else the request must satisfy (always empty for host defaults).
    pub(super) conditions: Conditions,
}

/// Rules for one path key, in precedence order; never empty once built.
#[derive(Debug, Clone)]
pub(super) struct RouteList<T>(Vec<Route<T>>);

impl<T> Default for RouteList<T> {
    fn default() -> Self {
        RouteList(Vec::new())
    }
}

impl<T> RouteList<T> {
    /// Adds `route` in its place (input order breaks ties, so it goes after its equals), or
    /// returns the index of the rule with the same conditions already there.
    pub(super) fn insert(&mut self, route: Route<T>) -> Result<(), usize> {
        if let Some(same) = self.0.iter().find(|r| r.conditions == route.conditions) {
            return Err(same.index);
        }
        let key = route.conditions.precedence();
        let at = self.0.partition_point(|r| r.conditions.precedence() <= key);
        self.0.insert(at, route);
        Ok(())
    }

    /// The first rule whose conditions hold for `request`.
    pub(super) fn pick(&self, request: &RequestView<'_>) -> Option<&Route<T>> {
        self.0
            .iter()
            .find(|r| r.conditions.is_empty() || r.conditions.hold(request))
    }

    /// True before the first insert.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The index of the earliest rule (the order the list's key is tried in, among equals).
    pub(super) fn first_index(&self) -> usize {
        self.0.iter().map(|r| r.index).min().unwrap_or(usize::MAX)
    }
}

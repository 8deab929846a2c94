//! Regular-expression paths (`RegularExpression`, the Gateway API's spelling): the rules of a
//! host group whose path is a pattern the whole normalised path must match.
//!
//! Precedence, which the Gateway API leaves to implementations: after `Exact` and before every
//! prefix (as Envoy Gateway and ingress-nginx order them), and among patterns the longer one
//! (in bytes, as written) first, then input order; rules sharing one pattern are ordered by
//! their conditions like any other (`route_list.rs`).
//!
//! Why one combined automaton: a group may hold many patterns, and testing them one by one
//! would cost one regex search each. All of a group's patterns are compiled into one
//! `regex-automata` meta regex in precedence order; with leftmost-first semantics and every
//! pattern anchored at both ends, one search returns the first pattern, in precedence order,
//! that matches the whole path. Only when that pattern's rules all fail their conditions are
//! the later patterns tried one by one. The search allocates nothing (its scratch space comes
//! from the regex's own per-thread pool) and takes no lock on the common path. The `regex`
//! crate is linear-time in the path's length; patterns are size- and nesting-limited
//! ([`super::matches`]), and a combined automaton over its size limit is simply not built
//! (the patterns are then tried one by one).

use super::matches::{
    MAX_PATTERN_LEN, MatchError, REGEX_NEST_LIMIT, REGEX_SIZE_LIMIT, RequestView,
};
use super::route_list::{Route, RouteList};
use regex_automata::{Anchored, Input, meta};
use std::collections::HashMap;

/// Largest combined automaton of one host group, in bytes.
const SET_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// Compiles a path pattern so that it must match the whole path, within the limits.
pub fn path_regex(pattern: &str) -> Result<regex::Regex, MatchError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(MatchError::TooLong(pattern.len()));
    }
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| MatchError::Regex(super::matches::one_line(&e.to_string())))
    };
    build(pattern)?;
    build(&anchored(pattern))
}

/// The `RegularExpression` pattern that matches what an ingress-nginx `use-regex` location
/// (`location ~* "^PATH"`) matches: case-insensitive and anchored at the start only, so
/// `PATH` followed by anything. Compile it with [`path_regex`] to check it.
pub fn nginx_location(path: &str) -> String {
    format!("(?i:{path})(?s:.*)")
}

fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// One pattern and its rules.
#[derive(Debug, Clone)]
struct Entry<T> {
    pattern: Box<str>,
    regex: regex::Regex,
    routes: RouteList<T>,
}

/// The regex rules of one host group.
#[derive(Debug, Clone)]
pub(super) struct RegexPaths<T> {
    /// In precedence order once [`RegexPaths::finish`]ed.
    entries: Vec<Entry<T>>,
    /// Pattern to position in `entries`, while building.
    by_pattern: HashMap<Box<str>, usize>,
    /// All patterns in one automaton, pattern `i` being `entries[i]`.
    set: Option<meta::Regex>,
}

impl<T> Default for RegexPaths<T> {
    fn default() -> Self {
        RegexPaths {
            entries: Vec::new(),
            by_pattern: HashMap::new(),
            set: None,
        }
    }
}

impl<T> RegexPaths<T> {
    /// Adds a rule for `pattern` (already compiled as `regex`), or returns the index of the
    /// rule with the same pattern and conditions.
    pub(super) fn insert(
        &mut self,
        pattern: &str,
        regex: regex::Regex,
        route: Route<T>,
    ) -> Result<(), usize> {
        let at = *self.by_pattern.entry(pattern.into()).or_insert_with(|| {
            self.entries.push(Entry {
                pattern: pattern.into(),
                regex,
                routes: RouteList::default(),
            });
            self.entries.len() - 1
        });
        self.entries[at].routes.insert(route)
    }

    /// Sorts the patterns by precedence and builds the combined automaton.
    pub(super) fn finish(&mut self) {
        self.by_pattern = HashMap::new();
        if self.entries.is_empty() {
            return;
        }
        self.entries
            .sort_by_key(|e| (std::cmp::Reverse(e.pattern.len()), e.routes.first_index()));
        let patterns: Vec<String> = self.entries.iter().map(|e| anchored(&e.pattern)).collect();
        let built = meta::Builder::new()
            .configure(meta::Config::new().nfa_size_limit(Some(SET_SIZE_LIMIT)))
            .syntax(regex_automata::util::syntax::Config::new().nest_limit(REGEX_NEST_LIMIT))
            .build_many(&patterns);
        match built {
            Ok(set) => self.set = Some(set),
            Err(error) => tracing::warn!(%error, "regex paths tried one by one"),
        }
    }

    /// The winning regex rule for `path`, if any.
    pub(super) fn find(&self, path: &str, request: &RequestView<'_>) -> Option<&Route<T>> {
        if self.entries.is_empty() {
            return None;
        }
        let start = match &self.set {
            Some(set) => set
                .search(&Input::new(path).anchored(Anchored::Yes))?
                .pattern()
                .as_usize(),
            None => 0,
        };
        let mut rest = self.entries.get(start..)?.iter();
        if self.set.is_some()
            && let Some(first) = rest.next()
            && let Some(route) = first.routes.pick(request)
        {
            return Some(route);
        }
        rest.filter(|e| e.regex.is_match(path))
            .find_map(|e| e.routes.pick(request))
    }
}

#[cfg(test)]
mod tests {
    use super::super::matches::{MAX_PATTERN_LEN, MatchError, full_match_regex};
    use crate::ingress::{Conditions, Conflict, PathError, PathType, RouteTable, Rule};

    fn rule(path: &str, to: &'static str) -> Rule<&'static str> {
        Rule {
            host: None,
            path: path.to_owned(),
            path_type: PathType::RegularExpression,
            backend: to,
            conditions: Conditions::default(),
        }
    }

    #[test]
    fn bad_and_oversized_regexes_are_refused() {
        let (_, conflicts) = RouteTable::build(
            vec![rule("/(", "bad"), rule(r"/\w{1000}", "big")],
            vec![],
            None,
        );
        assert_eq!(conflicts.len(), 2);
        for c in &conflicts {
            assert!(
                matches!(
                    c,
                    Conflict::Invalid {
                        reason: PathError::Regex { .. },
                        ..
                    }
                ),
                "{c}"
            );
        }
        assert!(
            conflicts[1].to_string().contains("size limit"),
            "{}",
            conflicts[1]
        );
        assert!(matches!(
            full_match_regex(&"a".repeat(MAX_PATTERN_LEN + 1)),
            Err(MatchError::TooLong(_))
        ));
    }
}

//! Conditions a route can put on a request besides its host and path: the method, headers and
//! query parameters, as the Gateway API's `HTTPRouteMatch` has them, so that the config file,
//! Ingress annotations and (later) the Gateway API share one type and one precedence.
//!
//! A rule with [`Conditions`] matches only when all of them hold. Among rules for the same path,
//! [`Conditions::precedence`] orders them as the Gateway API orders matches: a method match
//! first, then the most header matches, then the most query matches (then input order, which
//! the table adds).
//!
//! Why built this way: conditions are evaluated on every request that reaches a rule having
//! them, so regexes are compiled once, with the config (linear-time `regex` crate, size- and
//! nesting-limited), values are compared as bytes without allocation, and the request is seen
//! through the small [`Fields`] trait that both the HTTP/1.1 fast path (`httparse` fields) and
//! hyper (`HeaderMap`) implement without copying. A rule without conditions costs nothing.

use super::query;
use std::fmt;

/// Longest regular expression accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;
/// Largest compiled program of one regular expression, in bytes (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Deepest nesting of groups and repetitions in a regular expression.
pub const REGEX_NEST_LIMIT: u32 = 32;

/// Why a condition (or a regular-expression path) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The regular expression does not compile (syntax, or over the size or nesting limit).
    #[error("invalid regular expression: {0}")]
    Regex(String),
    /// The regular expression is longer than [`MAX_PATTERN_LEN`].
    #[error("regular expression of {0} bytes is longer than {MAX_PATTERN_LEN}")]
    TooLong(usize),
}

/// Compiles `pattern` so that it must match a whole value (`^(?:pattern)$`), within the limits.
/// The pattern is first compiled alone, so that one like `a)|(b` cannot escape the anchors.
pub fn full_match_regex(pattern: &str) -> Result<regex::bytes::Regex, MatchError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(MatchError::TooLong(pattern.len()));
    }
    let build = |p: &str| {
        regex::bytes::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(REGEX_NEST_LIMIT)
            .build()
            .map_err(|e| MatchError::Regex(one_line(&e.to_string())))
    };
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

/// The `regex` crate's multi-line syntax error (pattern, caret, `error: ...`) as one line, so
/// that `check` prints one line per problem: `unclosed group (at byte 3)`.
pub(super) fn one_line(message: &str) -> String {
    let Some((_, kind)) = message.rsplit_once("\nerror: ") else {
        return message.replace('\n', " ");
    };
    let caret = message
        .lines()
        .find(|l| l.trim() == "^" || l.trim().starts_with('^') && l.trim().ends_with('^'));
    match caret.and_then(|l| l.find('^')) {
        Some(at) => format!("{} (at byte {})", kind.trim(), at.saturating_sub(4)),
        None => kind.trim().to_owned(),
    }
}

/// Header values of a request, by name. Implemented by both request representations.
pub trait Fields: fmt::Debug {
    /// Whether some field named `name` (lowercase; compared case-insensitively) has a value
    /// for which `test` is true. Each field line is one value (no splitting at commas).
    fn any_value(&self, name: &str, test: &mut dyn FnMut(&[u8]) -> bool) -> bool;
}

impl Fields for &[httparse::Header<'_>] {
    fn any_value(&self, name: &str, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .any(|f| test(f.value))
    }
}

impl Fields for http::HeaderMap {
    fn any_value(&self, name: &str, test: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        self.get_all(name).iter().any(|v| test(v.as_bytes()))
    }
}

/// A request without fields (lookups that know only host and path).
#[derive(Debug)]
pub struct NoFields;

impl Fields for NoFields {
    fn any_value(&self, _: &str, _: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        false
    }
}

/// What conditions are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'r> {
    /// The method as sent (`""` when unknown: no method condition holds).
    pub method: &'r str,
    /// The raw query string, without the `?`.
    pub query: Option<&'r str>,
    /// The header fields.
    pub fields: &'r dyn Fields,
}

impl RequestView<'static> {
    /// A request of which only host and path are known: only rules without conditions match.
    pub const NONE: RequestView<'static> = RequestView {
        method: "",
        query: None,
        fields: &NoFields,
    };
}

/// How a value is compared.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    /// Byte equality (case-sensitive).
    Exact(Box<str>),
    /// The whole value must match the regular expression.
    Regex {
        /// The pattern as written.
        pattern: Box<str>,
        /// It compiled, anchored at both ends.
        regex: regex::bytes::Regex,
    },
}

impl ValueMatch {
    /// A regex match on `pattern`, compiled with the limits.
    pub fn regex(pattern: &str) -> Result<ValueMatch, MatchError> {
        Ok(ValueMatch::Regex {
            regex: full_match_regex(pattern)?,
            pattern: pattern.into(),
        })
    }

    /// Whether `value` matches.
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            ValueMatch::Exact(expected) => expected.as_bytes() == value,
            ValueMatch::Regex { regex, .. } => regex.is_match(value),
        }
    }

    fn key(&self) -> (u8, &str) {
        match self {
            ValueMatch::Exact(v) => (0, v),
            ValueMatch::Regex { pattern, .. } => (1, pattern),
        }
    }
}

impl PartialEq for ValueMatch {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for ValueMatch {}

/// A condition on a named value (a header or a query parameter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedMatch {
    /// The name: lowercase for headers, as decoded for query parameters.
    pub name: Box<str>,
    /// How its value is compared.
    pub value: ValueMatch,
}

/// The conditions of one rule besides host and path; all must hold. The default has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// The method, compared case-sensitively.
    pub method: Option<Box<str>>,
    /// Header conditions (names lowercase).
    pub headers: Vec<NamedMatch>,
    /// Query parameter conditions.
    pub query: Vec<NamedMatch>,
}

impl Conditions {
    /// True when there are none (the rule matches on host and path alone).
    pub fn is_empty(&self) -> bool {
        self.method.is_none() && self.headers.is_empty() && self.query.is_empty()
    }

    /// The same conditions in one canonical order (by name, then value), so that two rules
    /// with the same conditions in another order compare equal. Header names are lowercased.
    pub fn canonical(mut self) -> Conditions {
        for h in &mut self.headers {
            if h.name.bytes().any(|b| b.is_ascii_uppercase()) {
                h.name = h.name.to_ascii_lowercase().into();
            }
        }
        let order = |a: &NamedMatch, b: &NamedMatch| {
            (&a.name, a.value.key()).cmp(&(&b.name, b.value.key()))
        };
        self.headers.sort_by(order);
        self.query.sort_by(order);
        self
    }

    /// Sort key, smallest first, of the Gateway API's precedence among matches for the same
    /// path: method match, then most header matches, then most query parameter matches.
    pub fn precedence(&self) -> (bool, std::cmp::Reverse<usize>, std::cmp::Reverse<usize>) {
        (
            self.method.is_none(),
            std::cmp::Reverse(self.headers.len()),
            std::cmp::Reverse(self.query.len()),
        )
    }

    /// Whether every condition holds for `request`.
    pub fn hold(&self, request: &RequestView<'_>) -> bool {
        if let Some(method) = &self.method
            && **method != *request.method
        {
            return false;
        }
        let header = |c: &NamedMatch| {
            request
                .fields
                .any_value(&c.name, &mut |value| c.value.matches(value))
        };
        let param = |c: &NamedMatch| {
            query::first(request.query, &c.name)
                .is_some_and(|raw| query::value_matches(raw, &c.value))
        };
        self.headers.iter().all(header) && self.query.iter().all(param)
    }
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;

//! Route conditions in the config file: `method`, `headers = [...]` and `query = [...]` of a
//! `[[routes]]` entry, as raw TOML and validated into [`Conditions`].
//!
//! A file of its own so the shared route validation only gains one call. Every bad value is
//! named with its path (`routes[3].headers[0].regex: invalid regular expression: ...`); regexes
//! are compiled here, once, with the limits of [`crate::ingress::matches`].

use super::validate::Issues;
use crate::ingress::{Conditions, NamedMatch, ValueMatch};
use serde::Deserialize;

/// One `headers` or `query` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Header name (case-insensitive) or query parameter name (decoded, case-sensitive).
    pub name: String,
    /// The exact value; give this or `regex`.
    #[serde(default)]
    pub value: Option<String>,
    /// A regular expression the whole value must match; give this or `value`.
    #[serde(default)]
    pub regex: Option<String>,
}

/// Validates a route's conditions; `None` when one is bad (each reported under `path`).
pub(super) fn conditions(
    method: Option<&str>,
    headers: &[RawMatch],
    query: &[RawMatch],
    path: &str,
    issues: &mut Issues,
) -> Option<Conditions> {
    let before = issues.len();
    if let Some(m) = method
        && !is_token(m)
    {
        issues.push(
            format!("{path}.method"),
            format!("invalid method {m:?}: use a token such as GET"),
        );
    }
    let headers = entries(headers, &format!("{path}.headers"), true, issues);
    let query = entries(query, &format!("{path}.query"), false, issues);
    (issues.len() == before).then(|| Conditions {
        method: method.map(Into::into),
        headers,
        query,
    })
}

fn entries(raw: &[RawMatch], path: &str, header: bool, issues: &mut Issues) -> Vec<NamedMatch> {
    let mut out: Vec<NamedMatch> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = if header {
            entry.name.to_ascii_lowercase()
        } else {
            entry.name.clone()
        };
        if header && !is_token(&name) {
            issues.push(
                format!("{at}.name"),
                format!("invalid header name {name:?}"),
            );
        } else if name.is_empty() {
            issues.push(format!("{at}.name"), "must not be empty");
        } else if let Some(j) = names.iter().position(|n| *n == name) {
            let what = if header { "headers" } else { "query" };
            issues.push(format!("{at}.name"), format!("repeats {what}[{j}]"));
        }
        names.push(name.clone());
        if let Some(value) = entry_value(entry, &at, issues) {
            out.push(NamedMatch {
                name: name.into(),
                value,
            });
        }
    }
    out
}

fn entry_value(entry: &RawMatch, at: &str, issues: &mut Issues) -> Option<ValueMatch> {
    match (&entry.value, &entry.regex) {
        (Some(value), None) if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) => {
            issues.push(format!("{at}.value"), "must not contain CR, LF or NUL");
            None
        }
        (Some(value), None) => Some(ValueMatch::Exact(value.as_str().into())),
        (None, Some(regex)) => ValueMatch::regex(regex)
            .map_err(|e| issues.push(format!("{at}.regex"), e.to_string()))
            .ok(),
        _ => {
            issues.push(at.to_owned(), "set exactly one of `value` and `regex`");
            None
        }
    }
}

/// An RFC 9110 token (methods and field names).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

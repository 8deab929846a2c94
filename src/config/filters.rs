//! A route's filters in the config file (`[routes.request_headers]`,
//! `[routes.response_headers]`, `[routes.redirect]`, `[routes.rewrite]`): the raw TOML tables
//! and their validation into [`RouteFilters`], each bad value named by its path
//! (`routes[2].redirect.status: …`).
//!
//! The raw tables live here rather than in `file.rs` with the other raw structs because they
//! are only ever read through [`filters`]: `RawRoute` names them, and this file owns both
//! layers of one feature.

use super::validate::Issues;
use crate::forward::edits::{Direction, HeaderEdits};
use crate::ingress::PathType;
use crate::ingress::filters::{
    PathChange, PathRegex, REDIRECT_STATUSES, Redirect, RedirectTo, RouteFilters, Scheme,
    UrlRewrite,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `[routes.request_headers]` / `[routes.response_headers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderEdits {
    /// Replace every field of a name with this value.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Add a field (after any the message has).
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Drop every field of these names.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `[routes.redirect]`: answer with a redirect instead of forwarding.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedirect {
    /// `http` or `https` (else the request's).
    #[serde(default)]
    pub scheme: Option<String>,
    /// Host name (else the request's).
    #[serde(default)]
    pub host: Option<String>,
    /// Port (else: the scheme's well-known one if `scheme` is set, the request's otherwise).
    #[serde(default)]
    pub port: Option<u16>,
    /// Replace the whole path.
    #[serde(default)]
    pub path: Option<String>,
    /// Replace the prefix the route matched.
    #[serde(default)]
    pub prefix: Option<String>,
    /// 301, 302 (default), 303, 307 or 308.
    #[serde(default = "default_status")]
    pub status: u16,
}

fn default_status() -> u16 {
    302
}

/// `[routes.rewrite]`: what the endpoint gets instead of what the client sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRewrite {
    /// The `Host` the endpoint gets.
    #[serde(default)]
    pub host: Option<String>,
    /// Replace the whole path.
    #[serde(default)]
    pub path: Option<String>,
    /// Replace the prefix the route matched.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Replace the first match of this regex (with `replacement`).
    #[serde(default)]
    pub regex: Option<String>,
    /// The regex's replacement: `$1`, `${name}` name capture groups.
    #[serde(default)]
    pub replacement: Option<String>,
}

/// What of a raw route the filters read.
pub(super) struct RawFilters<'a> {
    /// `request_headers`.
    pub request_headers: Option<&'a RawHeaderEdits>,
    /// `response_headers`.
    pub response_headers: Option<&'a RawHeaderEdits>,
    /// `redirect`.
    pub redirect: Option<&'a RawRedirect>,
    /// `rewrite`.
    pub rewrite: Option<&'a RawRewrite>,
    /// The route's path and how it matches (for prefix replacement).
    pub matched: (&'a str, PathType),
}

/// The validated filters of a route at `path` (`None` when it has none); issues pushed.
pub(super) fn filters(
    raw: &RawFilters<'_>,
    path: &str,
    issues: &mut Issues,
) -> Option<Arc<RouteFilters>> {
    let edits = |e: Option<&RawHeaderEdits>, d: Direction, key: &str, issues: &mut Issues| {
        e.and_then(|e| header_edits(e, d, &format!("{path}.{key}"), issues))
    };
    let f = RouteFilters {
        request_headers: edits(
            raw.request_headers,
            Direction::Request,
            "request_headers",
            issues,
        ),
        response_headers: edits(
            raw.response_headers,
            Direction::Response,
            "response_headers",
            issues,
        ),
        redirect: raw
            .redirect
            .and_then(|r| redirect(r, raw.matched, &format!("{path}.redirect"), issues)),
        rewrite: raw
            .rewrite
            .and_then(|r| rewrite(r, raw.matched, &format!("{path}.rewrite"), issues)),
    };
    if raw.redirect.is_some() && raw.rewrite.is_some() {
        issues.push(
            format!("{path}.rewrite"),
            "a route that redirects forwards nothing to rewrite: use one of redirect, rewrite",
        );
    }
    (f != RouteFilters::default()).then(|| Arc::new(f))
}

fn header_edits(
    raw: &RawHeaderEdits,
    direction: Direction,
    path: &str,
    issues: &mut Issues,
) -> Option<HeaderEdits> {
    let pairs = |m: &BTreeMap<String, String>| -> Vec<(String, String)> {
        m.iter().map(|(n, v)| (n.clone(), v.clone())).collect()
    };
    let mut seen = std::collections::HashSet::new();
    for name in raw.set.keys() {
        if !seen.insert(name.to_ascii_lowercase()) {
            issues.push(format!("{path}.set"), format!("header {name:?} set twice"));
        }
    }
    match HeaderEdits::new(direction, &pairs(&raw.set), &pairs(&raw.add), &raw.remove) {
        Ok(e) => (!e.is_empty()).then_some(e),
        Err(e) => {
            issues.push(path, e.to_string());
            None
        }
    }
}

fn redirect(
    raw: &RawRedirect,
    matched: (&str, PathType),
    path: &str,
    issues: &mut Issues,
) -> Option<Redirect> {
    let before = issues.len();
    if !REDIRECT_STATUSES.contains(&raw.status) {
        issues.push(
            format!("{path}.status"),
            format!(
                "invalid redirect status {}: use 301, 302, 303, 307 or 308",
                raw.status
            ),
        );
    }
    let scheme = match raw.scheme.as_deref() {
        None => None,
        Some("http") => Some(Scheme::Http),
        Some("https") => Some(Scheme::Https),
        Some(other) => {
            issues.push(
                format!("{path}.scheme"),
                format!("invalid scheme {other:?}: use http or https"),
            );
            None
        }
    };
    if let Some(host) = &raw.host
        && crate::ingress::Hostname::parse(host).is_err()
    {
        issues.push(
            format!("{path}.host"),
            format!("invalid host name {host:?}"),
        );
    }
    if raw.port == Some(0) {
        issues.push(format!("{path}.port"), "must be 1-65535");
    }
    let change = path_change(
        raw.path.as_deref(),
        raw.prefix.as_deref(),
        None,
        matched,
        path,
        issues,
    );
    (issues.len() == before).then(|| Redirect {
        to: RedirectTo::Parts {
            scheme,
            host: raw.host.as_ref().map(|h| h.to_ascii_lowercase()),
            port: raw.port,
            path: change,
        },
        status: raw.status,
    })
}

fn rewrite(
    raw: &RawRewrite,
    matched: (&str, PathType),
    path: &str,
    issues: &mut Issues,
) -> Option<UrlRewrite> {
    let before = issues.len();
    if let Some(host) = &raw.host
        && !valid_authority(host)
    {
        issues.push(format!("{path}.host"), format!("invalid host {host:?}"));
    }
    let regex = raw.regex.as_deref().zip(raw.replacement.as_deref());
    if raw.regex.is_some() != raw.replacement.is_some() {
        issues.push(
            format!("{path}.replacement"),
            "regex and replacement go together",
        );
    }
    let change = path_change(
        raw.path.as_deref(),
        raw.prefix.as_deref(),
        regex,
        matched,
        path,
        issues,
    );
    (issues.len() == before).then(|| UrlRewrite {
        host: raw.host.clone(),
        path: change,
    })
}

/// The path change asked for: at most one of a full path, a prefix and a regex.
fn path_change(
    full: Option<&str>,
    prefix: Option<&str>,
    regex: Option<(&str, &str)>,
    matched: (&str, PathType),
    path: &str,
    issues: &mut Issues,
) -> Option<PathChange> {
    let given = [full.is_some(), prefix.is_some(), regex.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        issues.push(path, "use only one of path, prefix, regex");
        return None;
    }
    let checked = |key: &str, value: &str, issues: &mut Issues| {
        let ok = value.starts_with('/') && super::filters::valid_path(value);
        if !ok {
            issues.push(
                format!("{path}.{key}"),
                format!("invalid path {value:?}: starts with /, no spaces, controls, ? or #"),
            );
        }
        ok.then(|| value.to_owned())
    };
    if let Some(full) = full {
        return checked("path", full, issues).map(PathChange::Full);
    }
    if let Some(with) = prefix {
        if matched.1 == PathType::Exact {
            issues.push(
                format!("{path}.prefix"),
                "prefix replacement needs a Prefix route (use path for an Exact one)",
            );
            return None;
        }
        let with = checked("prefix", with, issues)?;
        return Some(PathChange::Prefix {
            matched: matched.0.to_owned(),
            with,
        });
    }
    let (pattern, replacement) = regex?;
    let compiled = PathRegex::new(pattern).map_err(|e| {
        issues.push(format!("{path}.regex"), format!("invalid regex: {e}"));
    });
    let replacement = checked("replacement", replacement, issues);
    Some(PathChange::Regex {
        regex: compiled.ok()?,
        replacement: braced_groups(&replacement?),
    })
}

/// Whether `value` may stand in a request target's path: visible ASCII but `?` and `#`.
pub(crate) fn valid_path(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#')
}

/// Whether `value` is a `host` or `host:port` a `Host` field may carry.
pub(crate) fn valid_authority(value: &str) -> bool {
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
    ok_chars && crate::ingress::Hostname::from_authority(value).is_some()
}

/// `$1` → `${1}`, so a group number followed by letters (`$1abc`) means the group, as in
/// nginx, not the `regex` crate's group named `1abc`.
pub(crate) fn braced_groups(replacement: &str) -> String {
    let mut out = String::with_capacity(replacement.len() + 4);
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '$' || !chars.peek().is_some_and(char::is_ascii_digit) {
            if c == '$' && chars.peek() == Some(&'$') {
                out.push('$');
                chars.next();
            }
            continue;
        }
        out.push('{');
        while let Some(d) = chars.next_if(char::is_ascii_digit) {
            out.push(d);
        }
        out.push('}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_numbers_are_braced_and_other_dollars_kept() {
        assert_eq!(braced_groups("/$1abc/$22"), "/${1}abc/${22}");
        assert_eq!(braced_groups("/${name}/$$1"), "/${name}/$$1");
    }
}

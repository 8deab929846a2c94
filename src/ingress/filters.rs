//! A route's filters, with Gateway API HTTPRoute semantics: header edits (request and
//! response, see [`crate::forward::edits`]), a redirect answered here instead of forwarding
//! (`RequestRedirect`), and a URL rewrite of what the endpoint gets (`URLRewrite`).
//!
//! They are built once per snapshot (regexes compiled then, with a size limit) and applied by
//! pure functions here, so every source of routes (the TOML file, ingress-nginx annotations,
//! later the Gateway API) shares one meaning, and the data path only calls them:
//! [`crate::router::http`]'s routing answers the redirect and rewrites the target, and the one
//! rewrite of a request's and a response's fields ([`crate::forward`]) applies the edits.
//!
//! Paths given to these functions are already normalised (see [`super::normalize`]), so a
//! rewrite or a `Location` is built from the same path the route matched.

use crate::forward::edits::HeaderEdits;
use std::borrow::Cow;

/// All the filters of one route; absent ones cost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteFilters {
    /// Edits of the request the endpoint gets.
    pub request_headers: Option<HeaderEdits>,
    /// Edits of the response the client gets (endpoint responses, not our own answers).
    pub response_headers: Option<HeaderEdits>,
    /// Answer with a redirect; the route then needs no service.
    pub redirect: Option<Redirect>,
    /// Rewrite the target and `Host` the endpoint gets.
    pub rewrite: Option<UrlRewrite>,
}

/// How a path is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    /// The whole path (Gateway API `ReplaceFullPath`).
    Full(String),
    /// The matched prefix (Gateway API `ReplacePrefixMatch`).
    Prefix {
        /// The route's prefix the path matched (trailing `/` ignored).
        matched: String,
        /// What replaces it.
        with: String,
    },
    /// The regex's first match, by the replacement (`$1`, `${name}` capture references).
    Regex {
        /// The compiled regex.
        regex: PathRegex,
        /// The replacement, in `regex`'s syntax.
        replacement: String,
    },
}

/// A compiled path regex; two are equal when their patterns are.
#[derive(Debug, Clone)]
pub struct PathRegex(pub regex::Regex);

impl PartialEq for PathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}
impl Eq for PathRegex {}

/// Largest compiled regex (bytes of the `regex` crate's program): linear-time matching
/// whatever the pattern, and a pattern cannot make a snapshot big.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

impl PathRegex {
    /// Compiles `pattern` under [`REGEX_SIZE_LIMIT`].
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .map(PathRegex)
    }
}

impl PathChange {
    /// The path after the change: borrowed exactly when unchanged (a prefix or regex that
    /// does not match).
    pub fn apply<'p>(&self, path: &'p str) -> Cow<'p, str> {
        match self {
            PathChange::Full(to) => Cow::Owned(to.clone()),
            PathChange::Prefix { matched, with } => replace_prefix(path, matched, with),
            PathChange::Regex { regex, replacement } => {
                match regex.0.replacen(path, 1, replacement.as_str()) {
                    Cow::Owned(p) if !p.starts_with('/') => Cow::Owned(format!("/{p}")),
                    other => other,
                }
            }
        }
    }
}

/// Gateway API `ReplacePrefixMatch`: `matched` (a path prefix of `path`, trailing `/`
/// ignored) replaced by `with`, never leaving `//` where they join nor an empty path.
pub fn replace_prefix<'p>(path: &'p str, matched: &str, with: &str) -> Cow<'p, str> {
    let matched = matched.trim_end_matches('/');
    let Some(mut rest) = path.strip_prefix(matched) else {
        return Cow::Borrowed(path);
    };
    if matched.is_empty() && rest == "/" {
        // The root prefix matched all of `/`: nothing is left after it.
        rest = "";
    }
    let base = with.trim_end_matches('/');
    match (base, rest) {
        // Owned: borrowed means unchanged to [`UrlRewrite::target`].
        ("", "") => Cow::Owned("/".to_owned()),
        (base, rest) if rest.is_empty() || rest.starts_with('/') => {
            Cow::Owned(format!("{base}{rest}"))
        }
        // A prefix that ends inside a segment (ImplementationSpecific): plain string prefix.
        (base, rest) => Cow::Owned(format!("{base}/{rest}")),
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http`, port 80.
    Http,
    /// `https`, port 443.
    Https,
}

impl Scheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Its well-known port.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where a redirect sends the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectTo {
    /// Gateway API `RequestRedirect`: the request's URL with these parts replaced.
    Parts {
        /// New scheme (else the request's).
        scheme: Option<Scheme>,
        /// New host name (else the request's, without its port).
        host: Option<String>,
        /// New port (else as Gateway API says: the scheme's well-known port when the
        /// scheme changes, the request's port otherwise).
        port: Option<u16>,
        /// New path (else the request's); the query is kept.
        path: Option<PathChange>,
    },
    /// A fixed URL (ingress-nginx `permanent-redirect`): the request's path is not added.
    Fixed(String),
}

/// A redirect answered instead of forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// Where to.
    pub to: RedirectTo,
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
}

/// The statuses a redirect may have.
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// What a redirect's `Location` is built from: the request as routed.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The scheme the request came with.
    pub scheme: Scheme,
    /// Its authority (`Host` or `:authority`), possibly with a port.
    pub authority: &'a str,
    /// Its normalised path.
    pub path: &'a str,
    /// Its query, without `?`.
    pub query: Option<&'a str>,
}

impl Redirect {
    /// The `Location` for `asked`.
    pub fn location(&self, asked: &Asked<'_>) -> String {
        match &self.to {
            RedirectTo::Fixed(url) => url.clone(),
            RedirectTo::Parts {
                scheme,
                host,
                port,
                path,
            } => {
                let new_scheme = *scheme;
                let scheme = new_scheme.unwrap_or(asked.scheme);
                let (asked_host, asked_port) = split_port(asked.authority);
                let port = match (port, new_scheme) {
                    (Some(p), _) => *p,
                    (None, Some(s)) => s.default_port(),
                    (None, None) => asked_port.unwrap_or(asked.scheme.default_port()),
                };
                let host = host.as_deref().unwrap_or(asked_host);
                let path = path
                    .as_ref()
                    .map_or(Cow::Borrowed(asked.path), |p| p.apply(asked.path));
                let mut out = format!("{}://{host}", scheme.as_str());
                if port != scheme.default_port() {
                    out.push_str(&format!(":{port}"));
                }
                out.push_str(&path);
                if let Some(q) = asked.query {
                    out.push('?');
                    out.push_str(q);
                }
                out
            }
        }
    }
}

/// An authority's host (IPv6 literals keep their brackets) and port.
fn split_port(authority: &str) -> (&str, Option<u16>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse().ok()),
        _ => (authority, None),
    }
}

/// What the endpoint gets instead of what the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRewrite {
    /// The `Host` the endpoint gets (the forwarding fields keep the client's).
    pub host: Option<String>,
    /// The path the endpoint gets; the query is kept.
    pub path: Option<PathChange>,
}

impl UrlRewrite {
    /// The target (path and query) the endpoint gets for the normalised `target`.
    pub fn target<'t>(&self, target: &'t str) -> Cow<'t, str> {
        let Some(change) = &self.path else {
            return Cow::Borrowed(target);
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        match (change.apply(path), query) {
            (Cow::Borrowed(_), _) => Cow::Borrowed(target),
            (Cow::Owned(p), None) => Cow::Owned(p),
            (Cow::Owned(p), Some(q)) => Cow::Owned(format!("{p}?{q}")),
        }
    }
}

#[cfg(test)]
#[path = "filters_tests.rs"]
mod tests;

//! CORS at the proxy (the Fetch standard's CORS protocol), per route.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an allowed
//! origin is answered here, 204, with the configured `Access-Control-Allow-*` and
//! `Access-Control-Max-Age`; the endpoint never sees it. Other requests go on, and their
//! responses get `Access-Control-Allow-Origin` (and `-Allow-Credentials`, `-Expose-Headers`)
//! when the origin is allowed. The endpoint's own `Access-Control-*` fields are dropped on a
//! route with CORS, so what a browser sees is the route's policy and nothing else, and a
//! disallowed origin gets no CORS field at all. Every response of such a route gets `Vary:
//! Origin` (appended to the endpoint's), since it depends on the origin.
//!
//! `*` is sent as the allowed origin only without credentials: the Fetch standard forbids
//! `*` with `Access-Control-Allow-Credentials: true`, so with credentials the origin is echoed.

use crate::forward::Fields;
use http::HeaderValue;
use std::sync::Arc;

/// One entry of `allow_origins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// `*`: any origin.
    Any,
    /// One origin, `scheme://host[:port]`, lower-case.
    Exact(String),
    /// `scheme://*.domain[:port]`: any subdomain (one label or more) of `domain`.
    Subdomains {
        /// `scheme://`.
        prefix: String,
        /// `.domain[:port]`.
        suffix: String,
    },
}

impl OriginPattern {
    /// Parses `*`, `scheme://host[:port]` or `scheme://*.domain[:port]`.
    pub fn parse(text: &str) -> Result<OriginPattern, String> {
        if text == "*" {
            return Ok(OriginPattern::Any);
        }
        let lower = text.to_ascii_lowercase();
        let Some((scheme, authority)) = lower.split_once("://") else {
            return Err(format!(
                "invalid origin {text:?}: use scheme://host[:port] or *"
            ));
        };
        let scheme_ok = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        let host = authority.strip_prefix("*.").unwrap_or(authority);
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        if !scheme_ok || !host_ok {
            return Err(format!(
                "invalid origin {text:?}: use scheme://host[:port] or *"
            ));
        }
        Ok(match authority.strip_prefix('*') {
            Some(suffix) => OriginPattern::Subdomains {
                prefix: format!("{scheme}://"),
                suffix: suffix.to_owned(),
            },
            None => OriginPattern::Exact(lower),
        })
    }

    /// Whether the request's `Origin` matches (ASCII case-insensitively).
    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(exact) => exact.eq_ignore_ascii_case(origin),
            OriginPattern::Subdomains { prefix, suffix } => {
                let lower = origin.to_ascii_lowercase();
                let label = lower
                    .strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.strip_suffix(suffix.as_str()));
                label.is_some_and(|l| {
                    !l.is_empty()
                        && !l.starts_with('.')
                        && l.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                })
            }
        }
    }
}

/// `[routes.cors]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    /// Origins allowed.
    pub allow_origins: Vec<OriginPattern>,
    /// `Access-Control-Allow-Methods` of a preflight answer.
    pub allow_methods: Vec<String>,
    /// `Access-Control-Allow-Headers` of a preflight answer.
    pub allow_headers: Vec<String>,
    /// `Access-Control-Expose-Headers` of other answers.
    pub expose_headers: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub allow_credentials: bool,
    /// `Access-Control-Max-Age`, seconds.
    pub max_age: Option<u64>,
}

/// A route's CORS policy, with its field values rendered once.
#[derive(Debug)]
pub struct Cors {
    config: CorsConfig,
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
    expose: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

/// What a request's CORS fields say.
#[derive(Debug, Clone, Copy, Default)]
pub struct CorsAsk<'r> {
    /// `Origin`.
    pub origin: Option<&'r str>,
    /// `Access-Control-Request-Method` is there.
    pub preflight_method: bool,
}

impl<'r> CorsAsk<'r> {
    /// Reads `Origin` and `Access-Control-Request-Method` among `fields`. A request with
    /// two `Origin` fields (no browser sends that) has none that counts.
    pub fn from_fields(fields: impl Iterator<Item = (&'r [u8], &'r [u8])>) -> Self {
        let mut asked = CorsAsk::default();
        let mut origins = 0;
        for (name, value) in fields {
            if name.eq_ignore_ascii_case(b"origin") {
                origins += 1;
                asked.origin = std::str::from_utf8(value).ok().filter(|_| origins == 1);
            } else if name.eq_ignore_ascii_case(b"access-control-request-method") {
                asked.preflight_method = true;
            }
        }
        asked
    }
}

/// How to read a request's CORS fields, called only for a route with CORS: most routes have
/// none, and their requests' fields are not searched for `Origin`.
#[derive(Clone, Copy)]
pub struct LazyAsk<'r>(&'r dyn Fn() -> CorsAsk<'r>);

impl<'r> LazyAsk<'r> {
    /// Reads with `read` when asked.
    pub fn new(read: &'r dyn Fn() -> CorsAsk<'r>) -> Self {
        LazyAsk(read)
    }

    /// The request's CORS fields.
    pub fn read(&self) -> CorsAsk<'r> {
        (self.0)()
    }
}

impl std::fmt::Debug for LazyAsk<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LazyAsk")
    }
}

/// The CORS fields one response of a route with CORS gets.
#[derive(Debug, Clone)]
pub struct CorsReply {
    cors: Arc<Cors>,
    /// `Access-Control-Allow-Origin`, when the origin is allowed.
    origin: Option<HeaderValue>,
}

fn joined(list: &[String]) -> Option<HeaderValue> {
    (!list.is_empty())
        .then(|| HeaderValue::from_str(&list.join(", ")).ok())
        .flatten()
}

impl Cors {
    /// Renders `config`.
    pub fn new(config: CorsConfig) -> Cors {
        Cors {
            methods: joined(&config.allow_methods),
            headers: joined(&config.allow_headers),
            expose: joined(&config.expose_headers),
            max_age: config.max_age.map(HeaderValue::from),
            config,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CorsConfig {
        &self.config
    }

    /// Whether the request is a preflight from an allowed origin (answered here, with
    /// [`CorsReply::preflight`]), and the CORS fields of its answer.
    pub fn reply(self: &Arc<Self>, method: &str, asked: &CorsAsk<'_>) -> (bool, CorsReply) {
        let origin = asked.origin.and_then(|o| self.allowed(o));
        let preflight = method == "OPTIONS" && asked.preflight_method && origin.is_some();
        let reply = CorsReply {
            cors: Arc::clone(self),
            origin,
        };
        (preflight, reply)
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed. Only a
    /// serialized origin (`scheme://host[:port]`, or `null`) is ever echoed.
    fn allowed(&self, origin: &str) -> Option<HeaderValue> {
        let serialized =
            origin == "null" || matches!(OriginPattern::parse(origin), Ok(OriginPattern::Exact(_)));
        if !serialized {
            return None;
        }
        let pattern = self
            .config
            .allow_origins
            .iter()
            .find(|p| p.matches(origin))?;
        if *pattern == OriginPattern::Any && !self.config.allow_credentials {
            return Some(HeaderValue::from_static("*"));
        }
        HeaderValue::from_str(origin).ok()
    }
}

impl CorsReply {
    /// Whether the endpoint's field `name` is left out (it is the route's to say).
    pub fn drops(&self, name: &[u8]) -> bool {
        name.len() > 15 && name[..15].eq_ignore_ascii_case(b"access-control-")
    }

    /// Writes the fields of the 204 answer to a preflight.
    pub fn preflight<S: Fields>(&self, sink: &mut S) {
        self.origin_fields(sink);
        let cors = &self.cors;
        for (name, value) in [
            (&b"access-control-allow-methods"[..], &cors.methods),
            (b"access-control-allow-headers", &cors.headers),
            (b"access-control-max-age", &cors.max_age),
        ] {
            if let Some(value) = value {
                sink.field(name, value.as_bytes());
            }
        }
        sink.field(b"vary", b"Origin");
    }

    /// Writes the fields any other response gets.
    pub fn response<S: Fields>(&self, sink: &mut S) {
        self.origin_fields(sink);
        if let (Some(_), Some(expose)) = (&self.origin, &self.cors.expose) {
            sink.field(b"access-control-expose-headers", expose.as_bytes());
        }
        sink.field(b"vary", b"Origin");
    }

    fn origin_fields<S: Fields>(&self, sink: &mut S) {
        if let Some(origin) = &self.origin {
            sink.field(b"access-control-allow-origin", origin.as_bytes());
            if self.cors.config.allow_credentials {
                sink.field(b"access-control-allow-credentials", b"true");
            }
        }
    }
}

#[cfg(test)]
#[path = "cors_tests.rs"]
mod tests;

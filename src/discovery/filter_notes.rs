//! The ingress-nginx annotations that become route filters ([`RouteFilters`]): URL rewrites,
//! redirects, the `Host` the endpoint gets, an added request field, and extra host names.
//! Values are parsed and checked here (a bad one is reported as unsupported, as every other
//! annotation), then turned into each path's filters by [`FilterNotes::for_path`].
//!
//! Semantics, and where they differ from ingress-nginx (see the table in
//! [`super::annotations`]):
//! - `rewrite-target` with `use-regex: "true"`: the Ingress path is a case-insensitive regex
//!   anchored at the start; when it matches, the whole path is replaced by the target with
//!   `$1`… taken from its capture groups (nginx's `rewrite … break`). Without `use-regex` the
//!   path's prefix is replaced by the target (Gateway API `ReplacePrefixMatch`), where
//!   ingress-nginx would still read the path as a regex and replace the whole URI.
//! - `permanent-redirect` / `temporal-redirect`: a fixed `Location`, the request path not
//!   added (as nginx's `return`); `temporal-redirect` wins when both are set, as in
//!   ingress-nginx; codes other than 301, 302, 303, 307, 308 are refused.
//! - `app-root`: `/` (exactly) answers 302 to the app root on the request's own scheme and
//!   host; the query, if any, is kept.

use crate::config::filters::{braced_groups, valid_authority, valid_path};
use crate::forward::edits::{Direction, HeaderEdits};
use crate::ingress::HostPattern;
use crate::ingress::filters::{
    PathChange, PathRegex, REDIRECT_STATUSES, Redirect, RedirectTo, RouteFilters, UrlRewrite,
};
use std::sync::Arc;

/// What one Ingress's filter annotations ask for.
#[derive(Debug, Clone, Default)]
pub(super) struct FilterNotes {
    /// `rewrite-target`.
    rewrite_target: Option<String>,
    /// `app-root`.
    pub(super) app_root: Option<String>,
    /// `permanent-redirect` and its code.
    permanent: Option<(String, u16)>,
    /// `temporal-redirect` and its code.
    temporal: Option<(String, u16)>,
    /// `upstream-vhost`.
    upstream_vhost: Option<String>,
    /// `x-forwarded-prefix`.
    forwarded_prefix: Option<HeaderEdits>,
    /// `server-alias`.
    pub(super) server_alias: Vec<HostPattern>,
}

impl FilterNotes {
    /// Reads `name: value` if it is one of these annotations: `Some(())` when it is and its
    /// value is good, `None` when it is not one of them or its value is bad.
    pub(super) fn read(&mut self, name: &str, value: &str) -> Option<()> {
        match name {
            "rewrite-target" => target_path(value).map(|v| self.rewrite_target = Some(v)),
            "app-root" => (value.starts_with('/') && valid_path(value))
                .then(|| self.app_root = Some(value.to_owned())),
            "permanent-redirect" => url(value).map(|u| set_url(&mut self.permanent, u, 301)),
            "temporal-redirect" => url(value).map(|u| set_url(&mut self.temporal, u, 302)),
            "permanent-redirect-code" => code(value).map(|c| set_code(&mut self.permanent, c)),
            "temporal-redirect-code" => code(value).map(|c| set_code(&mut self.temporal, c)),
            "upstream-vhost" => valid_authority(value)
                .then(|| self.upstream_vhost = Some(value.to_ascii_lowercase())),
            "x-forwarded-prefix" => {
                let set = [("x-forwarded-prefix".to_owned(), value.to_owned())];
                let edits = HeaderEdits::new(Direction::Request, &set, &[], &[]).ok()?;
                (!value.is_empty()).then(|| self.forwarded_prefix = Some(edits))
            }
            "server-alias" => aliases(value, &mut self.server_alias),
            _ => None,
        }
    }

    /// The filters of the Ingress path `path` (`use_regex`: the path is a regex), or why the
    /// path cannot be served as asked.
    pub(super) fn for_path(
        &self,
        path: &str,
        use_regex: bool,
    ) -> Result<Option<Arc<RouteFilters>>, String> {
        let set = |r: &Option<(String, u16)>| r.clone().filter(|(url, _)| !url.is_empty());
        let redirect = set(&self.temporal)
            .or_else(|| set(&self.permanent))
            .map(|(url, status)| Redirect {
                to: RedirectTo::Fixed(url),
                status,
            });
        let change = match &self.rewrite_target {
            None => None,
            Some(target) if use_regex => {
                // nginx replaces the whole path: the match runs to its end.
                let regex = PathRegex::new(&format!("(?i)^(?:{path}).*"))
                    .map_err(|e| format!("path {path:?} as a regex for rewrite-target: {e}"))?;
                Some(PathChange::Regex {
                    regex,
                    replacement: braced_groups(target),
                })
            }
            Some(target) => Some(PathChange::Prefix {
                matched: path.to_owned(),
                with: target.clone(),
            }),
        };
        let rewrite = (change.is_some() || self.upstream_vhost.is_some()).then(|| UrlRewrite {
            host: self.upstream_vhost.clone(),
            path: change,
        });
        let filters = RouteFilters {
            request_headers: self.forwarded_prefix.clone(),
            response_headers: None,
            rewrite: if redirect.is_some() { None } else { rewrite },
            redirect,
        };
        Ok((filters != RouteFilters::default()).then(|| Arc::new(filters)))
    }

    /// The redirect of `/` to the `app-root`, if set.
    pub(super) fn app_root_filters(&self) -> Option<Arc<RouteFilters>> {
        let root = self.app_root.as_ref()?;
        Some(Arc::new(RouteFilters {
            redirect: Some(Redirect {
                to: RedirectTo::Parts {
                    scheme: None,
                    host: None,
                    port: None,
                    path: Some(PathChange::Full(root.clone())),
                },
                status: 302,
            }),
            ..RouteFilters::default()
        }))
    }
}

/// A rewrite target: a path (`$1`… allowed), no query.
fn target_path(v: &str) -> Option<String> {
    (v.starts_with('/') && valid_path(v)).then(|| v.to_owned())
}

/// An absolute `http(s)` URL that can be a `Location` (visible ASCII only).
fn url(v: &str) -> Option<String> {
    let ok = (v.starts_with("http://") || v.starts_with("https://"))
        && v.len() > "https://".len()
        && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_owned())
}

fn code(v: &str) -> Option<u16> {
    v.parse().ok().filter(|c| REDIRECT_STATUSES.contains(c))
}

fn set_url(slot: &mut Option<(String, u16)>, url: String, default: u16) {
    let status = slot.as_ref().map_or(default, |(_, s)| *s);
    *slot = Some((url, status));
}

/// A code seen before its URL keeps its place with an empty URL, filled in by the URL.
fn set_code(slot: &mut Option<(String, u16)>, code: u16) {
    match slot {
        Some((_, s)) => *s = code,
        None => *slot = Some((String::new(), code)),
    }
}

/// The valid names of a comma-separated list into `out`; `None` (the annotation reported)
/// when any name is invalid.
fn aliases(v: &str, out: &mut Vec<HostPattern>) -> Option<()> {
    let mut all_valid = true;
    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match HostPattern::parse(name) {
            Ok(p) => out.push(p),
            Err(_) => all_valid = false,
        }
    }
    all_valid.then_some(())
}

/// The routes these annotations add to an Ingress's own.
pub(super) mod routes {
    use super::FilterNotes;
    use crate::config::RouteConfig;
    use crate::discovery::ingress::IngressParts;
    use crate::ingress::{HostPattern, PathType};
    use std::sync::Arc;

    /// The route just pushed, again under each `server-alias` (when it has a host).
    pub(in crate::discovery) fn push_aliases(
        out: &mut IngressParts,
        notes: &FilterNotes,
        origin: &Arc<str>,
    ) {
        let Some(route) = out.routes.last().filter(|r| r.host.is_some()).cloned() else {
            return;
        };
        for alias in &notes.server_alias {
            out.routes.push(RouteConfig {
                host: Some(alias.clone()),
                ..route.clone()
            });
            out.origins.push(Arc::clone(origin));
        }
    }

    /// An Exact `/` route answering the `app-root` redirect, per rule host and alias, made
    /// from a route of this Ingress (its settings kept, its service unused); none when the
    /// Ingress has no route.
    pub(in crate::discovery) fn push_app_roots(
        out: &mut IngressParts,
        rule_hosts: &[Option<HostPattern>],
        notes: &FilterNotes,
        origin: &Arc<str>,
    ) {
        let Some(filters) = notes.app_root_filters() else {
            return;
        };
        let own = out.routes.iter().zip(&out.origins).rev();
        let Some(template) = own
            .take_while(|(_, o)| Arc::ptr_eq(o, origin))
            .last()
            .map(|(r, _)| r.clone())
        else {
            return;
        };
        let named = rule_hosts.iter().any(Option::is_some);
        let aliases = notes.server_alias.iter().cloned().map(Some);
        let mut hosts: Vec<Option<HostPattern>> = Vec::new();
        for host in rule_hosts.iter().cloned().chain(aliases.filter(|_| named)) {
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        for host in hosts {
            out.routes.push(RouteConfig {
                host,
                path: "/".to_owned(),
                path_type: PathType::Exact,
                service: Arc::from(""),
                filters: Some(Arc::clone(&filters)),
                ..template.clone()
            });
            out.origins.push(Arc::clone(origin));
        }
    }
}

#[cfg(test)]
#[path = "filter_notes_tests.rs"]
mod tests;

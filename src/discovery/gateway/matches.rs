//! One `HTTPRouteMatch` → our route match: the path (and its `PathType`) and the
//! [`Conditions`] on method, headers and query parameters that the core route table already
//! orders by the Gateway API's precedence.
//!
//! A pure function with table tests (facts from the upstream conformance scenarios
//! HTTPRouteMatching, HTTPRouteExactPathMatching, HTTPRoutePathMatchOrder,
//! HTTPRouteHeaderMatching, HTTPRouteQueryParamMatching, HTTPRouteMethodMatching and the spec's
//! field docs), so the Gateway translation that calls it deals in objects, not field rules.
//! A match that cannot be served is an error carrying why, which the translation turns into
//! the rule answering 500 and the route's `Accepted: False, UnsupportedValue`.

use super::route_types::{HttpRouteMatch, ValueMatch as RawMatch};
use crate::ingress::PathType;
use crate::ingress::matches::{Conditions, NamedMatch, ValueMatch};

/// A match as our route table takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The path value.
    pub path: String,
    /// How the path is compared.
    pub path_type: PathType,
    /// Method, header and query conditions (canonical order).
    pub conditions: Conditions,
}

/// Why a match cannot be served (the status message of `UnsupportedValue`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unsupported(pub String);

/// The route match for `m`; `None` (no matches in the rule) is `PathPrefix /`.
pub fn route_match(m: Option<&HttpRouteMatch>) -> Result<RouteMatch, Unsupported> {
    let Some(m) = m else {
        return Ok(RouteMatch {
            path: "/".into(),
            path_type: PathType::Prefix,
            conditions: Conditions::default(),
        });
    };
    let (path, path_type) = path(m.path.as_ref())?;
    let conditions = Conditions {
        method: m.method.as_deref().map(Box::from),
        headers: named(&m.headers, "header", true)?,
        query: named(&m.query_params, "query parameter", false)?,
    };
    Ok(RouteMatch {
        path,
        path_type,
        conditions: conditions.canonical(),
    })
}

/// The path and its type (default `PathPrefix /`).
fn path(p: Option<&RawMatch>) -> Result<(String, PathType), Unsupported> {
    let value = p
        .and_then(|p| p.value.clone())
        .unwrap_or_else(|| "/".into());
    let kind = p.and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix");
    let path_type = match kind {
        "Exact" => PathType::Exact,
        "PathPrefix" => PathType::Prefix,
        "RegularExpression" => {
            crate::ingress::matches::full_match_regex(&value)
                .map_err(|e| Unsupported(format!("path regular expression {value:?}: {e}")))?;
            PathType::RegularExpression
        }
        other => return Err(Unsupported(format!("path match type {other:?}"))),
    };
    if path_type != PathType::RegularExpression && !value.starts_with('/') {
        return Err(Unsupported(format!("path {value:?} does not start with /")));
    }
    Ok((value, path_type))
}

/// Header or query conditions: `Exact` (default) or `RegularExpression`; of entries with the
/// same name (case-insensitive for headers) only the first counts, as the spec says.
fn named(list: &[RawMatch], what: &str, fold: bool) -> Result<Vec<NamedMatch>, Unsupported> {
    let mut out: Vec<NamedMatch> = Vec::new();
    for m in list {
        let raw = m.name.as_deref().unwrap_or_default();
        let name = if fold {
            raw.to_ascii_lowercase()
        } else {
            raw.to_owned()
        };
        if name.is_empty() {
            return Err(Unsupported(format!("{what} match without a name")));
        }
        if out.iter().any(|n| *n.name == *name) {
            continue;
        }
        let value = m.value.as_deref().unwrap_or_default();
        let value = match m.kind.as_deref().unwrap_or("Exact") {
            "Exact" => ValueMatch::Exact(value.into()),
            "RegularExpression" => {
                ValueMatch::regex(value).map_err(|e| Unsupported(format!("{what} {raw}: {e}")))?
            }
            other => return Err(Unsupported(format!("{what} match type {other:?}"))),
        };
        out.push(NamedMatch {
            name: name.into(),
            value,
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;

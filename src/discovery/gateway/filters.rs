//! HTTPRoute filters and timeouts → the core route's filters, mirror and timeouts, which
//! already have Gateway API semantics ([`crate::ingress::filters`],
//! [`crate::config::upstream_policy`]): `RequestHeaderModifier`, `ResponseHeaderModifier`,
//! `RequestRedirect`, `URLRewrite` (path `ReplaceFullPath` / `ReplacePrefixMatch`, hostname)
//! and `RequestMirror` (`percent` or `fraction`; at most 64 copies in flight and 64 KiB of
//! body, the file's defaults). `ExtensionRef` and unknown filters, a `ReplacePrefixMatch` on a
//! match that is not a `PathPrefix`, a redirect together with a rewrite, or a bad value are
//! [`Unsupported`]: the translation then makes the rule answer 500 and writes
//! `Accepted: False, UnsupportedValue`.
//!
//! Built per match, since `ReplacePrefixMatch` replaces the prefix that match matched.

use super::matches::{RouteMatch, Unsupported};
use super::route_types::{HttpRouteFilter, HttpRouteRule};
use super::types::ObjectRef;
use crate::config::upstream_policy::{MirrorConfig, RouteTimeouts};
use crate::forward::edits::{Direction, HeaderEdits};
use crate::ingress::PathType;
use crate::ingress::filters::{PathChange, Redirect, RedirectTo, RouteFilters, Scheme, UrlRewrite};
use serde::Deserialize;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// What a rule's filters and timeouts add to one of its routes.
#[derive(Debug, Default)]
pub(crate) struct RuleExtras {
    /// Header edits, redirect, rewrite.
    pub(crate) filters: Option<Arc<RouteFilters>>,
    /// The mirror.
    pub(crate) mirror: Option<MirrorConfig>,
    /// The timeouts.
    pub(crate) timeouts: RouteTimeouts,
}

/// The extras of `rule` for its match `m`; `mirror_to` resolves a mirror's backendRef.
pub(crate) fn extras(
    rule: &HttpRouteRule,
    m: &RouteMatch,
    mirror_to: &mut dyn FnMut(&ObjectRef) -> Arc<str>,
) -> Result<RuleExtras, Unsupported> {
    let mut f = RouteFilters::default();
    let mut mirror = None;
    for filter in &rule.filters {
        apply(filter, m, &mut f, &mut mirror, mirror_to)?;
    }
    if f.redirect.is_some() && f.rewrite.is_some() {
        return Err(Unsupported(
            "RequestRedirect and URLRewrite together".into(),
        ));
    }
    let timeouts = match &rule.timeouts {
        None => RouteTimeouts::default(),
        Some(t) => RouteTimeouts {
            request: t.request.as_deref().map(duration).transpose()?.flatten(),
            backend_request: t
                .backend_request
                .as_deref()
                .map(duration)
                .transpose()?
                .flatten(),
        },
    };
    let filters = (f != RouteFilters::default()).then(|| Arc::new(f));
    Ok(RuleExtras {
        filters,
        mirror,
        timeouts,
    })
}

fn apply(
    filter: &HttpRouteFilter,
    m: &RouteMatch,
    f: &mut RouteFilters,
    mirror: &mut Option<MirrorConfig>,
    mirror_to: &mut dyn FnMut(&ObjectRef) -> Arc<str>,
) -> Result<(), Unsupported> {
    let kind = filter.kind.as_str();
    let missing = || Unsupported(format!("filter {kind} without its settings"));
    match kind {
        "RequestHeaderModifier" | "ResponseHeaderModifier" => {
            let (raw, dir, slot) = if kind == "RequestHeaderModifier" {
                (
                    &filter.request_header_modifier,
                    Direction::Request,
                    &mut f.request_headers,
                )
            } else {
                (
                    &filter.response_header_modifier,
                    Direction::Response,
                    &mut f.response_headers,
                )
            };
            let h: RawHeaders = parse(raw.as_ref().ok_or_else(missing)?, kind)?;
            let pairs = |l: &[RawHeader]| -> Vec<(String, String)> {
                l.iter()
                    .map(|x| (x.name.clone(), x.value.clone()))
                    .collect()
            };
            let edits = HeaderEdits::new(dir, &pairs(&h.set), &pairs(&h.add), &h.remove)
                .map_err(|e| Unsupported(format!("{kind}: {e}")))?;
            *slot = Some(edits);
        }
        "RequestRedirect" => {
            let r: RawRedirect =
                parse(filter.request_redirect.as_ref().ok_or_else(missing)?, kind)?;
            let scheme = match r.scheme.as_deref() {
                None => None,
                Some("http") => Some(Scheme::Http),
                Some("https") => Some(Scheme::Https),
                Some(other) => return Err(Unsupported(format!("redirect scheme {other:?}"))),
            };
            let status = r.status_code.unwrap_or(302);
            if !crate::ingress::filters::REDIRECT_STATUSES.contains(&status) {
                return Err(Unsupported(format!("redirect statusCode {status}")));
            }
            let port = r
                .port
                .map(|p| u16::try_from(p).map_err(|_| Unsupported(format!("redirect port {p}"))));
            f.redirect = Some(Redirect {
                to: RedirectTo::Parts {
                    scheme,
                    host: r.hostname,
                    port: port.transpose()?,
                    path: r.path.as_ref().map(|p| path_change(p, m)).transpose()?,
                },
                status,
            });
        }
        "URLRewrite" => {
            let r: RawRewrite = parse(filter.url_rewrite.as_ref().ok_or_else(missing)?, kind)?;
            f.rewrite = Some(UrlRewrite {
                host: r.hostname,
                path: r.path.as_ref().map(|p| path_change(p, m)).transpose()?,
            });
        }
        "RequestMirror" => {
            let r: RawMirror = parse(filter.request_mirror.as_ref().ok_or_else(missing)?, kind)?;
            let per_million = match (r.percent, r.fraction) {
                (Some(p), _) => u32::try_from(p.clamp(0, 100)).unwrap_or(0) * 10_000,
                (None, Some(fr)) if fr.denominator.unwrap_or(100) > 0 => {
                    let d = i64::from(fr.denominator.unwrap_or(100));
                    let n = i64::from(fr.numerator).clamp(0, d);
                    u32::try_from(n * 1_000_000 / d).unwrap_or(0)
                }
                (None, Some(_)) => return Err(Unsupported("mirror fraction denominator 0".into())),
                (None, None) => 1_000_000,
            };
            *mirror = Some(MirrorConfig {
                service: mirror_to(&r.backend_ref),
                per_million,
                max_in_flight: NonZeroU32::new(64).unwrap_or(NonZeroU32::MIN),
                max_body_bytes: 64 * 1024,
            });
        }
        other => return Err(Unsupported(format!("filter {other} is not supported"))),
    }
    Ok(())
}

/// A redirect's or rewrite's path change for match `m`.
fn path_change(p: &RawPath, m: &RouteMatch) -> Result<PathChange, Unsupported> {
    match p.kind.as_str() {
        "ReplaceFullPath" => Ok(PathChange::Full(
            p.replace_full_path.clone().unwrap_or_else(|| "/".into()),
        )),
        "ReplacePrefixMatch" if m.path_type == PathType::Prefix => Ok(PathChange::Prefix {
            matched: m.path.clone(),
            with: p.replace_prefix_match.clone().unwrap_or_else(|| "/".into()),
        }),
        "ReplacePrefixMatch" => Err(Unsupported(
            "ReplacePrefixMatch needs a PathPrefix match".into(),
        )),
        other => Err(Unsupported(format!("path modifier type {other:?}"))),
    }
}

/// A Gateway API duration (GEP-2257: `1h`, `10m`, `30s`, `500ms`, combined like `1m30s`);
/// `0s` is no timeout (`None`).
pub(crate) fn duration(text: &str) -> Result<Option<Duration>, Unsupported> {
    let bad = || Unsupported(format!("duration {text:?}"));
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(n), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(n * 3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(n * 60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(n), 1)
        } else {
            return Err(bad());
        };
        total += unit;
        rest = &rest[len..];
    }
    Ok((!total.is_zero()).then_some(total))
}

fn parse<T: for<'de> Deserialize<'de>>(
    v: &serde_json::Value,
    kind: &str,
) -> Result<T, Unsupported> {
    serde_json::from_value(v.clone()).map_err(|e| Unsupported(format!("{kind}: {e}")))
}

#[derive(Deserialize)]
struct RawHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct RawHeaders {
    #[serde(default)]
    set: Vec<RawHeader>,
    #[serde(default)]
    add: Vec<RawHeader>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPath {
    #[serde(rename = "type")]
    kind: String,
    replace_full_path: Option<String>,
    replace_prefix_match: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRedirect {
    scheme: Option<String>,
    hostname: Option<String>,
    path: Option<RawPath>,
    port: Option<i64>,
    status_code: Option<u16>,
}

#[derive(Deserialize)]
struct RawRewrite {
    hostname: Option<String>,
    path: Option<RawPath>,
}

#[derive(Deserialize)]
struct RawFraction {
    numerator: i32,
    denominator: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMirror {
    backend_ref: ObjectRef,
    percent: Option<i64>,
    fraction: Option<RawFraction>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_api_durations() {
        assert_eq!(duration("10s"), Ok(Some(Duration::from_secs(10))));
        assert_eq!(duration("500ms"), Ok(Some(Duration::from_millis(500))));
        assert_eq!(duration("1h1m1s"), Ok(Some(Duration::from_secs(3661))));
        assert_eq!(duration("0s"), Ok(None));
        for bad in ["", "10", "1d", "s", "1.5s", "-1s"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}

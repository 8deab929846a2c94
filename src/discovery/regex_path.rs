//! The ingress-nginx `use-regex` annotation applied to one Ingress path: a `Prefix` or
//! `ImplementationSpecific` path becomes the `RegularExpression` path that matches what
//! nginx's `location ~* "^PATH"` matches ([`nginx_location`]); `Exact` stays exact.
//!
//! A file of its own so the translation of Ingresses only gains one call. A path that does not
//! compile (PCRE-only syntax such as look-around, or over the size limit) is skipped here with
//! reason `invalid_path`, like an unknown `pathType`, so the rest of the Ingress still routes.

use super::report::ObjectReport;
use crate::ingress::PathType;
use crate::ingress::regex_paths::{nginx_location, path_regex};

/// The path and path type to route by, or `None` when the path is skipped (and reported).
pub(super) fn apply(
    use_regex: bool,
    path: String,
    path_type: PathType,
    rep: &mut ObjectReport<'_>,
) -> Option<(String, PathType)> {
    if !use_regex || path_type == PathType::Exact {
        return Some((path, path_type));
    }
    let pattern = nginx_location(&path);
    match path_regex(&pattern) {
        Ok(_) => Some((pattern, PathType::RegularExpression)),
        Err(e) => {
            rep.skip("invalid_path", &format!("use-regex path {path:?}: {e}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ingress::regex_paths::{nginx_location, path_regex};

    #[test]
    fn nginx_locations_are_case_insensitive_prefix_regexes() {
        let re = path_regex(&nginx_location("/api/v[0-9]+")).expect("valid");
        for path in ["/api/v1", "/API/V22/users", "/api/v3x"] {
            assert!(re.is_match(path), "{path}");
        }
        for path in ["/x/api/v1", "/api/v"] {
            assert!(!re.is_match(path), "{path}");
        }
        let ended = path_regex(&nginx_location("/exact$")).expect("valid");
        assert!(ended.is_match("/EXACT") && !ended.is_match("/exact/more"));
        assert!(path_regex(&nginx_location("/(?=look)")).is_err());
    }
}

//! Validating a rule's path, and the reports [`RouteTable::build`](super::RouteTable::build)
//! gives for rules it leaves out. Split from `routes` so that file keeps to the table itself.

use super::host::HostPattern;
use super::normalize::{NormalizeOptions, TargetError, normalize_target};
use super::routes::PathType;
use std::borrow::Cow;

/// Why a rule's path was refused. The checks are those of the Kubernetes API server, plus `?`
/// and `#`, which would make a rule that no request can match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path {path:?} must start with '/'")]
    NotAbsolute {
        /// The path as given.
        path: String,
    },
    /// The path has a query string or fragment, which requests never bring to routing.
    #[error(
        "path {path:?} contains {ch:?}, so no request can match it (the query string and \
         fragment are not part of the path)"
    )]
    Unreachable {
        /// The path as given.
        path: String,
        /// `?` or `#`.
        ch: char,
    },
    /// An `Exact` or `Prefix` path holds `//`, `/./`, `/../` or an encoded slash.
    #[error("{path_type} path {path:?} must not contain {sequence:?}")]
    Sequence {
        /// The path as given.
        path: String,
        /// Its path type.
        path_type: PathType,
        /// The forbidden sequence found.
        sequence: &'static str,
    },
    /// The path cannot be normalised as request paths are (a `\`, NUL, a bad escape).
    #[error("path {path:?} cannot be normalised: {reason}")]
    Normalize {
        /// The path as given.
        path: String,
        /// Why.
        #[source]
        reason: TargetError,
    },
    /// A `RegularExpression` path does not compile.
    #[error("path {path:?}: {reason}")]
    Regex {
        /// The pattern as given.
        path: String,
        /// Why.
        #[source]
        reason: super::matches::MatchError,
    },
    /// An `Exact` or `Prefix` path ends with `/.` or `/..`.
    #[error("{path_type} path {path:?} must not end with {suffix:?}")]
    Suffix {
        /// The path as given.
        path: String,
        /// Its path type.
        path_type: PathType,
        /// The forbidden suffix found.
        suffix: &'static str,
    },
}

/// Substrings the Kubernetes API server refuses in `Exact` and `Prefix` paths.
const INVALID_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
/// Suffixes the Kubernetes API server refuses in `Exact` and `Prefix` paths.
const INVALID_SUFFIXES: [&str; 2] = ["/..", "/."];

/// A rule or host default that [`RouteTable::build`] left out. Indices are positions in the
/// vectors given to `build`, so a caller can name the entry at fault (its `Display` does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// The rule is invalid.
    #[error("rules[{rule}]: {reason}; the rule is ignored")]
    Invalid {
        /// Index of the rule.
        rule: usize,
        /// What is wrong with it.
        #[source]
        reason: PathError,
    },
    /// The rule routes the same requests as an earlier one: same host pattern, same path
    /// (`Prefix` paths compared without trailing slash) and same kind of match
    /// (`ImplementationSpecific` being `Prefix`).
    #[error(
        "rules[{rule}] ({path_type} {path:?} on {}) matches the same requests as rules[{first}], \
         which comes first; rules[{rule}] is ignored",
        on_host(.host)
    )]
    Duplicate {
        /// Index of the ignored rule.
        rule: usize,
        /// Index of the earlier rule that wins.
        first: usize,
        /// The host of both.
        host: Option<HostPattern>,
        /// The ignored rule's path.
        path: String,
        /// The ignored rule's path type.
        path_type: PathType,
    },
    /// A second default backend for the same host pattern.
    #[error(
        "host_defaults[{index}] repeats the host {host} of host_defaults[{first}], which comes \
         first; host_defaults[{index}] is ignored"
    )]
    DuplicateHostDefault {
        /// Index of the ignored entry.
        index: usize,
        /// Index of the earlier entry that wins.
        first: usize,
        /// The host pattern of both.
        host: HostPattern,
    },
}

fn on_host(host: &Option<HostPattern>) -> String {
    match host {
        Some(pattern) => format!("host {pattern}"),
        None => "any host".to_owned(),
    }
}

/// Validates a rule's path and returns the key it is stored under: the path normalised as
/// request paths are, itself for `Exact`, without trailing slashes for the prefix types
/// (`""` being `/`).
pub(super) fn rule_key(path: &str, path_type: PathType) -> Result<Cow<'_, str>, PathError> {
    if path.is_empty() && path_type == PathType::ImplementationSpecific {
        return Ok(Cow::Borrowed(""));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute {
            path: path.to_owned(),
        });
    }
    if let Some(ch) = path.chars().find(|&c| c == '?' || c == '#') {
        return Err(PathError::Unreachable {
            path: path.to_owned(),
            ch,
        });
    }
    if path_type != PathType::ImplementationSpecific {
        if let Some(sequence) = INVALID_SEQUENCES.into_iter().find(|s| path.contains(s)) {
            return Err(PathError::Sequence {
                path: path.to_owned(),
                path_type,
                sequence,
            });
        }
        if let Some(suffix) = INVALID_SUFFIXES.into_iter().find(|s| path.ends_with(s)) {
            return Err(PathError::Suffix {
                path: path.to_owned(),
                path_type,
                suffix,
            });
        }
    }
    // Requests are routed by their normalised path, so a rule's path is normalised the same
    // way (`/%7Euser` is `/~user`); encoded slashes stay (a listener that refuses them never
    // routes such a request anyway).
    let options = NormalizeOptions {
        keep_encoded_slashes: true,
    };
    let encoded = encode_unprintable(path);
    let normalized = match encoded {
        Cow::Borrowed(path) => normalize_target(path, options),
        Cow::Owned(ref path) => normalize_target(path, options).map(|p| Cow::Owned(p.into_owned())),
    };
    let path = normalized.map_err(|reason| PathError::Normalize {
        path: path.to_owned(),
        reason,
    })?;
    Ok(match (path_type, path) {
        (PathType::Exact, path) => path,
        (_, Cow::Borrowed(path)) => Cow::Borrowed(path.trim_end_matches('/')),
        (_, Cow::Owned(path)) => Cow::Owned(path.trim_end_matches('/').to_owned()),
    })
}

/// `path` with its bytes outside printable ASCII percent-encoded, as a client sends them: a
/// rule for `/é` matches the request for `/%C3%A9`.
fn encode_unprintable(path: &str) -> Cow<'_, str> {
    if path.bytes().all(|b| b.is_ascii_graphic()) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() * 3);
    for b in path.bytes() {
        if b.is_ascii_graphic() {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

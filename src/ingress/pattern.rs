//! Host patterns of Ingress rules: an exact name, or `*.suffix` covering exactly one more label.

use super::host::{HostError, Hostname, MAX_HOST_LEN};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The `host` of an Ingress rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// This host only.
    Exact(Hostname),
    /// `*.suffix`: any host that is exactly one label followed by `suffix` (held here, without
    /// the `*.`).
    Wildcard(Hostname),
}

impl HostPattern {
    /// Parses `example.com`, `*.example.com` or an IP literal; see [`Hostname::parse`].
    pub fn parse(text: &str) -> Result<HostPattern, HostError> {
        if text == "*" || text == "*." {
            return Err(HostError::WildcardWithoutDomain {
                pattern: text.to_owned(),
            });
        }
        match text.strip_prefix("*.") {
            Some(suffix) => {
                if suffix.contains('*') {
                    return Err(HostError::MisplacedWildcard {
                        pattern: text.to_owned(),
                    });
                }
                // The limit is on the whole pattern, as Kubernetes checks it.
                let len = text.strip_suffix('.').unwrap_or(text).len();
                if len > MAX_HOST_LEN {
                    return Err(HostError::TooLong {
                        host: text.to_owned(),
                        len,
                    });
                }
                let suffix = Hostname::parse_shown(suffix, text)?;
                if suffix.is_ip() {
                    return Err(HostError::WildcardWithoutDomain {
                        pattern: text.to_owned(),
                    });
                }
                Ok(HostPattern::Wildcard(suffix))
            }
            None if text.contains('*') => Err(HostError::MisplacedWildcard {
                pattern: text.to_owned(),
            }),
            None => Hostname::parse(text).map(HostPattern::Exact),
        }
    }

    /// Whether a request for `host` is covered by this pattern.
    pub fn matches(&self, host: &Hostname) -> bool {
        match self {
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => host.parent() == Some(suffix.as_str()),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => write!(f, "{name}"),
            HostPattern::Wildcard(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

impl FromStr for HostPattern {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HostPattern::parse(s)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HostPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

//! Host names and host patterns, as an Ingress rule and a request spell them.
//!
//! Routing compares host names on every request, so a [`Hostname`] is normalised once, when it
//! is made: lower case (DNS names are case-insensitive, RFC 4343), no trailing dot (`example.com.`
//! and `example.com` are the same name), no port, IPv4 and IPv6 literals in the canonical form
//! the standard library prints. After that, comparing two hosts is comparing two strings, and a
//! table can key its maps by them.
//!
//! There are two ways in, because the two sources deserve different treatment:
//! - [`Hostname::parse`] is for configuration (the TOML file, an Ingress object). It is strict
//!   and says exactly what is wrong, so a typo is caught at load time with a useful message;
//! - [`Hostname::from_authority`] is for a request's `Host` header or `:authority`. It strips
//!   the port and answers `None` for anything that is not a host: a client sending garbage is
//!   the client's problem, not a reason to log or to panic.
//!
//! A [`HostPattern`] is what an Ingress rule's `host` may hold: an exact name, or a wildcard
//! `*.example.com` that, as in Kubernetes, covers exactly one more label
//! (`foo.example.com`, but neither `example.com` nor `a.b.example.com`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub use super::pattern::HostPattern;

/// Longest host name accepted, in bytes, without a trailing dot (RFC 1123 §2.1, RFC 1035 §2.3.4).
pub const MAX_HOST_LEN: usize = 253;
/// Longest label accepted, in bytes (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

/// Why a host name or host pattern from the configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing was given.
    #[error("host name is empty")]
    Empty,
    /// The whole name is too long.
    #[error("host name {host:?} is {len} bytes long, the limit is {MAX_HOST_LEN}")]
    TooLong {
        /// The value as given.
        host: String,
        /// Its length in bytes, without a trailing dot.
        len: usize,
    },
    /// Two dots in a row, or a leading dot.
    #[error("host name {host:?} has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel {
        /// The value as given.
        host: String,
    },
    /// One label is too long.
    #[error(
        "label {label:?} of host name {host:?} is {len} bytes long, the limit is {MAX_LABEL_LEN}"
    )]
    LabelTooLong {
        /// The value as given.
        host: String,
        /// The label at fault.
        label: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A character that is not allowed in a DNS name.
    #[error(
        "host name {host:?} contains {ch:?}: only letters, digits, '-' and '.' are allowed \
         (use punycode for international names)"
    )]
    InvalidChar {
        /// The value as given.
        host: String,
        /// The first character at fault.
        ch: char,
    },
    /// A label starts or ends with `-`.
    #[error("label {label:?} of host name {host:?} starts or ends with '-'")]
    Hyphen {
        /// The value as given.
        host: String,
        /// The label at fault.
        label: String,
    },
    /// A port was given with the name.
    #[error("host name {host:?} includes a port: give the name alone")]
    Port {
        /// The value as given.
        host: String,
    },
    /// Looks like an IPv6 literal but is not one.
    #[error("{host:?} is not a valid IPv6 address")]
    InvalidIpv6 {
        /// The value as given.
        host: String,
    },
    /// A `*` somewhere else than as the whole first label.
    #[error(
        "host pattern {pattern:?} has a misplaced '*': a wildcard must be the whole first \
         label, as in \"*.example.com\""
    )]
    MisplacedWildcard {
        /// The value as given.
        pattern: String,
    },
    /// `*` alone, or a wildcard over an IP address.
    #[error(
        "host pattern {pattern:?} needs a domain name after \"*.\" (to match any host, give no \
         host at all)"
    )]
    WildcardWithoutDomain {
        /// The value as given.
        pattern: String,
    },
}

/// What kind of host a [`Hostname`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Dns,
    Ip,
}

/// A validated, normalised host: a lower-case DNS name without trailing dot, or an IPv4 or IPv6
/// literal in canonical form (IPv6 without brackets).
///
/// Two `Hostname`s are equal exactly when they name the same host, so equality is string
/// equality of [`as_str`](Hostname::as_str).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hostname {
    name: Box<str>,
    kind: Kind,
}

impl Hostname {
    /// Parses a host name from configuration. Upper case and one trailing dot are accepted and
    /// normalised away; IPv6 literals may be given with or without brackets. Anything else that
    /// is not an RFC 1123 name or an IP literal is refused with the reason.
    pub fn parse(text: &str) -> Result<Hostname, HostError> {
        Hostname::parse_shown(text, text)
    }

    /// [`parse`](Hostname::parse), naming `shown` in errors (a wildcard names the whole pattern).
    pub(super) fn parse_shown(text: &str, shown: &str) -> Result<Hostname, HostError> {
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| HostError::InvalidIpv6 {
                    host: shown.to_owned(),
                })?;
            return Hostname::ipv6(inner).ok_or_else(|| HostError::InvalidIpv6 {
                host: shown.to_owned(),
            });
        }
        if text.contains(':') {
            if let Some(ip) = Hostname::ipv6(text) {
                return Ok(ip);
            }
            // One colon after something that is a valid name: a port, most likely.
            let port_like = text
                .rsplit_once(':')
                .is_some_and(|(name, port)| !name.contains(':') && valid_port(port));
            return Err(if port_like {
                HostError::Port {
                    host: shown.to_owned(),
                }
            } else {
                HostError::InvalidIpv6 {
                    host: shown.to_owned(),
                }
            });
        }
        let name = text.strip_suffix('.').unwrap_or(text);
        if let Some(ip) = Hostname::ipv4(name) {
            return Ok(ip);
        }
        check_dns(name).map_err(|p| p.into_error(name, shown))?;
        Ok(Hostname::dns(name))
    }

    /// The host of a request's `Host` header or HTTP/2 `:authority`: the port (`:8443`,
    /// `[::1]:443`) and one trailing dot are stripped and the name is lower-cased. Returns
    /// `None` for anything that is not a valid host (user info, bad characters, an unbracketed
    /// IPv6 address, a port that is not a number…). Never panics.
    pub fn from_authority(authority: &str) -> Option<Hostname> {
        if let Some(rest) = authority.strip_prefix('[') {
            let (inner, after) = rest.split_once(']')?;
            if !after.is_empty() && !after.strip_prefix(':').is_some_and(valid_port) {
                return None;
            }
            return Hostname::ipv6(inner);
        }
        // Byte searches: this runs for every request, on short strings.
        let host = match authority.bytes().rposition(|b| b == b':') {
            Some(i) => {
                let (host, port) = (&authority[..i], &authority[i + 1..]);
                if !valid_port(port) || host.bytes().any(|b| b == b':') {
                    return None;
                }
                host
            }
            None => authority,
        };
        let name = host.strip_suffix('.').unwrap_or(host);
        if let Some(ip) = Hostname::ipv4(name) {
            return Some(ip);
        }
        check_dns(name).ok()?;
        Some(Hostname::dns(name))
    }

    /// The normalised text: `example.com`, `192.0.2.1`, `2001:db8::1` (no brackets).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// Whether this is an IP literal rather than a DNS name.
    pub fn is_ip(&self) -> bool {
        self.kind == Kind::Ip
    }

    /// The name without its first label (`example.com` for `foo.example.com`): what a wildcard
    /// `*.example.com` must equal to match. `None` for a single label and for IP literals.
    pub fn parent(&self) -> Option<&str> {
        match self.kind {
            Kind::Dns => self.name.split_once('.').map(|(_, parent)| parent),
            Kind::Ip => None,
        }
    }

    /// A DNS name that [`check_dns`] accepted.
    fn dns(name: &str) -> Hostname {
        Hostname {
            name: name.to_ascii_lowercase().into_boxed_str(),
            kind: Kind::Dns,
        }
    }

    fn ipv4(text: &str) -> Option<Hostname> {
        // Only the dotted-quad form: the standard parser refuses leading zeros, so `010.0.0.1`
        // is never read as octal (it stays a DNS name that no IP rule matches).
        // What it accepts (four decimal octets, no leading zeros) is already canonical, so
        // the text is kept rather than formatted again.
        let _: Ipv4Addr = text.parse().ok()?;
        Some(Hostname {
            name: text.into(),
            kind: Kind::Ip,
        })
    }

    fn ipv6(text: &str) -> Option<Hostname> {
        let ip: Ipv6Addr = text.parse().ok()?;
        Some(Hostname {
            name: ip.to_string().into_boxed_str(),
            kind: Kind::Ip,
        })
    }
}

impl fmt::Display for Hostname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for Hostname {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hostname::parse(s)
    }
}

impl Serialize for Hostname {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Hostname {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Hostname::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An authority's port: empty (RFC 3986 allows `host:`) or a number that fits in 16 bits.
fn valid_port(port: &str) -> bool {
    port.is_empty()
        || (port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok())
}

/// What [`check_dns`] found wrong; turned into a [`HostError`] only on the strict path, so the
/// request path never allocates for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DnsProblem {
    Empty,
    TooLong,
    EmptyLabel,
    LabelTooLong(usize),
    InvalidChar(char),
    Hyphen(usize),
}

impl DnsProblem {
    /// `name` is what was checked, `shown` what the user wrote. Label problems carry the byte
    /// offset of the label in `name`.
    fn into_error(self, name: &str, shown: &str) -> HostError {
        let host = shown.to_owned();
        let label_at = |start: usize| {
            let rest = name.get(start..).unwrap_or_default();
            rest.split('.').next().unwrap_or_default().to_owned()
        };
        match self {
            DnsProblem::Empty if shown.is_empty() => HostError::Empty,
            DnsProblem::Empty => HostError::EmptyLabel { host },
            DnsProblem::TooLong => HostError::TooLong {
                host,
                len: name.len(),
            },
            DnsProblem::EmptyLabel => HostError::EmptyLabel { host },
            DnsProblem::LabelTooLong(start) => {
                let label = label_at(start);
                HostError::LabelTooLong {
                    host,
                    len: label.len(),
                    label,
                }
            }
            DnsProblem::InvalidChar(ch) => HostError::InvalidChar { host, ch },
            DnsProblem::Hyphen(start) => HostError::Hyphen {
                host,
                label: label_at(start),
            },
        }
    }
}

/// Checks an RFC 1123 host name (trailing dot already removed), either case. Every request's
/// Host passes through here, so it works on bytes in one pass per rule.
fn check_dns(name: &str) -> Result<(), DnsProblem> {
    if name.is_empty() {
        return Err(DnsProblem::Empty);
    }
    // Characters first: "no spaces allowed" is a better message than "label too long".
    let allowed = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.';
    if let Some(i) = name.bytes().position(|b| !allowed(&b)) {
        // Everything before `i` is ASCII, so `i` starts a character.
        let ch = name[i..]
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(DnsProblem::InvalidChar(ch));
    }
    if name.len() > MAX_HOST_LEN {
        return Err(DnsProblem::TooLong);
    }
    let mut start = 0;
    for label in name.as_bytes().split(|&b| b == b'.') {
        match (label.first(), label.last()) {
            (None, _) | (_, None) => return Err(DnsProblem::EmptyLabel),
            _ if label.len() > MAX_LABEL_LEN => return Err(DnsProblem::LabelTooLong(start)),
            (Some(b'-'), _) | (_, Some(b'-')) => return Err(DnsProblem::Hyphen(start)),
            _ => {}
        }
        start += label.len() + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests;

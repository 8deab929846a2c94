//! A route's header edits (Gateway API `RequestHeaderModifier` / `ResponseHeaderModifier`):
//! `set` replaces every field of a name with one value, `add` appends a field, `remove` drops
//! every field of a name. Names compare case-insensitively and are kept lowercase.
//!
//! Edits are applied while a message's fields are rewritten anyway ([`super::request`],
//! [`super::response`]): a field an edit replaces or removes is skipped as it passes, and the
//! edit's own fields are written after the message's. So an edit costs nothing when a route has
//! none, and one comparison per field and edited name when it has some (edits are few).
//!
//! Names that frame the message or describe the connection (`content-length`,
//! `transfer-encoding`, `connection`, `upgrade`, `te`, `keep-alive`, `trailer`, `proxy-*`) and
//! on requests those the proxy writes itself (`host`: use a rewrite; `x-forwarded-*`,
//! `forwarded`, `x-request-id`) are refused when the edits are built, as are values that are
//! not a valid field value (CR, LF, NUL and other controls): a header edit can never split a
//! message or smuggle one.

use super::Fields;
use crate::http1::fields::{self, Kind};

/// Which message an edit applies to; each has its own refused names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The request the endpoint gets.
    Request,
    /// The response the client gets.
    Response,
}

/// Why an edit cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// Not an RFC 9110 token.
    #[error("invalid header name {0:?}")]
    Name(String),
    /// A name the proxy owns on this message.
    #[error(
        "header {0:?} cannot be edited (it frames the message, describes the connection or is written by the proxy)"
    )]
    Reserved(String),
    /// Control characters (CR, LF, NUL…) or non-ASCII outside obs-text.
    #[error("invalid value for header {0:?}: control characters are not allowed")]
    Value(String),
}

/// A field an edit writes: lowercase name, value.
type Field = (Box<[u8]>, Box<[u8]>);

/// One route's edits of one message's header fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Replaced: lowercase name, value.
    set: Vec<Field>,
    /// Appended: lowercase name, value.
    add: Vec<Field>,
    /// Dropped: lowercase names.
    remove: Vec<Box<[u8]>>,
}

impl HeaderEdits {
    /// Checks and builds the edits of one message.
    pub fn new(
        direction: Direction,
        set: &[(String, String)],
        add: &[(String, String)],
        remove: &[String],
    ) -> Result<Self, EditError> {
        let pair = |(name, value): &(String, String)| {
            Ok((field_name(direction, name)?, field_value(name, value)?))
        };
        Ok(HeaderEdits {
            set: set.iter().map(pair).collect::<Result<_, EditError>>()?,
            add: add.iter().map(pair).collect::<Result<_, EditError>>()?,
            remove: remove
                .iter()
                .map(|n| field_name(direction, n))
                .collect::<Result<_, _>>()?,
        })
    }

    /// True when nothing is edited.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Whether a message's field called `name` is left out (replaced or removed).
    pub fn drops(&self, name: &[u8]) -> bool {
        self.set.iter().any(|(n, _)| name.eq_ignore_ascii_case(n))
            || self.remove.iter().any(|n| name.eq_ignore_ascii_case(n))
    }

    /// Writes the edits' own fields: the `set` ones, then the `add` ones.
    pub fn write<S: Fields>(&self, sink: &mut S) {
        for (name, value) in self.set.iter().chain(&self.add) {
            sink.field(name, value);
        }
    }
}

/// Writes the fields of `edits`, if any (see [`HeaderEdits::write`]).
pub fn write<S: Fields>(edits: Option<&HeaderEdits>, sink: &mut S) {
    if let Some(edits) = edits {
        edits.write(sink);
    }
}

/// A name checked for `direction`, lowercased.
fn field_name(direction: Direction, name: &str) -> Result<Box<[u8]>, EditError> {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() || !lower.bytes().all(is_token) {
        return Err(EditError::Name(name.to_owned()));
    }
    if reserved(direction, &lower) {
        return Err(EditError::Reserved(lower));
    }
    Ok(lower.into_bytes().into())
}

/// Whether `lower` is a name edits may not touch on `direction`'s message.
fn reserved(direction: Direction, lower: &str) -> bool {
    if matches!(lower, "trailer" | "keep-alive") || lower.starts_with("proxy-") {
        return true;
    }
    let kind = fields::classify(lower.as_bytes());
    if kind.is_hop_by_hop() || kind == Kind::ContentLength {
        return true;
    }
    direction == Direction::Request && !matches!(kind, Kind::Other | Kind::Cookie)
}

/// A value checked: visible ASCII, spaces and tabs inside, obs-text; trimmed.
fn field_value(name: &str, value: &str) -> Result<Box<[u8]>, EditError> {
    let value = value.trim_matches([' ', '\t']);
    let ok = value
        .bytes()
        .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic() || b >= 0x80);
    if !ok {
        return Err(EditError::Value(name.to_owned()));
    }
    Ok(value.as_bytes().into())
}

/// An RFC 9110 token character.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn set_and_remove_drop_fields_of_any_case_and_set_then_add_are_written() {
        let e = HeaderEdits::new(
            Direction::Request,
            &pairs(&[("X-A", "1")]),
            &pairs(&[("x-b", "2")]),
            &["X-Gone".to_owned()],
        )
        .unwrap();
        assert!(e.drops(b"x-a") && e.drops(b"X-GONE") && !e.drops(b"x-b"));
        let mut out = Vec::new();
        e.write(&mut out);
        assert_eq!(out, b"x-a: 1\r\nx-b: 2\r\n");
    }

    #[test]
    fn framing_connection_and_proxy_owned_names_are_refused() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "connection",
            "upgrade",
            "te",
            "keep-alive",
            "trailer",
            "proxy-authorization",
        ] {
            for d in [Direction::Request, Direction::Response] {
                let err = HeaderEdits::new(d, &[], &[], &[name.to_owned()]).unwrap_err();
                assert!(matches!(err, EditError::Reserved(_)), "{name}");
            }
        }
        for name in ["host", "x-forwarded-for", "forwarded", "x-request-id"] {
            let set = pairs(&[(name, "v")]);
            assert!(HeaderEdits::new(Direction::Request, &set, &[], &[]).is_err());
            assert!(HeaderEdits::new(Direction::Response, &set, &[], &[]).is_ok());
        }
    }

    #[test]
    fn values_with_cr_lf_or_nul_and_bad_names_are_refused() {
        for value in ["a\r\nx-evil: 1", "a\nb", "a\0"] {
            let add = pairs(&[("x-a", value)]);
            let err = HeaderEdits::new(Direction::Response, &[], &add, &[]).unwrap_err();
            assert_eq!(err, EditError::Value("x-a".into()));
        }
        let bad = pairs(&[("x a", "1")]);
        assert!(matches!(
            HeaderEdits::new(Direction::Request, &bad, &[], &[]),
            Err(EditError::Name(_))
        ));
    }
}

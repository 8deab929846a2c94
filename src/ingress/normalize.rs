//! Request-target normalisation: the one form of a request's path that routing, the
//! `allow_sources` checks and the backend all see.
//!
//! Why: a route limited by `allow_sources` to `/admin` must not be reachable as `/%61dmin`,
//! `//admin`, `/x/../admin` or `/./admin`. Many backends decode and resolve such paths before
//! they route, so if we matched on the raw text and forwarded it, the check would be made on
//! one path and the request served on another. Hence every HTTP path (the HTTP/1.1 fast path,
//! hyper, HTTP/2) calls [`normalize_target`] before routing, and forwards its output, not the
//! bytes the client sent.
//!
//! The rules follow Envoy's documented path normalisation (`normalize_path`, `merge_slashes`,
//! and `path_with_escaped_slashes_action` as `REJECT_REQUEST`, or `KEEP_UNCHANGED` with
//! [`NormalizeOptions::keep_encoded_slashes`]), which in turn is RFC 3986 §6.2.2
//! (percent-encoding normalisation) and §5.2.4 (removing dot segments):
//!
//! 1. a `#`, a NUL (raw or `%00`), any byte outside printable ASCII, or a `%` not followed by
//!    two hex digits anywhere in the target, and a `\` or an encoded slash or backslash in the
//!    path, are refused ([`TargetError`]; the client gets a 400), since backends disagree on
//!    what they mean;
//! 2. in the path, encoded unreserved characters are decoded (`%61` is `a`, `%2E` is `.`) and
//!    the hex digits of the other encodings uppercased (`%3a` is `%3A`);
//! 3. repeated slashes are merged (`//a///b` is `/a/b`);
//! 4. dot segments are removed (`/a/./b/../c` is `/a/c`, `/../a` is `/a`), decoded dots
//!    included; a trailing slash stays.
//!
//! The query is checked by rule 1 but otherwise passed through untouched: its meaning belongs
//! to the application. Most targets need no change, so one pass over the bytes checks them
//! and returns them borrowed; only a target that changes is rebuilt, in one allocation.
//!
//! [`split_absolute`] handles absolute-form targets (`GET http://host/path`), whose rest then
//! goes through [`normalize_target`] like any origin-form target.

use std::borrow::Cow;

/// How a listener treats encoded slashes in paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// Keep `%2F` (and `%5C`) as they are instead of refusing the request: neither decoded nor
    /// treated as a segment separator. Off by default.
    pub keep_encoded_slashes: bool,
}

/// Why a request target was refused. Always the client's fault: it gets a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// A `#`: fragments are never sent in a request.
    #[error("fragment in request target")]
    Fragment,
    /// A NUL byte, raw or as `%00`, in the path or the query.
    #[error("nul in request target")]
    Nul,
    /// A byte outside printable ASCII (`0x21..=0x7E`), such as a space or a UTF-8 byte.
    #[error("byte {0:#04x} in request target is not printable ascii")]
    NotPrintable(u8),
    /// A `%` not followed by two hex digits.
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// A literal `\` in the path.
    #[error("backslash in path")]
    Backslash,
    /// `%2F` in the path, without [`NormalizeOptions::keep_encoded_slashes`].
    #[error("encoded slash in path")]
    EncodedSlash,
    /// `%5C` in the path, without [`NormalizeOptions::keep_encoded_slashes`].
    #[error("encoded backslash in path")]
    EncodedBackslash,
    /// An origin-form target that does not start with `/`.
    #[error("path does not start with /")]
    NotAbsolutePath,
    /// An absolute-form target whose scheme is neither `http` nor `https`.
    #[error("absolute-form target with a scheme other than http or https")]
    UnsupportedScheme,
    /// An absolute-form target with userinfo (`user@host`), which RFC 9110 §4.2.4 forbids.
    #[error("userinfo in absolute-form target")]
    Userinfo,
    /// An absolute-form target with an empty authority (`http:///x`).
    #[error("empty authority in absolute-form target")]
    EmptyAuthority,
    /// An absolute-form target that is malformed otherwise: no `://`, or a byte that cannot
    /// be in an authority.
    #[error("invalid absolute-form target")]
    InvalidAbsoluteForm,
}

/// Normalises an origin-form target (`/path` optionally followed by `?query`). Returns the
/// normalised path followed by the query exactly as sent. Borrowed when nothing changed (the
/// common case must not allocate). The asterisk form (`*`) and the absolute form are the
/// caller's to handle first (see [`split_absolute`]); here they are [`TargetError::NotAbsolutePath`].
pub fn normalize_target(
    target: &str,
    options: NormalizeOptions,
) -> Result<Cow<'_, str>, TargetError> {
    let bytes = target.as_bytes();
    // Where the path ends (the first `?`, or the end), whether it must change, and where the
    // current path segment starts, to spot `//`, `.` and `..` as the scan goes.
    let mut path_end = None;
    let mut changes = false;
    let mut segment = 0;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'%' => {
                let (Some(high), Some(low)) = (hex_at(bytes, i + 1), hex_at(bytes, i + 2)) else {
                    return Err(TargetError::InvalidPercentEncoding);
                };
                let value = (high << 4) | low;
                if value == 0 {
                    return Err(TargetError::Nul);
                }
                if path_end.is_none() {
                    changes |= match value {
                        b'/' | b'\\' if !options.keep_encoded_slashes => {
                            return Err(if value == b'/' {
                                TargetError::EncodedSlash
                            } else {
                                TargetError::EncodedBackslash
                            });
                        }
                        _ if is_unreserved(value) => true,
                        _ => bytes[i + 1..i + 3].iter().any(u8::is_ascii_lowercase),
                    };
                }
                i += 3;
                continue;
            }
            b'#' => return Err(TargetError::Fragment),
            0 => return Err(TargetError::Nul),
            b'/' | b'?' if path_end.is_none() => {
                // The segment before this `/` or `?`; the target's first `/` ends none.
                let before = &bytes[segment..i];
                changes |= (i > 0 && before.is_empty() && byte == b'/') || is_dots(before);
                if byte == b'?' {
                    path_end = Some(i);
                }
                segment = i + 1;
            }
            b'\\' if path_end.is_none() => return Err(TargetError::Backslash),
            0x21..=0x7E => {}
            _ => return Err(TargetError::NotPrintable(byte)),
        }
        i += 1;
    }
    if !target.starts_with('/') {
        return Err(TargetError::NotAbsolutePath);
    }
    let path_end = match path_end {
        Some(end) => end,
        None => {
            changes |= is_dots(&bytes[segment..]);
            bytes.len()
        }
    };
    if !changes {
        return Ok(Cow::Borrowed(target));
    }
    let (path, query) = target.split_at(path_end);
    let mut out = String::with_capacity(target.len());
    rebuild_path(path, &mut out);
    out.push_str(query);
    Ok(Cow::Owned(out))
}

/// Writes the normalised form of `path` (already checked: it starts with `/` and its
/// percent-encodings are valid) to `out`: each segment decoded as it is copied, then dropped
/// when empty or `.`, or dropping the one before it when `..`.
fn rebuild_path(path: &str, out: &mut String) {
    let mut ends_as_directory = false;
    for raw in path[1..].split('/') {
        let start = out.len();
        out.push('/');
        decode_segment(raw, out);
        let segment = &out.as_bytes()[start + 1..];
        ends_as_directory = segment.is_empty() || is_dots(segment);
        if ends_as_directory {
            if segment == b".." {
                out.truncate(start);
                // Segments hold no `/` (encoded slashes stay encoded), so this is the one
                // before; at the root there is none to drop.
                let parent = out.rfind('/').unwrap_or(0);
                out.truncate(parent);
            } else {
                out.truncate(start);
            }
        }
    }
    if ends_as_directory || out.is_empty() {
        out.push('/');
    }
}

/// Appends `raw` to `out`, decoding encoded unreserved characters and uppercasing the hex
/// digits of the other encodings.
fn decode_segment(raw: &str, out: &mut String) {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex_at(bytes, i + 1), hex_at(bytes, i + 2)) {
            (b'%', Some(high), Some(low)) => {
                let value = (high << 4) | low;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push(char::from(bytes[i + 1].to_ascii_uppercase()));
                    out.push(char::from(bytes[i + 2].to_ascii_uppercase()));
                }
                i += 3;
            }
            (byte, _, _) => {
                out.push(char::from(byte));
                i += 1;
            }
        }
    }
}

/// Splits an absolute-form target (`http://authority/path?query`, RFC 9112 §3.2.2) into its
/// authority and its origin-form rest, which is not normalised: the caller passes it to
/// [`normalize_target`]. The rest is borrowed unless the path is empty, when it is `/` followed
/// by the query (`http://a.test?x=1` gives `("a.test", "/?x=1")`). The scheme must be `http` or
/// `https` (any case); the authority must not be empty nor hold userinfo, and may be an IPv6
/// literal (`[::1]:80`). The authority is otherwise only checked for RFC 3986 characters: the
/// caller parses it as it parses a `Host` header.
pub fn split_absolute(target: &str) -> Result<(&str, Cow<'_, str>), TargetError> {
    let (scheme, rest) = target
        .split_once("://")
        .ok_or(TargetError::InvalidAbsoluteForm)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(TargetError::UnsupportedScheme);
    }
    let end = rest
        .bytes()
        .position(|b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(end);
    if authority.is_empty() {
        return Err(TargetError::EmptyAuthority);
    }
    for byte in authority.bytes() {
        match byte {
            b'@' => return Err(TargetError::Userinfo),
            b'!' | b'$'..=b'.' | b'0'..=b';' | b'=' | b'A'..=b'[' | b']' | b'_' => {}
            b'a'..=b'z' | b'~' => {}
            _ => return Err(TargetError::InvalidAbsoluteForm),
        }
    }
    let rest = if rest.starts_with('/') {
        Cow::Borrowed(rest)
    } else {
        Cow::Owned(format!("/{rest}"))
    };
    Ok((authority, rest))
}

/// The value of the hex digit at `bytes[i]`, if there is one.
fn hex_at(bytes: &[u8], i: usize) -> Option<u8> {
    let digit = *bytes.get(i)?;
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3 unreserved characters, which mean the same encoded or not.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Whether a segment is `.` or `..`.
fn is_dots(segment: &[u8]) -> bool {
    matches!(segment, b"." | b"..")
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;

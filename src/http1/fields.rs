//! Header fields the proxy acts on, recognised by name without building a `HeaderName`, and
//! the parsing of the values that decide framing (`Content-Length`, `Transfer-Encoding`,
//! `Connection`).

/// What a header field is to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Connection`.
    Connection,
    /// Hop-by-hop fields besides `Connection`, `TE`, `Transfer-Encoding` and `Upgrade`:
    /// `Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`, `Proxy-Authorization`, and
    /// `HTTP2-Settings` (which belongs to an `Upgrade: h2c`, never passed on).
    HopByHop,
    /// `TE`.
    Te,
    /// `Transfer-Encoding`.
    TransferEncoding,
    /// `Upgrade`.
    Upgrade,
    /// `Host`.
    Host,
    /// `Content-Length`.
    ContentLength,
    /// `Expect`.
    Expect,
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// `X-Forwarded-Proto`.
    XForwardedProto,
    /// `X-Forwarded-Host`.
    XForwardedHost,
    /// `X-Forwarded-Port`.
    XForwardedPort,
    /// `X-Request-Id`.
    XRequestId,
    /// `Forwarded` (RFC 7239).
    Forwarded,
    /// `Cookie`.
    Cookie,
    /// Anything else: passed on as it is.
    Other,
}

impl Kind {
    /// Whether the field describes one connection and never goes further (RFC 9110 §7.6.1).
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Kind::Connection | Kind::HopByHop | Kind::Te | Kind::TransferEncoding | Kind::Upgrade
        )
    }
}

/// Recognises a field name in any letter case. Runs for every field of every message, so
/// names are told apart by length and first letter before any is compared whole.
pub fn classify(name: &[u8]) -> Kind {
    let Some(&first) = name.first() else {
        return Kind::Other;
    };
    let is = |lower: &str| eq_lower(name, lower.as_bytes());
    match (name.len(), first | 0x20) {
        (2, b't') if is("te") => Kind::Te,
        (4, b'h') if is("host") => Kind::Host,
        (6, b'e') if is("expect") => Kind::Expect,
        (6, b'c') if is("cookie") => Kind::Cookie,
        (7, b'u') if is("upgrade") => Kind::Upgrade,
        (9, b'f') if is("forwarded") => Kind::Forwarded,
        (10, b'c') if is("connection") => Kind::Connection,
        (10, b'k') if is("keep-alive") => Kind::HopByHop,
        (12, b'x') if is("x-request-id") => Kind::XRequestId,
        (14, b'c') if is("content-length") => Kind::ContentLength,
        (14, b'h') if is("http2-settings") => Kind::HopByHop,
        (15, b'x') if is("x-forwarded-for") => Kind::XForwardedFor,
        (16, b'x') if is("x-forwarded-host") => Kind::XForwardedHost,
        (16, b'x') if is("x-forwarded-port") => Kind::XForwardedPort,
        (16, b'p') if is("proxy-connection") => Kind::HopByHop,
        (17, b'x') if is("x-forwarded-proto") => Kind::XForwardedProto,
        (17, b't') if is("transfer-encoding") => Kind::TransferEncoding,
        (18, b'p') if is("proxy-authenticate") => Kind::HopByHop,
        (19, b'p') if is("proxy-authorization") => Kind::HopByHop,
        _ => Kind::Other,
    }
}

/// Whether the field name `name` is `lower` (lowercase letters and `-`) in any letter case.
/// For such names setting the 0x20 bit lowercases a letter and keeps `-`, and no other token
/// byte (what `httparse` lets through in a name) becomes a letter or `-` that way; so eight
/// bytes at a time are compared with one OR.
fn eq_lower(name: &[u8], lower: &[u8]) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    let word = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_ne_bytes(w)
    };
    match name.len() {
        n if n != lower.len() => false,
        n if n >= 8 => {
            // Whole words, and a last one overlapping the one before.
            (0..n / 8).all(|i| word(name, i * 8) | CASE == word(lower, i * 8))
                && word(name, n - 8) | CASE == word(lower, n - 8)
        }
        _ => name.iter().zip(lower).all(|(a, b)| a | 0x20 == *b),
    }
}

/// Whether a field may pass in a trailer section (RFC 9110 §6.5.1): not one that frames or
/// routes a message, controls the request, authenticates, describes the content, or is hop
/// by hop, since a recipient that merged trailers into the head would act on it after the
/// checks the head went through. Those are dropped; anything else (checksums, gRPC status)
/// passes.
pub fn allowed_in_trailers(name: &[u8]) -> bool {
    const FORBIDDEN: &[&[u8]] = &[
        b"age",
        b"authorization",
        b"cache-control",
        b"content-encoding",
        b"content-range",
        b"content-type",
        b"date",
        b"expires",
        b"if-match",
        b"if-modified-since",
        b"if-none-match",
        b"if-range",
        b"if-unmodified-since",
        b"location",
        b"max-forwards",
        b"pragma",
        b"range",
        b"retry-after",
        b"set-cookie",
        b"trailer",
        b"vary",
        b"www-authenticate",
    ];
    match classify(name) {
        Kind::Other => !FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f)),
        _ => false,
    }
}

/// The comma-separated elements of a list-valued field, trimmed, empty ones skipped.
pub fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// What a message's `Connection` fields say.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `close`.
    pub close: bool,
    /// `keep-alive` (what an HTTP/1.0 peer needs to say to keep the connection).
    pub keep_alive: bool,
    /// `upgrade`.
    pub upgrade: bool,
    /// Other options: names of further hop-by-hop fields to remove.
    pub names_fields: bool,
}

impl ConnectionOptions {
    /// Adds what one `Connection` field value says.
    pub fn add(&mut self, value: &[u8]) {
        for option in list(value) {
            if option.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if option.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if option.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            } else {
                self.names_fields = true;
            }
        }
    }
}

/// Whether `name` is one of the options in the `Connection` values of `fields` (so a
/// hop-by-hop field to remove); `close` is an option, never a field name. Only called when
/// [`ConnectionOptions::names_fields`].
pub fn named_by_connection<'f>(
    name: &[u8],
    fields: impl Iterator<Item = (&'f [u8], &'f [u8])>,
) -> bool {
    !name.eq_ignore_ascii_case(b"close")
        && fields
            .filter(|(n, _)| classify(n) == Kind::Connection)
            .any(|(_, v)| list(v).any(|option| option.eq_ignore_ascii_case(name)))
}

/// A `Content-Length` value: digits only; a list of equal values counts as one (RFC 9110
/// §8.6). `None` for anything else.
pub fn content_length(value: &[u8]) -> Option<u64> {
    let mut found = None;
    for element in value.split(|&b| b == b',') {
        let element = element.trim_ascii();
        if element.is_empty() || element.len() > 19 || !element.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = element
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        match found {
            Some(m) if m != n => return None,
            _ => found = Some(n),
        }
    }
    found
}

/// The transfer codings a message's `Transfer-Encoding` fields name, gathered field by field.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Codings {
    /// Whether any `Transfer-Encoding` field was seen.
    pub present: bool,
    /// How many times `chunked` is named.
    pub chunked: u32,
    /// Whether a coding besides `chunked` is named.
    pub other: bool,
}

impl Codings {
    /// Adds the codings of one `Transfer-Encoding` value.
    pub fn add(&mut self, value: &[u8]) {
        self.present = true;
        for coding in list(value) {
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked += 1;
            } else {
                self.other = true;
            }
        }
    }

    /// Exactly one `chunked` and nothing else: the only coding a proxy can pass on as it came.
    pub fn is_chunked_only(&self) -> bool {
        self.chunked == 1 && !self.other
    }
}

/// Whether the last transfer coding of a `Transfer-Encoding` value is `chunked`.
pub fn ends_chunked(value: &[u8]) -> bool {
    list(value)
        .last()
        .is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_in_any_case() {
        for (name, kind) in [
            ("Host", Kind::Host),
            ("CONTENT-LENGTH", Kind::ContentLength),
            ("Transfer-Encoding", Kind::TransferEncoding),
            ("x-forwarded-FOR", Kind::XForwardedFor),
            ("Proxy-Authorization", Kind::HopByHop),
            ("Keep-Alive", Kind::HopByHop),
            ("te", Kind::Te),
            ("hosts", Kind::Other),
            ("x-forwarded-pro", Kind::Other),
            ("X-Forwarded-Port", Kind::XForwardedPort),
            ("x-forwarded-host", Kind::XForwardedHost),
            ("content-type", Kind::Other),
            ("", Kind::Other),
            ("Content-Lengtx", Kind::Other),
            ("Content_Length", Kind::Other),
            ("TRANSFER-ENCODING", Kind::TransferEncoding),
            ("tE", Kind::Te),
        ] {
            assert_eq!(classify(name.as_bytes()), kind, "{name}");
        }
        assert!(Kind::Upgrade.is_hop_by_hop() && !Kind::Host.is_hop_by_hop());
    }

    #[test]
    fn content_length_takes_digits_and_lists_of_one_value() {
        assert_eq!(content_length(b"0"), Some(0));
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b"42, 42"), Some(42));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"0x10",
            b"1 2",
            b"42, 43",
            b"4 2",
            b",",
            b"99999999999999999999",
        ] {
            assert_eq!(
                content_length(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn chunked_must_be_the_last_coding() {
        assert!(ends_chunked(b"chunked"));
        assert!(ends_chunked(b"gzip, Chunked"));
        assert!(!ends_chunked(b"chunked, gzip"));
        assert!(!ends_chunked(b"chunkedx"));
        assert!(!ends_chunked(b""));
    }

    #[test]
    fn connection_options_are_read_from_lists() {
        let mut c = ConnectionOptions::default();
        c.add(b"Keep-Alive, x-secret");
        c.add(b" Upgrade ");
        assert!(c.keep_alive && c.upgrade && c.names_fields && !c.close);
        let fields = [
            (&b"Connection"[..], &b"close, X-Secret"[..]),
            (b"x-secret", b"1"),
        ];
        assert!(named_by_connection(b"x-secret", fields.iter().copied()));
        assert!(!named_by_connection(b"x-other", fields.iter().copied()));
    }
}

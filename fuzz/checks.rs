//! What each fuzz target checks, one function per target, shared by the fuzz targets
//! (`fuzz_targets/*.rs`, through this crate's library) and by the corpus replay in the main
//! crate's test suite (`tests/fuzz_corpora.rs` includes this file with `#[path]`), so a corpus
//! file is held to the same invariants under `cargo test` as under libFuzzer.
//!
//! Every function takes the fuzzer's raw bytes and panics (an `assert!`) when an invariant
//! fails; returning means the input passed. Invariants are checked against a reading of the
//! input made here, independently of the code under test, wherever that is cheap.
#![allow(unreachable_pub)] // pub for the fuzz crate, a private module of the replay test

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use switchyard::config::Config;
use switchyard::http1::framing::{self, Decoder, Event, Framing, FramingError};
use switchyard::http1::head::{self, HeadError, MAX_FIELDS};
use switchyard::ingress::normalize::{self, NormalizeOptions};
use switchyard::ingress::{HostPattern, Hostname, MAX_HOST_LEN};
use switchyard::router::proxy_header;

/// Largest head the fuzzed parsers accept (the proxy's default is of this order).
pub const MAX_HEAD: usize = 64 * 1024;

/// `request_head`: [`head::request`] on arbitrary bytes.
pub fn request_head(data: &[u8]) {
    let mut fields = head::field_buf();
    let head = match head::request(data, &mut fields, MAX_HEAD) {
        Ok(Some(head)) => head,
        Ok(None) => {
            assert!(data.len() <= MAX_HEAD, "an incomplete head over the limit");
            return;
        }
        Err(e) => return error_is_sane(e),
    };
    assert!(head.len > 0 && head.len <= data.len() && head.len <= MAX_HEAD);
    assert!(
        data[..head.len].ends_with(b"\n"),
        "a head ends with its empty line"
    );
    assert!(head.fields.len() <= MAX_FIELDS);
    assert!(head.minor_version <= 1);
    assert_eq!(head.pairs().count(), head.fields.len());
    let _ = head.keep_alive();

    // Framing, read here from the fields by name.
    let te = values(head.fields, "transfer-encoding");
    let cl = values(head.fields, "content-length");
    let hosts = values(head.fields, "host");
    assert!(hosts.len() <= 1, "several Host fields accepted");
    assert_eq!(head.host, hosts.first().copied());
    assert!(
        te.is_empty() || cl.is_empty(),
        "both Content-Length and Transfer-Encoding accepted: {:?}",
        head.framing
    );
    if !te.is_empty() {
        assert_eq!(head.framing, Framing::Chunked);
        let last = te.last().and_then(|v| codings(v).last());
        assert!(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")));
        let all = || te.iter().flat_map(|v| codings(v));
        let chunked = all().filter(|c| c.eq_ignore_ascii_case(b"chunked")).count();
        assert_eq!(chunked, 1, "chunked named {chunked} times");
        assert_eq!(
            head.other_coding,
            all().any(|c| !c.eq_ignore_ascii_case(b"chunked"))
        );
    } else if let Some(first) = cl.first() {
        let n = one_length(first).expect("an invalid Content-Length accepted");
        assert!(
            cl.iter().all(|v| one_length(v) == Some(n)),
            "lengths differ"
        );
        assert_eq!(head.framing, Framing::Length(n));
    } else {
        assert_eq!(head.framing, Framing::Empty);
    }

    // The head alone parses alike, and read a byte short it is still incomplete: what the
    // proxy decides cannot depend on what follows the head or on how it arrives.
    let (len, framing, target) = (head.len, head.framing, head.target);
    let mut again = head::field_buf();
    let alone = head::request(&data[..len], &mut again, MAX_HEAD);
    let alone = alone
        .expect("the head alone is refused")
        .expect("the head alone is incomplete");
    assert_eq!(
        (alone.len, alone.framing, alone.target),
        (len, framing, target)
    );
    for short in [len - 1, len / 2] {
        let mut again = head::field_buf();
        let r = head::request(&data[..short], &mut again, MAX_HEAD);
        assert!(matches!(r, Ok(None)), "a prefix of {short} bytes: {r:?}");
    }
}

/// `response_head`: [`head::response`] on arbitrary bytes, answering a HEAD request or not.
pub fn response_head(data: &[u8]) {
    let mut fields = head::field_buf();
    let plain = head::response(data, &mut fields, MAX_HEAD, false);
    let mut fields = head::field_buf();
    let to_head = head::response(data, &mut fields, MAX_HEAD, true);
    let (plain, to_head) = match (plain, to_head) {
        (Ok(Some(a)), Ok(Some(b))) => (a, b),
        (Ok(None), Ok(None)) => return assert!(data.len() <= MAX_HEAD),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "the error depends on the request method");
            return error_is_sane(a);
        }
        (a, b) => panic!("the request method changes the outcome: {a:?} / {b:?}"),
    };
    assert_eq!((plain.len, plain.status), (to_head.len, to_head.status));
    assert!(plain.len > 0 && plain.len <= data.len() && plain.len <= MAX_HEAD);
    assert!(plain.status <= 999);
    assert!(plain.fields.len() <= MAX_FIELDS);
    assert_eq!(
        to_head.framing,
        Framing::Empty,
        "a HEAD response has no body"
    );
    assert_eq!(plain.pairs().count(), plain.fields.len());

    let te = values(plain.fields, "transfer-encoding");
    assert_eq!(plain.transfer_encoding, !te.is_empty());
    if !te.is_empty() {
        // Passed on as it came, so it must be `chunked`, once, and nothing else.
        let all: Vec<&[u8]> = te.iter().flat_map(|v| codings(v)).collect();
        assert!(
            all.len() == 1 && all[0].eq_ignore_ascii_case(b"chunked"),
            "response codings accepted: {all:?}"
        );
    }
    let bodiless = matches!(plain.status, 100..=199 | 204 | 304);
    let length = values(plain.fields, "content-length")
        .first()
        .map(|v| one_length(v).expect("an invalid Content-Length accepted"));
    let expected = match (bodiless, te.is_empty(), length) {
        (true, _, _) => Framing::Empty,
        (false, false, _) => Framing::Chunked,
        (false, true, Some(n)) => Framing::Length(n),
        (false, true, None) => Framing::Close,
    };
    assert_eq!(plain.framing, expected);
    if plain.framing == Framing::Close {
        assert!(
            !plain.keep_alive,
            "kept alive with a body that ends at close"
        );
    }

    let len = plain.len;
    let mut again = head::field_buf();
    let alone = head::response(&data[..len], &mut again, MAX_HEAD, false);
    let alone = alone
        .expect("the head alone is refused")
        .expect("the head alone is incomplete");
    assert_eq!((alone.len, alone.framing), (len, plain.framing));
    let mut again = head::field_buf();
    let short = head::response(&data[..len - 1], &mut again, MAX_HEAD, false);
    assert!(matches!(short, Ok(None)), "a byte short: {short:?}");
}

/// `chunked`: a chunked body [`Decoder`] fed the input in pieces. The first byte says how
/// many of the next bytes are piece sizes (each 1-256, used in turn); the rest is the body.
/// The body decoded in those pieces must decode exactly as when it arrives at once, and its
/// data, re-framed canonically, must decode to the same data again.
pub fn chunked(data: &[u8]) {
    let (sizes, body) = match data.split_first() {
        Some((&n, rest)) if usize::from(n) <= rest.len() => rest.split_at(usize::from(n)),
        _ => (&[][..], data),
    };
    let whole = decode(body, &[]);
    let pieces = decode(body, sizes);
    assert_eq!(whole, pieces, "the outcome depends on how the body arrives");
    if let Ok(decoded) = whole {
        let mut canonical = Vec::new();
        let mut at = 0;
        for &size in &decoded.chunks {
            framing::chunk_line(&mut canonical, size);
            let size = usize::try_from(size).expect("a chunk larger than the input");
            canonical.extend_from_slice(&decoded.data[at..at + size]);
            canonical.extend_from_slice(b"\r\n");
            at += size;
        }
        canonical.extend_from_slice(b"0\r\n");
        canonical.extend_from_slice(&body[decoded.trailers.clone()]);
        let again = decode(&canonical, &[]).expect("the canonical framing is refused");
        assert_eq!((again.data, again.chunks), (decoded.data, decoded.chunks));
        assert_eq!(again.rest, 0);
    }
}

/// A chunked body as [`chunked`] decoded it.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    /// The data bytes, in order.
    data: Vec<u8>,
    /// The size of each chunk.
    chunks: Vec<u64>,
    /// Where the trailer section is in the body.
    trailers: std::ops::Range<usize>,
    /// Bytes left after the body.
    rest: usize,
}

/// Decodes `body` delivered in pieces of `sizes` (cycled; all at once when empty), closing the
/// connection after the last byte if the body is not over by then.
fn decode(body: &[u8], sizes: &[u8]) -> Result<Decoded, FramingError> {
    let mut decoder = Decoder::new(Framing::Chunked);
    let mut out = Decoded {
        data: Vec::new(),
        chunks: Vec::new(),
        trailers: 0..0,
        rest: 0,
    };
    let (mut start, mut end) = (0, 0); // the decoder's unread input is body[start..end]
    let mut chunk_left = 0u64;
    let mut piece = sizes.iter().cycle().map(|&s| usize::from(s) + 1);
    loop {
        let input = &body[start..end];
        match decoder.next(input)? {
            Event::Data(n) => {
                assert!(
                    n > 0 && n <= input.len(),
                    "Data({n}) of {} bytes",
                    input.len()
                );
                assert!(n as u64 <= chunk_left, "Data({n}) past the chunk's end");
                // Use half of it when the piece sizes are odd, as a slow writer would.
                let used = if sizes.first().is_some_and(|s| s % 2 == 1) {
                    n.div_ceil(2)
                } else {
                    n
                };
                out.data.extend_from_slice(&input[..used]);
                decoder.consume(used);
                chunk_left -= used as u64;
                start += used;
            }
            Event::Chunk { line, size } => {
                assert_eq!(chunk_left, 0, "a chunk began inside another");
                assert!(size > 0 && line >= 3 && line <= input.len());
                assert!(input[..line].ends_with(b"\r\n"));
                assert!(decoder.is_chunked() && !decoder.is_done());
                out.chunks.push(size);
                chunk_left = size;
                start += line;
            }
            Event::ChunkEnd => {
                assert_eq!(chunk_left, 0, "a chunk ended early");
                assert!(input.starts_with(b"\r\n"));
                start += 2;
            }
            Event::LastChunk { line } => {
                assert_eq!(chunk_left, 0);
                assert!(line >= 3 && line <= input.len() && input[0] == b'0');
                assert!(input[..line].ends_with(b"\r\n"));
                start += line;
            }
            Event::End { trailers } => {
                assert_eq!(chunk_left, 0, "the body ended inside a chunk");
                assert!(trailers >= 1 && trailers <= input.len());
                assert!(input[..trailers].ends_with(b"\n"));
                let mut fields = 0;
                framing::trailer_fields(&input[..trailers], |_, _| fields += 1);
                assert!(fields <= 32);
                out.trailers = start..start + trailers;
                start += trailers;
                // Once done, it stays done.
                assert!(decoder.is_done() && !decoder.is_chunked());
                assert_eq!(decoder.remaining(), Some(0));
                assert_eq!(decoder.next(&body[start..]), Ok(Event::End { trailers: 0 }));
                assert_eq!(decoder.eof(), Ok(()));
                assert!(decoder.is_done());
                out.rest = body.len() - start;
                break;
            }
            Event::NeedMore if end == body.len() => {
                assert!(!decoder.is_done());
                assert_eq!(decoder.eof(), Err(FramingError::Truncated));
                return Err(FramingError::Truncated);
            }
            Event::NeedMore => {
                end = match piece.next() {
                    Some(size) => (end + size).min(body.len()),
                    None => body.len(),
                };
            }
        }
    }
    assert!(out.data.len() <= body.len(), "more data than input");
    Ok(out)
}

/// `proxy_header`: [`proxy_header::read`] over the bytes in memory, as a connection would
/// deliver them.
pub fn proxy_header(data: &[u8]) {
    let (result, used) = read_proxy_header(data);
    let Ok(client) = result else {
        return;
    };
    // Read exactly, never more: the bytes after the header belong to the next layer.
    if data.starts_with(b"PROXY ") {
        assert!(
            used <= 107 && data[..used].ends_with(b"\r\n"),
            "v1 of {used} bytes"
        );
    } else {
        assert!(
            data.starts_with(b"\r\n\r\n\0\r\nQUIT\n"),
            "v2 without its signature"
        );
        let announced = usize::from(u16::from_be_bytes([data[14], data[15]]));
        assert_eq!(used, 16 + announced);
        assert!(used <= 4096);
    }
    let (alone, alone_used) = read_proxy_header(&data[..used]);
    assert_eq!((alone.ok(), alone_used), (Some(client), used));
    // What our own upstream side would send for this client reads back as this client.
    if let Some(client) = client {
        let canonical = SocketAddr::new(client.ip().to_canonical(), client.port());
        let local = SocketAddr::from(([192, 0, 2, 1], 443));
        let ours = switchyard::upstream::proxy_v2_header(canonical, local)
            .expect("the client address cannot be sent on");
        let (back, back_used) = read_proxy_header(&ours);
        assert_eq!((back.ok(), back_used), (Some(Some(canonical)), ours.len()));
    }
}

/// Reads a PROXY header from `data`: the outcome, and how many bytes were taken.
fn read_proxy_header(
    data: &[u8],
) -> (
    Result<Option<SocketAddr>, proxy_header::ProxyHeaderError>,
    usize,
) {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    });
    let mut rest = data;
    let result = runtime.block_on(proxy_header::read(&mut rest, Duration::from_secs(10)));
    if let Err(e) = &result {
        assert!(!e.to_string().is_empty());
        assert!(
            !matches!(e, proxy_header::ProxyHeaderError::Timeout(_)),
            "a reader in memory timed out"
        );
    }
    (result, data.len() - rest.len())
}

/// `host`: [`Hostname`] and [`HostPattern`] on arbitrary text. The input is split at its
/// first newline into a pattern and a host; each half is also tried as the other.
pub fn host(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('\n').unwrap_or((text, text));
    for (pattern, host) in [(a, b), (b, a)] {
        let parsed = hostname(host);
        check_pattern(pattern, parsed.as_ref());
    }
}

/// Checks both ways into a [`Hostname`]; returns what `from_authority` made of `text`.
fn hostname(text: &str) -> Option<Hostname> {
    let strict = Hostname::parse(text);
    match &strict {
        Ok(h) => hostname_is_normal(h),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let lenient = Hostname::from_authority(text);
    if let Some(h) = &lenient {
        hostname_is_normal(h);
        // Letter case never matters.
        let upper = text.to_ascii_uppercase();
        assert_eq!(Hostname::from_authority(&upper).as_ref(), Some(h));
    }
    // Without a port or brackets, the two ways in agree on what they both accept.
    if !text.contains([':', '[']) {
        if let (Ok(s), Some(l)) = (&strict, &lenient) {
            assert_eq!(s, l);
        }
        if let Some(l) = &lenient {
            assert_eq!(
                strict.as_ref().ok(),
                Some(l),
                "lenient but not strict: {text:?}"
            );
        }
    }
    lenient
}

/// A hostname is stored normalised and reads back as itself.
fn hostname_is_normal(h: &Hostname) {
    let s = h.as_str();
    assert!(!s.is_empty() && !s.ends_with('.'), "{s:?}");
    assert!(!s.bytes().any(|b| b.is_ascii_uppercase()), "{s:?}");
    assert_eq!(h.to_string(), s);
    assert_eq!(
        Hostname::parse(s).as_ref(),
        Ok(h),
        "{s:?} does not parse back"
    );
    let authority = if h.is_ip() && s.contains(':') {
        format!("[{s}]:443")
    } else {
        format!("{s}:443")
    };
    assert_eq!(Hostname::from_authority(&authority).as_ref(), Some(h));
    if !h.is_ip() {
        assert!(s.len() <= MAX_HOST_LEN);
    }
    match h.parent() {
        Some(parent) => {
            assert!(!h.is_ip());
            let label = &s[..s.len() - parent.len() - 1];
            assert!(s.ends_with(&format!(".{parent}")) && !label.contains('.'));
        }
        None => assert!(h.is_ip() || !s.contains('.')),
    }
}

/// Checks a [`HostPattern`] parsed from `text`, and its verdict on `host`.
fn check_pattern(text: &str, host: Option<&Hostname>) {
    let pattern = match HostPattern::parse(text) {
        Ok(p) => p,
        Err(e) => return assert!(!e.to_string().is_empty()),
    };
    let shown = pattern.to_string();
    assert_eq!(
        HostPattern::parse(&shown).as_ref(),
        Ok(&pattern),
        "{shown:?}"
    );
    match &pattern {
        HostPattern::Exact(name) => assert!(pattern.matches(name)),
        HostPattern::Wildcard(suffix) => {
            assert!(!suffix.is_ip());
            let one_more = Hostname::from_authority(&format!("x.{suffix}"))
                .expect("one label more than a wildcard's suffix is no host");
            assert!(pattern.matches(&one_more));
            assert!(
                !pattern.matches(suffix),
                "a wildcard matches its own suffix"
            );
        }
    }
    if let Some(host) = host {
        let expected = match &pattern {
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => host
                .as_str()
                .strip_suffix(suffix.as_str())
                .and_then(|label| label.strip_suffix('.'))
                .is_some_and(|label| !host.is_ip() && !label.is_empty() && !label.contains('.')),
        };
        assert_eq!(pattern.matches(host), expected, "{pattern} on {host}");
    }
}

/// `path`: [`normalize::normalize_target`] (with and without `keep_encoded_slashes`) and
/// [`normalize::split_absolute`] on arbitrary text, the normalised path compared with a plain
/// reading of the rules (decode, split on `/`, resolve `.` and `..` with a stack).
pub fn path(data: &[u8]) {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let strict = normalized(target, false);
    let kept = normalized(target, true);
    // Keeping encoded slashes only lifts a refusal.
    if let Some(strict) = strict {
        assert_eq!(
            kept,
            Some(strict),
            "keep_encoded_slashes changes an accepted target"
        );
    }
    if let Ok((authority, rest)) = normalize::split_absolute(target) {
        let (scheme, after) = target.split_once("://").expect("absolute form without ://");
        assert!(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"));
        assert!(!authority.is_empty() && !authority.contains(['@', '/', '?', '#']));
        let tail = after
            .strip_prefix(authority)
            .expect("the authority is not what follows ://");
        match &rest {
            Cow::Borrowed(rest) => assert_eq!(*rest, tail),
            Cow::Owned(rest) => assert_eq!(rest.strip_prefix('/'), Some(tail)),
        }
        assert!(rest.starts_with('/'));
        let _ = Hostname::from_authority(authority);
        normalized(&rest, false);
        normalized(&rest, true);
    }
}

/// Normalises `target`, checks the outcome, and returns the normalised target if accepted.
fn normalized(target: &str, keep_encoded_slashes: bool) -> Option<String> {
    let options = NormalizeOptions {
        keep_encoded_slashes,
    };
    let expected = reference_normalize(target, keep_encoded_slashes);
    let out = match normalize::normalize_target(target, options) {
        Ok(out) => out,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert_eq!(expected, None, "refused ({e}) but valid");
            return None;
        }
    };
    assert_eq!(
        Some(&*out),
        expected.as_deref(),
        "not the reference normalisation"
    );
    if let Cow::Borrowed(same) = out {
        assert_eq!(same, target);
    }
    let (path, query) = out.split_at(out.find('?').unwrap_or(out.len()));
    assert!(path.starts_with('/'), "{out:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!path.contains(bad), "{bad} in {out:?}");
    }
    assert!(!path.ends_with("/.") && !path.ends_with("/.."), "{out:?}");
    assert!(
        !path.contains(['\\', '#']) && !path.contains("%00"),
        "{out:?}"
    );
    if let Some(at) = target.find('?') {
        assert_eq!(query, &target[at..], "the query changed");
    }
    // A fixed point, returned borrowed.
    let again = normalize::normalize_target(&out, options).expect("the output is refused");
    assert!(
        matches!(again, Cow::Borrowed(s) if s == out),
        "not a fixed point: {out:?}"
    );
    Some(out.into_owned())
}

/// The normalisation rules read plainly: the normalised target, or `None` when refused.
fn reference_normalize(target: &str, keep_encoded_slashes: bool) -> Option<String> {
    let bytes = target.as_bytes();
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let mut in_path = true;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'#' | 0 => return None,
            b'?' => in_path = false,
            b'\\' if in_path => return None,
            b'%' => {
                let value = hex(bytes.get(i + 1))? * 16 + hex(bytes.get(i + 2))?;
                let slash = value == u32::from(b'/') || value == u32::from(b'\\');
                if value == 0 || (in_path && slash && !keep_encoded_slashes) {
                    return None;
                }
            }
            0x21..=0x7E => {}
            _ => return None,
        }
    }
    let (path, query) = target.split_at(target.find('?').unwrap_or(target.len()));
    let path = path.strip_prefix('/')?;
    let parts: Vec<&str> = path.split('/').collect();
    let mut segments: Vec<String> = Vec::new();
    let mut directory = false;
    for (i, raw) in parts.iter().enumerate() {
        let segment = decode_unreserved(raw);
        let last = i + 1 == parts.len();
        match segment.as_str() {
            "" | "." => directory = last,
            ".." => {
                segments.pop();
                directory = last;
            }
            _ => {
                segments.push(segment);
                directory = false;
            }
        }
    }
    let mut out = format!("/{}", segments.join("/"));
    if directory && !segments.is_empty() {
        out.push('/');
    }
    Some(out + query)
}

/// Decodes `%XX` of unreserved characters, uppercases the hex digits of the others.
fn decode_unreserved(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = &rest[at + 1..at + 3];
        let value = u8::from_str_radix(code, 16).expect("checked hex");
        if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(value));
        } else {
            out.push('%');
            out.push_str(&code.to_ascii_uppercase());
        }
        rest = &rest[at + 3..];
    }
    out + rest
}

/// `config`: [`Config::parse`] and [`Config::parse_for_kubernetes`] on arbitrary UTF-8.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = Config::parse(text, "fuzz.toml");
    let kube = Config::parse_for_kubernetes(text, "fuzz.toml");
    // Kubernetes mode only lifts a requirement (certificates may come from Secrets).
    if plain.is_ok() {
        assert!(
            kube.is_ok(),
            "refused in Kubernetes mode only: {:?}",
            kube.err()
        );
    }
    for e in [plain.err(), kube.err()].into_iter().flatten() {
        // The loader has no cap on its messages; they echo the input, so they may grow with
        // it, but only in proportion.
        let message = e.to_string();
        assert!(message.starts_with("fuzz.toml: "), "{message}");
        assert!(
            message.len() <= 4096 + 16 * text.len(),
            "a {}-byte message for {} bytes of input",
            message.len(),
            text.len()
        );
    }
}

/// Error values render and map to a status without panicking.
fn error_is_sane(e: HeadError) {
    assert!(!e.to_string().is_empty());
    assert!(e.status().is_client_error());
}

/// The values of the fields named `name` (in any letter case), in order.
fn values<'b>(fields: &[httparse::Header<'b>], name: &str) -> Vec<&'b [u8]> {
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name))
        .map(|f| f.value)
        .collect()
}

/// The transfer codings of a `Transfer-Encoding` value, trimmed, empty ones skipped.
fn codings(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|c| !c.is_empty())
}

/// A `Content-Length` value: one number, or a list of equal numbers.
fn one_length(value: &[u8]) -> Option<u64> {
    let mut found = None;
    for element in value.split(|&b| b == b',') {
        let element = std::str::from_utf8(element.trim_ascii()).ok()?;
        if !element.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = element.parse().ok()?;
        if found.is_some_and(|m| m != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

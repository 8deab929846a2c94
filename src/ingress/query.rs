//! Query parameters as route conditions see them, read from the raw query string without
//! allocating.
//!
//! The rules (documented in `config/README.md`): the query is split at `&` into pairs and each
//! pair at its first `=` (no `=`: the value is empty); names and values are compared
//! percent-decoded, with `+` as a space, as HTML forms, `URLSearchParams` and Go's
//! `url.ParseQuery` decode them; names are case-sensitive; when a parameter is repeated only
//! its first occurrence counts, as the Gateway API recommends.
//!
//! Why by iterator: names and exact values are compared byte by byte as they are decoded, so
//! the common case costs one pass and no buffer. Only a regex over a value that actually has
//! escapes needs the decoded bytes in one piece: they go to a stack buffer, and only a decoded
//! value longer than that buffer (rare, and the client's choice) takes a heap allocation.

use super::matches::ValueMatch;

/// Decoded values up to this many bytes are matched from the stack.
const STACK_VALUE: usize = 256;

/// The raw value of the first parameter of `query` whose decoded name is `name`.
pub(super) fn first<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(raw, _)| decoded(raw.as_bytes()).eq(name.bytes()))
        .map(|(_, value)| value)
}

/// Whether the raw (still encoded) `value` matches once decoded.
pub(super) fn value_matches(value: &str, expected: &ValueMatch) -> bool {
    let raw = value.as_bytes();
    if let ValueMatch::Exact(want) = expected {
        return decoded(raw).eq(want.bytes());
    }
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return expected.matches(raw);
    }
    let mut stack = [0u8; STACK_VALUE];
    let mut len = 0;
    for b in decoded(raw) {
        if len == STACK_VALUE {
            let heap: Vec<u8> = decoded(raw).collect();
            return expected.matches(&heap);
        }
        stack[len] = b;
        len += 1;
    }
    expected.matches(&stack[..len])
}

/// The bytes of `raw` percent-decoded, `+` as a space; a `%` without two hex digits stays.
fn decoded(raw: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *raw.get(i)?;
        i += 1;
        Some(match b {
            b'+' => b' ',
            b'%' => match (raw.get(i).and_then(hex), raw.get(i + 1).and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    hi << 4 | lo
                }
                _ => b'%',
            },
            b => b,
        })
    })
}

fn hex(b: &u8) -> Option<u8> {
    char::from(*b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(v: &str) -> ValueMatch {
        ValueMatch::Exact(v.into())
    }

    #[test]
    fn names_and_values_are_percent_decoded_with_plus_as_space() {
        assert_eq!(first(Some("a=1&b%20c=x+y"), "b c"), Some("x+y"));
        assert!(value_matches("x+y%21", &exact("x y!")));
        assert!(!value_matches("x+y", &exact("x+y")));
        assert!(value_matches("%2", &exact("%2")));
    }

    #[test]
    fn the_first_occurrence_counts() {
        assert_eq!(first(Some("v=1&v=2"), "v"), Some("1"));
        assert_eq!(first(Some("flag&v=2"), "flag"), Some(""));
        assert_eq!(first(Some("V=1"), "v"), None);
        assert_eq!(first(None, "v"), None);
    }

    #[test]
    fn regexes_see_decoded_values_even_long_ones() {
        let re = ValueMatch::regex("[a-z ]+").expect("valid");
        assert!(value_matches("ab+cd", &re));
        assert!(value_matches("abcd", &re));
        assert!(!value_matches("ab%2Bcd", &re));
        let long = "a+".repeat(STACK_VALUE);
        assert!(value_matches(&long, &re));
        assert!(!value_matches(&format!("{long}1"), &re));
    }
}

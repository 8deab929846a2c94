use super::*;
use proptest::prelude::*;

const KEEP: NormalizeOptions = NormalizeOptions {
    keep_encoded_slashes: true,
};

fn normal(target: &str) -> String {
    normalize_target(target, NormalizeOptions::default())
        .unwrap()
        .into_owned()
}

fn refused(target: &str) -> TargetError {
    normalize_target(target, NormalizeOptions::default()).unwrap_err()
}

fn split(target: &str) -> (&str, String) {
    let (authority, rest) = split_absolute(target).unwrap();
    (authority, rest.into_owned())
}

#[test]
fn common_targets_are_returned_borrowed() {
    for target in [
        "/",
        "/index.html?x=1",
        "/api/v1/users",
        "/a/",
        "/a/...",
        "/.well-known/x",
        "/%3A%C3%A9?q=%2f&r=\\",
        "/?",
        "/a?b//c/../d",
    ] {
        let normalised = normalize_target(target, NormalizeOptions::default()).unwrap();
        assert!(matches!(normalised, Cow::Borrowed(_)), "{target}");
        assert_eq!(normalised, target);
    }
    let kept = normalize_target("/a%2Fb%5Cc", KEEP).unwrap();
    assert!(matches!(kept, Cow::Borrowed("/a%2Fb%5Cc")));
}

#[test]
fn the_attack_strings_reach_the_path_they_mean_or_are_refused() {
    assert_eq!(normal("/%61dmin"), "/admin");
    assert_eq!(normal("//admin"), "/admin");
    assert_eq!(normal("/x/../admin"), "/admin");
    assert_eq!(normal("/./admin"), "/admin");
    assert_eq!(normal("/%2e%2e/admin"), "/admin");
    assert_eq!(refused("/admin%2F.."), TargetError::EncodedSlash);
    assert_eq!(refused("/a%5c..%5cadmin"), TargetError::EncodedBackslash);
    assert_eq!(refused("/admin#x"), TargetError::Fragment);
    assert_eq!(refused("/%00"), TargetError::Nul);
    assert_eq!(refused("/a\\b"), TargetError::Backslash);
}

#[test]
fn fragments_nuls_and_bad_percent_encodings_are_refused_in_path_and_query() {
    assert_eq!(refused("/a?b#c"), TargetError::Fragment);
    assert_eq!(refused("/#"), TargetError::Fragment);
    assert_eq!(refused("/a\0"), TargetError::Nul);
    assert_eq!(refused("/a?b\0"), TargetError::Nul);
    assert_eq!(refused("/a?b=%00"), TargetError::Nul);
    for bad in ["/%", "/%4", "/%4g", "/%g4", "/a?%", "/a?b=%zz", "/%%41"] {
        assert_eq!(refused(bad), TargetError::InvalidPercentEncoding, "{bad}");
    }
}

#[test]
fn bytes_outside_printable_ascii_are_refused() {
    assert_eq!(refused("/a b"), TargetError::NotPrintable(b' '));
    assert_eq!(refused("/a?b c"), TargetError::NotPrintable(b' '));
    assert_eq!(refused("/a\tb"), TargetError::NotPrintable(b'\t'));
    assert_eq!(refused("/\x7f"), TargetError::NotPrintable(0x7f));
    assert_eq!(refused("/é"), TargetError::NotPrintable(0xc3));
    assert_eq!(
        refused("/a b").to_string(),
        "byte 0x20 in request target is not printable ascii"
    );
}

#[test]
fn a_target_must_start_with_a_slash_after_the_byte_checks() {
    for target in ["", "a", "*", "a/b", "?x", "http://a.test/"] {
        assert_eq!(refused(target), TargetError::NotAbsolutePath, "{target:?}");
    }
    // Rule 1 comes first.
    assert_eq!(refused("a#"), TargetError::Fragment);
    assert_eq!(refused("a b"), TargetError::NotPrintable(b' '));
}

#[test]
fn the_query_is_copied_through_unchanged() {
    assert_eq!(normal("/a/../b?x=/../%2F"), "/b?x=/../%2F");
    assert_eq!(
        normal("/%61?%61=%2f&b=\\&c=%5c//"),
        "/a?%61=%2f&b=\\&c=%5c//"
    );
    assert_eq!(normal("//?"), "/?");
    assert_eq!(normal("/a/.?"), "/a/?");
    assert_eq!(normal("/a/..?x"), "/?x");
}

#[test]
fn encoded_slashes_are_refused_by_default() {
    assert_eq!(refused("/a%2Fb"), TargetError::EncodedSlash);
    assert_eq!(refused("/a%2fb"), TargetError::EncodedSlash);
    assert_eq!(refused("/a%5Cb"), TargetError::EncodedBackslash);
    assert_eq!(refused("/a%5cb"), TargetError::EncodedBackslash);
}

#[test]
fn kept_encoded_slashes_are_uppercased_and_separate_no_segments() {
    let keep = |target| normalize_target(target, KEEP).unwrap().into_owned();
    assert_eq!(keep("/a%2fb%5cc"), "/a%2Fb%5Cc");
    assert_eq!(keep("/admin%2F.."), "/admin%2F..");
    assert_eq!(keep("/a/b%2F../c"), "/a/b%2F../c");
    assert_eq!(keep("/a/b%2F/../c"), "/a/c");
    assert_eq!(keep("/%2F/../x"), "/x");
    // A literal backslash is refused all the same.
    assert_eq!(
        normalize_target("/a\\b", KEEP).unwrap_err(),
        TargetError::Backslash
    );
}

#[test]
fn encoded_unreserved_characters_are_decoded() {
    assert_eq!(normal("/%61%62%63"), "/abc");
    assert_eq!(normal("/%41%5A%30%39"), "/AZ09");
    assert_eq!(normal("/%2D%2e%5F%7e"), "/-._~");
    assert_eq!(normal("/a%2Eb"), "/a.b");
}

#[test]
fn other_percent_encodings_are_kept_with_uppercase_hex() {
    assert_eq!(normal("/%3a"), "/%3A");
    assert_eq!(normal("/%c3%a9"), "/%C3%A9");
    assert_eq!(normal("/%20%25%2b"), "/%20%25%2B");
    // A decoded `%25` is not decoded again.
    assert_eq!(normal("/%2561"), "/%2561");
}

#[test]
fn repeated_slashes_are_merged() {
    assert_eq!(normal("//a///b"), "/a/b");
    assert_eq!(normal("//"), "/");
    assert_eq!(normal("/a//"), "/a/");
    assert_eq!(normal("/a//../b"), "/b");
}

#[test]
fn dot_segments_are_removed_as_rfc_3986_says() {
    assert_eq!(normal("/a/./b"), "/a/b");
    assert_eq!(normal("/a/b/../c"), "/a/c");
    assert_eq!(normal("/../a"), "/a");
    assert_eq!(normal("/../../a/../../b"), "/b");
    assert_eq!(normal("/a/.."), "/");
    assert_eq!(normal("/a/b/.."), "/a/");
    assert_eq!(normal("/a/."), "/a/");
    assert_eq!(normal("/a/../"), "/");
    assert_eq!(normal("/."), "/");
    assert_eq!(normal("/.."), "/");
    // RFC 3986 §5.4.1's normal examples, resolved from the root.
    assert_eq!(normal("/b/c/./../../g"), "/g");
    assert_eq!(normal("/b/c/../../../g"), "/g");
    assert_eq!(normal("/b/c/g/.."), "/b/c/");
}

#[test]
fn decoded_dots_count_as_dots() {
    assert_eq!(normal("/a/.%2E/b"), "/b");
    assert_eq!(normal("/a/%2e/b"), "/a/b");
    assert_eq!(normal("/a/%2E%2e"), "/");
}

#[test]
fn segments_that_only_look_like_dots_are_ordinary() {
    for target in ["/...", "/.a", "/a.", "/..a/b", "/a/.../b", "/.%3A"] {
        assert_eq!(normal(target), target);
    }
    assert_eq!(normal("/%2e%2e%2e"), "/...");
}

#[test]
fn a_trailing_slash_stays() {
    assert_eq!(normal("/a/"), "/a/");
    assert_eq!(normal("/%61/"), "/a/");
    assert_eq!(normal("/a/b/../"), "/a/");
}

#[test]
fn absolute_form_is_split_into_authority_and_rest() {
    assert_eq!(
        split("http://a.test:8080/x/../y?q"),
        ("a.test:8080", "/x/../y?q".into())
    );
    assert_eq!(split("HTTPS://a.test/"), ("a.test", "/".into()));
    assert_eq!(split("hTtP://a.test"), ("a.test", "/".into()));
    assert_eq!(split("http://a.test?x=1"), ("a.test", "/?x=1".into()));
    assert_eq!(split("http://[::1]:80/p"), ("[::1]:80", "/p".into()));
    assert_eq!(split("http://[2001:db8::1]"), ("[2001:db8::1]", "/".into()));
    assert!(matches!(
        split_absolute("http://a.test/x"),
        Ok(("a.test", Cow::Borrowed("/x")))
    ));
}

#[test]
fn bad_absolute_forms_are_refused() {
    let error = |target| split_absolute(target).unwrap_err();
    assert_eq!(error("ftp://a.test/"), TargetError::UnsupportedScheme);
    assert_eq!(error("httpx://a.test/"), TargetError::UnsupportedScheme);
    assert_eq!(error("://a.test/"), TargetError::UnsupportedScheme);
    assert_eq!(error("http://user@a.test/"), TargetError::Userinfo);
    assert_eq!(error("http://user:pw@a.test"), TargetError::Userinfo);
    assert_eq!(error("http:///x"), TargetError::EmptyAuthority);
    assert_eq!(error("http://?x"), TargetError::EmptyAuthority);
    assert_eq!(error("http:/a.test/"), TargetError::InvalidAbsoluteForm);
    assert_eq!(error("a.test/"), TargetError::InvalidAbsoluteForm);
    assert_eq!(error("http://a test/"), TargetError::InvalidAbsoluteForm);
    assert_eq!(error("http://a\\b/"), TargetError::InvalidAbsoluteForm);
}

/// The path part of a normalised target, checked for what normalisation removes.
fn assert_normal_path(output: &str) -> Result<(), TestCaseError> {
    let path = output.split('?').next().unwrap_or_default();
    prop_assert!(path.starts_with('/'));
    for sequence in ["//", "/./", "/../"] {
        prop_assert!(!path.contains(sequence), "{output:?} holds {sequence:?}");
    }
    prop_assert!(
        !path.ends_with("/.") && !path.ends_with("/.."),
        "{output:?}"
    );
    Ok(())
}

/// Targets built from the pieces normalisation acts on, so that many change; the pieces that
/// make a target refused come seldom, so that most are valid.
fn targets() -> impl Strategy<Value = String> {
    let valid = prop::sample::select(vec![
        "/", "/", "/", ".", "..", "a", "b.", "%2e", "%2E", "%2f", "%2F", "%5c", "%5C", "%61",
        "%3a", "%25", "?",
    ]);
    let refused = prop::sample::select(vec!["\\", "#", "%", "%0", "%00", " "]);
    let piece = prop_oneof![30 => valid, 1 => refused];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| format!("/{}", pieces.concat()))
}

/// Normalises `target`; when that succeeds, checks the output is normal and a fixed point.
fn check_output(target: &str, keep: bool) -> Result<(), TestCaseError> {
    let options = NormalizeOptions {
        keep_encoded_slashes: keep,
    };
    let Ok(output) = normalize_target(target, options) else {
        return Ok(());
    };
    prop_assert!(output.len() <= target.len());
    assert_normal_path(&output)?;
    if !keep {
        prop_assert!(!output.split('?').next().unwrap_or_default().contains("%2F"));
    }
    let again = normalize_target(&output, options);
    prop_assert!(
        matches!(again, Ok(Cow::Borrowed(_))),
        "{output:?} -> {again:?}"
    );
    prop_assert_eq!(again, Ok(output.clone()));
    Ok(())
}

proptest! {
    // Cheap cases, and more of them: without kept slashes, two thirds of `targets()` are refused.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_strings_never_panic_and_normalise_to_a_fixed_point(
        target in prop_oneof![any::<String>(), "/[!-~]{0,40}"],
        keep in any::<bool>(),
    ) {
        check_output(&target, keep)?;
        let _ = split_absolute(&target);
    }

    #[test]
    fn output_is_a_fixed_point_without_dot_segments_or_double_slashes(
        target in targets(),
        keep in any::<bool>(),
    ) {
        check_output(&target, keep)?;
    }
}

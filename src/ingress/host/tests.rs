use super::*;
use proptest::prelude::*;

fn host(text: &str) -> Hostname {
    Hostname::parse(text).unwrap()
}

fn authority(text: &str) -> Option<String> {
    Hostname::from_authority(text).map(|h| h.as_str().to_owned())
}

fn error(text: &str) -> String {
    Hostname::parse(text).unwrap_err().to_string()
}

fn pattern_error(text: &str) -> String {
    HostPattern::parse(text).unwrap_err().to_string()
}

#[test]
fn parse_lowercases_and_drops_one_trailing_dot() {
    assert_eq!(host("Example.COM").as_str(), "example.com");
    assert_eq!(host("example.com.").as_str(), "example.com");
    assert_eq!(host("a-1.b2.c"), host("A-1.B2.C."));
    assert_eq!(host("localhost").as_str(), "localhost");
    assert!(!host("example.com").is_ip());
}

#[test]
fn parse_accepts_ip_literals_in_canonical_form() {
    assert_eq!(host("192.0.2.1").as_str(), "192.0.2.1");
    assert!(host("192.0.2.1").is_ip());
    assert_eq!(host("[2001:DB8:0::1]").as_str(), "2001:db8::1");
    assert_eq!(host("2001:db8::1").as_str(), "2001:db8::1");
    assert!(host("::1").is_ip());
}

#[test]
fn parse_accepts_the_longest_names_and_labels() {
    let label = "a".repeat(63);
    assert_eq!(host(&label).as_str(), label);
    let name = [label.as_str(); 4].join(".")[..253].to_owned();
    assert_eq!(host(&name).as_str(), name);
    assert_eq!(host(&format!("{name}.")).as_str(), name);
}

#[test]
fn parse_errors_name_the_value_and_the_reason() {
    let chars =
        "only letters, digits, '-' and '.' are allowed (use punycode for international names)";
    let long_label = "a".repeat(64);
    let long_name = ["a"; 128].join(".");
    let cases = [
        ("", "host name is empty".to_owned()),
        (
            ".",
            r#"host name "." has an empty label (two dots in a row, or a leading dot)"#.to_owned(),
        ),
        (
            "a..b",
            r#"host name "a..b" has an empty label (two dots in a row, or a leading dot)"#
                .to_owned(),
        ),
        (
            "exa mple.com",
            format!(r#"host name "exa mple.com" contains ' ': {chars}"#),
        ),
        (
            "bücher.de",
            format!(r#"host name "bücher.de" contains 'ü': {chars}"#),
        ),
        (
            "*.example.com",
            format!(r#"host name "*.example.com" contains '*': {chars}"#),
        ),
        (
            "-a.com",
            r#"label "-a" of host name "-a.com" starts or ends with '-'"#.to_owned(),
        ),
        (
            "a.b-.com",
            r#"label "b-" of host name "a.b-.com" starts or ends with '-'"#.to_owned(),
        ),
        (
            &long_label,
            format!(
                "label {long_label:?} of host name {long_label:?} is 64 bytes long, the limit is 63"
            ),
        ),
        (
            &long_name,
            format!("host name {long_name:?} is 255 bytes long, the limit is 253"),
        ),
        (
            "example.com:80",
            r#"host name "example.com:80" includes a port: give the name alone"#.to_owned(),
        ),
        (
            "[::1]:443",
            r#""[::1]:443" is not a valid IPv6 address"#.to_owned(),
        ),
        ("1:2:3", r#""1:2:3" is not a valid IPv6 address"#.to_owned()),
    ];
    for (input, want) in &cases {
        assert_eq!(&error(input), want, "input {input:?}");
    }
}

#[test]
fn from_authority_strips_port_and_trailing_dot_and_lowercases() {
    assert_eq!(authority("Example.COM"), Some("example.com".into()));
    assert_eq!(authority("example.com:8443"), Some("example.com".into()));
    assert_eq!(authority("example.com.:8443"), Some("example.com".into()));
    assert_eq!(authority("example.com:"), Some("example.com".into()));
    assert_eq!(authority("192.0.2.1:80"), Some("192.0.2.1".into()));
    assert_eq!(authority("[::1]:443"), Some("::1".into()));
    assert_eq!(authority("[::1]"), Some("::1".into()));
    assert_eq!(authority("[2001:DB8::1]:8080"), Some("2001:db8::1".into()));
}

#[test]
fn from_authority_rejects_garbage() {
    for garbage in [
        "",
        ".",
        ":80",
        "example.com:http",
        "example.com:65536",
        "example.com:+80",
        "example.com:80:80",
        "user@example.com",
        "exa mple.com",
        "example..com",
        "*.example.com",
        "::1",
        "[::1",
        "[::1]x",
        "[::1]:x",
        "[example.com]",
        "[fe80::1%eth0]",
        "example.com/path",
        "bücher.de",
        "\u{0}",
    ] {
        assert_eq!(authority(garbage), None, "authority {garbage:?}");
    }
    assert_eq!(authority(&"a".repeat(254)), None);
}

#[test]
fn parent_drops_the_first_label_of_dns_names_only() {
    assert_eq!(host("foo.example.com").parent(), Some("example.com"));
    assert_eq!(host("com").parent(), None);
    assert_eq!(host("192.0.2.1").parent(), None);
}

#[test]
fn wildcard_covers_exactly_one_more_label() {
    let wildcard = HostPattern::parse("*.foo.com").unwrap();
    assert!(wildcard.matches(&host("bar.foo.com")));
    assert!(wildcard.matches(&host("BAR.Foo.Com.")));
    assert!(!wildcard.matches(&host("baz.bar.foo.com")));
    assert!(!wildcard.matches(&host("foo.com")));
    assert!(!wildcard.matches(&host("barfoo.com")));
    let exact = HostPattern::parse("Foo.com").unwrap();
    assert!(exact.matches(&host("foo.com")));
    assert!(!exact.matches(&host("bar.foo.com")));
}

#[test]
fn wildcard_never_matches_an_ip_literal() {
    let wildcard = HostPattern::parse("*.2.3.4").unwrap();
    assert!(!wildcard.matches(&host("1.2.3.4")));
    assert!(wildcard.matches(&host("a.2.3.4")));
}

#[test]
fn host_pattern_displays_as_it_parses() {
    for text in ["*.example.com", "example.com", "192.0.2.1", "2001:db8::1"] {
        let pattern = HostPattern::parse(text).unwrap();
        assert_eq!(pattern.to_string(), text);
        assert_eq!(HostPattern::parse(&pattern.to_string()).unwrap(), pattern);
    }
    assert_eq!(
        HostPattern::parse("*.Example.COM.").unwrap().to_string(),
        "*.example.com"
    );
}

#[test]
fn host_pattern_errors_name_the_pattern() {
    let misplaced = |p: &str| {
        format!(
            "host pattern {p:?} has a misplaced '*': a wildcard must be the whole first label, \
             as in \"*.example.com\""
        )
    };
    for p in ["*example.com", "foo.*.com", "*.*.com", "f*.com", "**.com"] {
        assert_eq!(pattern_error(p), misplaced(p));
    }
    let no_domain = |p: &str| {
        format!(
            "host pattern {p:?} needs a domain name after \"*.\" (to match any host, give no \
             host at all)"
        )
    };
    for p in ["*", "*.", "*.192.0.2.1", "*.[::1]"] {
        assert_eq!(pattern_error(p), no_domain(p));
    }
    assert_eq!(
        pattern_error("*.-x.com"),
        r#"label "-x" of host name "*.-x.com" starts or ends with '-'"#
    );
    assert_eq!(pattern_error(""), "host name is empty");
    let longest = format!("*.{}", ["a"; 126].join("."));
    assert_eq!(longest.len(), 253);
    assert!(HostPattern::parse(&longest).is_ok());
    let long = format!("{longest}.a");
    assert_eq!(
        pattern_error(&long),
        format!("host name {long:?} is 255 bytes long, the limit is 253")
    );
}

#[test]
fn hosts_deserialize_through_the_strict_parser() {
    let pattern: HostPattern = serde_json::from_str(r#""*.Example.com""#).unwrap();
    assert_eq!(pattern.to_string(), "*.example.com");
    let err = serde_json::from_str::<Hostname>(r#""a..b""#).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"host name "a..b" has an empty label"#)
    );
    assert_eq!(
        serde_json::to_string(&pattern).unwrap(),
        r#""*.example.com""#
    );
}

proptest! {
    #[test]
    fn from_authority_never_panics(text in any::<String>()) {
        let _ = Hostname::from_authority(&text);
        let _ = Hostname::parse(&text);
        let _ = HostPattern::parse(&text);
    }

    #[test]
    fn from_authority_output_is_a_fixed_point_of_parse(
        text in r"(\[[0-9a-fA-F:.]{0,12}\]|[a-zA-Z0-9.*-]{0,20})(:[0-9]{0,6})?"
    ) {
        if let Some(h) = Hostname::from_authority(&text) {
            prop_assert_eq!(Hostname::parse(h.as_str()), Ok(h.clone()));
            if !h.as_str().contains(':') {
                // IPv6 needs its brackets back to be an authority.
                prop_assert_eq!(Hostname::from_authority(h.as_str()), Some(h.clone()));
            }
            prop_assert_eq!(Hostname::from_authority(&text.to_ascii_uppercase()), Some(h));
        }
    }
}

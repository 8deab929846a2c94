use super::*;

fn prefix(matched: &str, with: &str) -> PathChange {
    PathChange::Prefix {
        matched: matched.into(),
        with: with.into(),
    }
}

#[test]
fn replace_prefix_match_follows_every_gateway_api_example() {
    // The table of HTTPPathModifier.ReplacePrefixMatch in the Gateway API spec.
    let cases = [
        ("/foo/bar", "/foo", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo", "/xyz/", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz", "/xyz/bar"),
        ("/foo/bar", "/foo/", "/xyz/", "/xyz/bar"),
        ("/foo", "/foo", "/xyz", "/xyz"),
        ("/foo/", "/foo", "/xyz", "/xyz/"),
        ("/foo/bar", "/foo", "", "/bar"),
        ("/foo/", "/foo", "", "/"),
        ("/foo", "/foo", "", "/"),
        ("/foo/", "/foo", "/", "/"),
        ("/foo", "/foo", "/", "/"),
        ("/foo/x", "/foo", "/bar", "/bar/x"),
        ("/x", "/", "/app", "/app/x"),
        ("/", "/", "/app", "/app"),
    ];
    for (path, matched, with, want) in cases {
        assert_eq!(
            prefix(matched, with).apply(path),
            want,
            "{path} by {matched} -> {with}"
        );
    }
}

#[test]
fn full_path_and_regex_changes() {
    assert_eq!(PathChange::Full("/new".into()).apply("/old/x"), "/new");
    let regex = PathChange::Regex {
        regex: PathRegex::new("^/api/(.*)").unwrap(),
        replacement: "/${1}".into(),
    };
    assert_eq!(regex.apply("/api/users/7"), "/users/7");
    assert_eq!(regex.apply("/other"), "/other", "no match: unchanged");
    let no_slash = PathChange::Regex {
        regex: PathRegex::new("^/api/(.*)").unwrap(),
        replacement: "${1}".into(),
    };
    assert_eq!(
        no_slash.apply("/api/x"),
        "/x",
        "a path always starts with /"
    );
}

#[test]
fn a_regex_over_the_size_limit_is_refused() {
    assert!(PathRegex::new(r"^/(\w{100}){100}").is_err());
}

fn asked<'a>(scheme: Scheme, authority: &'a str, path: &'a str) -> Asked<'a> {
    Asked {
        scheme,
        authority,
        path,
        query: Some("q=1"),
    }
}

fn parts(scheme: Option<Scheme>, host: Option<&str>, port: Option<u16>) -> Redirect {
    Redirect {
        to: RedirectTo::Parts {
            scheme,
            host: host.map(str::to_owned),
            port,
            path: None,
        },
        status: 302,
    }
}

#[test]
fn redirect_ports_follow_the_gateway_api_rules() {
    let http = |a| asked(Scheme::Http, a, "/p");
    // A scheme change without a port: the new scheme's well-known port, left out.
    let to_https = parts(Some(Scheme::Https), None, None);
    assert_eq!(
        to_https.location(&http("a.test:8080")),
        "https://a.test/p?q=1"
    );
    assert_eq!(to_https.location(&http("a.test")), "https://a.test/p?q=1");
    // No scheme, no port: the request's port, shown when not the scheme's default.
    let to_b = parts(None, Some("b.test"), None);
    assert_eq!(
        to_b.location(&http("a.test:8080")),
        "http://b.test:8080/p?q=1"
    );
    assert_eq!(to_b.location(&http("a.test:80")), "http://b.test/p?q=1");
    // An explicit port is shown unless it is the scheme's default.
    let port = parts(Some(Scheme::Https), None, Some(8443));
    assert_eq!(port.location(&http("a.test")), "https://a.test:8443/p?q=1");
    let default = parts(Some(Scheme::Https), None, Some(443));
    assert_eq!(default.location(&http("a.test:80")), "https://a.test/p?q=1");
    let to_http = parts(Some(Scheme::Http), None, None);
    let https = asked(Scheme::Https, "a.test:8443", "/p");
    assert_eq!(to_http.location(&https), "http://a.test/p?q=1");
    let v6 = asked(Scheme::Http, "[::1]:8080", "/p");
    assert_eq!(to_b.location(&v6), "http://b.test:8080/p?q=1");
    assert_eq!(
        parts(None, None, None).location(&v6),
        "http://[::1]:8080/p?q=1"
    );
}

#[test]
fn redirect_paths_replace_all_or_the_matched_prefix_and_keep_the_query() {
    let with_path = |path| Redirect {
        to: RedirectTo::Parts {
            scheme: None,
            host: None,
            port: None,
            path: Some(path),
        },
        status: 301,
    };
    let a = asked(Scheme::Http, "a.test", "/old/x");
    assert_eq!(
        with_path(PathChange::Full("/new".into())).location(&a),
        "http://a.test/new?q=1"
    );
    assert_eq!(
        with_path(prefix("/old", "/new")).location(&a),
        "http://a.test/new/x?q=1"
    );
    let fixed = Redirect {
        to: RedirectTo::Fixed("https://elsewhere.test/".into()),
        status: 301,
    };
    assert_eq!(fixed.location(&a), "https://elsewhere.test/");
}

#[test]
fn rewrites_change_the_path_and_keep_the_query() {
    let rw = UrlRewrite {
        host: None,
        path: Some(prefix("/foo", "/bar")),
    };
    assert_eq!(rw.target("/foo/x?a=1"), "/bar/x?a=1");
    assert_eq!(rw.target("/foo"), "/bar");
    assert!(matches!(
        rw.target("/other?a=1"),
        Cow::Borrowed("/other?a=1")
    ));
    let none = UrlRewrite {
        host: Some("inner".into()),
        path: None,
    };
    assert!(matches!(none.target("/x"), Cow::Borrowed("/x")));
}

//! Conditions and their precedence in the route table: each tie-break of the Gateway API's
//! order, regex anchoring and order, and the fall-through to shorter paths.

use super::*;
use crate::ingress::{Conflict, HostPattern, Hostname, PathType, RouteTable, Rule};
use PathType::{Exact, Prefix, RegularExpression};

fn exact(name: &str, value: &str) -> NamedMatch {
    NamedMatch {
        name: name.into(),
        value: ValueMatch::Exact(value.into()),
    }
}

fn regex(name: &str, pattern: &str) -> NamedMatch {
    NamedMatch {
        name: name.into(),
        value: ValueMatch::regex(pattern).expect("valid test regex"),
    }
}

fn when(method: Option<&str>, headers: Vec<NamedMatch>, query: Vec<NamedMatch>) -> Conditions {
    Conditions {
        method: method.map(Into::into),
        headers,
        query,
    }
}

fn rule(
    path: &str,
    path_type: PathType,
    conditions: Conditions,
    to: &'static str,
) -> Rule<&'static str> {
    Rule {
        host: Some(HostPattern::parse("a.com").expect("valid host")),
        path: path.to_owned(),
        path_type,
        backend: to,
        conditions,
    }
}

fn table(rules: Vec<Rule<&'static str>>) -> RouteTable<&'static str> {
    let (table, conflicts) = RouteTable::build(rules, vec![], Some("default"));
    assert_eq!(conflicts, vec![]);
    table
}

/// Routes `GET`-like requests: `method`, `target` (path and query), headers as pairs.
fn send(
    t: &RouteTable<&'static str>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> &'static str {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("test header name");
        map.append(
            name,
            http::HeaderValue::from_str(value).expect("test header value"),
        );
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let request = RequestView {
        method,
        query,
        fields: &map,
    };
    let host = Hostname::from_authority("a.com").expect("valid host");
    let got = t.lookup_request(Some(&host), path, &request);
    got.backend().copied().unwrap_or("404")
}

#[test]
fn exact_beats_regex_which_beats_the_longest_prefix() {
    let t = table(vec![
        rule("/api/v1/users", Prefix, Conditions::default(), "prefix"),
        rule("/api/.*", RegularExpression, Conditions::default(), "regex"),
        rule("/api/v1/users", Exact, Conditions::default(), "exact"),
    ]);
    assert_eq!(send(&t, "GET", "/api/v1/users", &[]), "exact");
    assert_eq!(send(&t, "GET", "/api/v1/users/7", &[]), "regex");
    assert_eq!(send(&t, "GET", "/other", &[]), "default");
}

#[test]
fn a_longer_prefix_beats_a_method_match() {
    let t = table(vec![
        rule("/a", Prefix, when(Some("GET"), vec![], vec![]), "short-get"),
        rule("/a/b", Prefix, Conditions::default(), "long"),
    ]);
    assert_eq!(send(&t, "GET", "/a/b/c", &[]), "long");
    assert_eq!(send(&t, "GET", "/a/x", &[]), "short-get");
    assert_eq!(send(&t, "POST", "/a/x", &[]), "default");
}

#[test]
fn a_method_match_beats_more_headers() {
    let two = vec![exact("x-a", "1"), exact("x-b", "2")];
    let t = table(vec![
        rule("/", Prefix, when(None, two, vec![]), "headers"),
        rule("/", Prefix, when(Some("GET"), vec![], vec![]), "method"),
    ]);
    let both = [("x-a", "1"), ("x-b", "2")];
    assert_eq!(send(&t, "GET", "/", &both), "method");
    assert_eq!(send(&t, "POST", "/", &both), "headers");
}

#[test]
fn more_headers_beat_fewer_and_more_query_parameters() {
    let t = table(vec![
        rule(
            "/",
            Prefix,
            when(None, vec![], vec![exact("a", "1"), exact("b", "2")]),
            "query",
        ),
        rule(
            "/",
            Prefix,
            when(None, vec![exact("x-a", "1")], vec![]),
            "one-header",
        ),
        rule(
            "/",
            Prefix,
            when(None, vec![exact("x-a", "1"), exact("x-b", "2")], vec![]),
            "two",
        ),
    ]);
    let both = [("x-a", "1"), ("x-b", "2")];
    assert_eq!(send(&t, "GET", "/?a=1&b=2", &both), "two");
    assert_eq!(send(&t, "GET", "/?a=1&b=2", &both[..1]), "one-header");
    assert_eq!(send(&t, "GET", "/?a=1&b=2", &[]), "query");
}

#[test]
fn more_query_parameters_beat_fewer_then_input_order() {
    let t = table(vec![
        rule(
            "/",
            Prefix,
            when(None, vec![], vec![exact("a", "1")]),
            "first-a",
        ),
        rule(
            "/",
            Prefix,
            when(None, vec![], vec![exact("b", "2")]),
            "second-b",
        ),
        rule(
            "/",
            Prefix,
            when(None, vec![], vec![exact("a", "1"), exact("b", "2")]),
            "both",
        ),
    ]);
    assert_eq!(send(&t, "GET", "/?b=2&a=1", &[]), "both");
    assert_eq!(send(&t, "GET", "/?b=2&a=9", &[]), "second-b");
    // Equal rank: the older rule wins, whatever the order in the query.
    assert_eq!(send(&t, "GET", "/?a=1&b=3", &[]), "first-a");
    assert_eq!(send(&t, "GET", "/?c=1", &[]), "default");
}

#[test]
fn failing_conditions_fall_through_to_shorter_prefixes() {
    let t = table(vec![
        rule("/", Prefix, Conditions::default(), "root"),
        rule("/app", Prefix, Conditions::default(), "app"),
        rule(
            "/app/beta",
            Prefix,
            when(None, vec![exact("x-env", "canary")], vec![]),
            "canary",
        ),
        rule(
            "/app/beta",
            Exact,
            when(Some("PUT"), vec![], vec![]),
            "exact-put",
        ),
        rule(
            "/app/v[0-9]+",
            RegularExpression,
            when(Some("POST"), vec![], vec![]),
            "regex-post",
        ),
    ]);
    assert_eq!(
        send(&t, "PUT", "/app/beta", &[("x-env", "canary")]),
        "exact-put"
    );
    assert_eq!(
        send(&t, "GET", "/app/beta", &[("x-env", "canary")]),
        "canary"
    );
    assert_eq!(
        send(&t, "GET", "/app/beta/x", &[("x-env", "stable")]),
        "app"
    );
    assert_eq!(send(&t, "POST", "/app/v2", &[]), "regex-post");
    assert_eq!(send(&t, "GET", "/app/v2", &[]), "app");
    assert_eq!(send(&t, "GET", "/elsewhere", &[]), "root");
}

#[test]
fn regex_paths_match_the_whole_path_only() {
    let t = table(vec![rule(
        "/api/[0-9]+",
        RegularExpression,
        Conditions::default(),
        "re",
    )]);
    assert_eq!(send(&t, "GET", "/api/42", &[]), "re");
    assert_eq!(send(&t, "GET", "/api/42?x=1", &[]), "re");
    assert_eq!(send(&t, "GET", "/api/42/x", &[]), "default");
    assert_eq!(send(&t, "GET", "/v1/api/42", &[]), "default");
    assert_eq!(send(&t, "GET", "/API/42", &[]), "default");
    // A pattern cannot break out of its anchors: `a)|(b` does not even compile alone.
    assert!(crate::ingress::regex_paths::path_regex("/a)|(/b").is_err());
    let alt = table(vec![rule(
        "/a|/b",
        RegularExpression,
        Conditions::default(),
        "alt",
    )]);
    assert_eq!(send(&alt, "GET", "/b", &[]), "alt");
    assert_eq!(send(&alt, "GET", "/ab", &[]), "default");
    assert_eq!(send(&alt, "GET", "/a/b", &[]), "default");
}

#[test]
fn longer_patterns_first_then_input_order() {
    let t = table(vec![
        rule("/x/.*", RegularExpression, Conditions::default(), "short"),
        rule(
            "/x/[a-z]+/.*",
            RegularExpression,
            Conditions::default(),
            "long",
        ),
        rule(
            "/y/(a|b)",
            RegularExpression,
            Conditions::default(),
            "first",
        ),
        rule(
            "/y/[ab]+",
            RegularExpression,
            Conditions::default(),
            "second",
        ),
    ]);
    assert_eq!(send(&t, "GET", "/x/abc/d", &[]), "long");
    assert_eq!(send(&t, "GET", "/x/1/d", &[]), "short");
    assert_eq!(send(&t, "GET", "/y/a", &[]), "first");
    assert_eq!(send(&t, "GET", "/y/ab", &[]), "second");
}

#[test]
fn a_regex_whose_rules_fail_lets_the_next_pattern_try() {
    let t = table(vec![
        rule(
            "/p/[0-9]+/.*",
            RegularExpression,
            when(Some("DELETE"), vec![], vec![]),
            "long",
        ),
        rule("/p/.*", RegularExpression, Conditions::default(), "short"),
    ]);
    assert_eq!(send(&t, "DELETE", "/p/1/x", &[]), "long");
    assert_eq!(send(&t, "GET", "/p/1/x", &[]), "short");
}

#[test]
fn header_names_ignore_case_and_any_repeated_value_counts() {
    let t = table(vec![
        rule(
            "/",
            Prefix,
            when(None, vec![regex("x-id", "[0-9]+")], vec![]),
            "id",
        ),
        rule("/", Prefix, Conditions::default(), "plain"),
    ]);
    assert_eq!(send(&t, "GET", "/", &[("X-Id", "123")]), "id");
    assert_eq!(
        send(&t, "GET", "/", &[("x-id", "abc"), ("x-id", "7")]),
        "id"
    );
    // Regex values are anchored, and a comma-joined line is one value.
    assert_eq!(send(&t, "GET", "/", &[("x-id", "12a")]), "plain");
    assert_eq!(send(&t, "GET", "/", &[("x-id", "1, 2")]), "plain");
    assert_eq!(send(&t, "GET", "/", &[]), "plain");
}

#[test]
fn exact_header_values_are_case_sensitive() {
    let t = table(vec![rule(
        "/",
        Prefix,
        when(None, vec![exact("X-Env", "canary")], vec![]),
        "c",
    )]);
    assert_eq!(send(&t, "GET", "/", &[("x-env", "canary")]), "c");
    assert_eq!(send(&t, "GET", "/", &[("x-env", "Canary")]), "default");
}

#[test]
fn identical_conditions_are_duplicates_and_different_ones_coexist() {
    let ab = || {
        when(
            Some("GET"),
            vec![exact("x-a", "1"), exact("x-b", "2")],
            vec![],
        )
    };
    let ba = when(
        Some("GET"),
        vec![exact("x-b", "2"), exact("X-A", "1")],
        vec![],
    );
    let (t, conflicts) = RouteTable::build(
        vec![
            rule("/r", Prefix, ab(), "one"),
            rule("/r", Prefix, Conditions::default(), "plain"),
            rule("/r/", Prefix, ba, "dup"),
            rule("/r.*", RegularExpression, ab(), "re"),
            rule("/r.*", RegularExpression, ab(), "re-dup"),
        ],
        vec![],
        None,
    );
    let rules: Vec<(usize, usize)> = conflicts
        .iter()
        .map(|c| match c {
            Conflict::Duplicate { rule, first, .. } => (*rule, *first),
            other => panic!("unexpected {other}"),
        })
        .collect();
    assert_eq!(rules, vec![(2, 0), (4, 3)]);
    assert_eq!(send(&t, "GET", "/r", &[]), "plain");
}

#[test]
fn plain_lookups_see_only_rules_without_conditions() {
    let t = table(vec![rule(
        "/",
        Prefix,
        when(Some("GET"), vec![], vec![]),
        "get",
    )]);
    let host = Hostname::from_authority("a.com").expect("valid host");
    assert_eq!(t.lookup(Some(&host), "/").backend(), Some(&"default"));
}

use super::*;
use crate::ingress::filters::{Asked, Scheme};

fn notes(pairs: &[(&str, &str)]) -> (FilterNotes, Vec<String>) {
    let mut n = FilterNotes::default();
    let bad = pairs
        .iter()
        .filter(|(k, v)| n.read(k, v).is_none())
        .map(|(k, _)| (*k).to_owned())
        .collect();
    (n, bad)
}

fn rewritten(n: &FilterNotes, path: &str, regex: bool, request: &str) -> String {
    let f = n.for_path(path, regex).unwrap().unwrap();
    f.rewrite.as_ref().unwrap().target(request).into_owned()
}

#[test]
fn rewrite_target_with_use_regex_substitutes_capture_groups_over_the_whole_path() {
    let (n, bad) = notes(&[("rewrite-target", "/$2")]);
    assert!(bad.is_empty());
    let path = "/something(/|$)(.*)";
    assert_eq!(rewritten(&n, path, true, "/something"), "/");
    assert_eq!(rewritten(&n, path, true, "/something/"), "/");
    assert_eq!(rewritten(&n, path, true, "/SomeThing/new?x=1"), "/new?x=1");
    assert_eq!(rewritten(&n, path, true, "/other"), "/other");
    let (whole, _) = notes(&[("rewrite-target", "/v2")]);
    assert_eq!(rewritten(&whole, "/api", true, "/api/x"), "/v2");
}

#[test]
fn rewrite_target_without_use_regex_replaces_the_path_prefix() {
    let (n, _) = notes(&[("rewrite-target", "/")]);
    assert_eq!(rewritten(&n, "/app", false, "/app/x?q"), "/x?q");
    assert_eq!(rewritten(&n, "/app", false, "/app"), "/");
}

#[test]
fn a_path_that_is_not_a_regex_is_refused_for_the_rewrite() {
    let (n, _) = notes(&[("rewrite-target", "/$1")]);
    assert!(n.for_path("/a(", true).is_err());
}

#[test]
fn redirects_take_their_codes_and_temporal_wins() {
    let asked = Asked {
        scheme: Scheme::Http,
        authority: "a.test",
        path: "/x",
        query: None,
    };
    let redirect = |pairs: &[(&str, &str)]| {
        let (n, bad) = notes(pairs);
        let f = n.for_path("/", false).unwrap().unwrap();
        let r = f.redirect.clone().unwrap();
        (r.status, r.location(&asked), bad)
    };
    let url = "https://new.test/";
    assert_eq!(
        redirect(&[("permanent-redirect", url)]),
        (301, url.into(), vec![])
    );
    assert_eq!(
        redirect(&[
            ("permanent-redirect-code", "308"),
            ("permanent-redirect", url)
        ]),
        (308, url.into(), vec![])
    );
    assert_eq!(redirect(&[("temporal-redirect", url)]).0, 302);
    assert_eq!(
        redirect(&[
            ("temporal-redirect", "https://t.test/"),
            ("permanent-redirect", url)
        ])
        .1,
        "https://t.test/"
    );
    let (_, _, bad) = redirect(&[
        ("permanent-redirect", url),
        ("permanent-redirect-code", "200"),
    ]);
    assert_eq!(bad, ["permanent-redirect-code"]);
    let (n, bad) = notes(&[("permanent-redirect", "javascript:alert(1)")]);
    assert_eq!(bad, ["permanent-redirect"]);
    assert!(n.for_path("/", false).unwrap().is_none());
}

#[test]
fn vhost_prefix_app_root_and_aliases_are_checked() {
    let (n, bad) = notes(&[
        ("upstream-vhost", "Inner.svc:8080"),
        ("x-forwarded-prefix", "/app"),
        ("app-root", "/home"),
        ("server-alias", "b.test, *.c.test"),
    ]);
    assert!(bad.is_empty(), "{bad:?}");
    let f = n.for_path("/", false).unwrap().unwrap();
    assert_eq!(
        f.rewrite.as_ref().unwrap().host.as_deref(),
        Some("inner.svc:8080")
    );
    assert!(
        f.request_headers
            .as_ref()
            .unwrap()
            .drops(b"X-Forwarded-Prefix")
    );
    assert_eq!(n.server_alias.len(), 2);
    assert!(n.app_root_filters().is_some());
    let (_, bad) = notes(&[
        ("upstream-vhost", "a b"),
        ("x-forwarded-prefix", "/a\r\nx: y"),
        ("app-root", "home"),
        ("server-alias", "ok.test,bad_name!"),
    ]);
    assert_eq!(bad.len(), 4, "{bad:?}");
    let (n, _) = notes(&[("server-alias", "ok.test,bad_name!")]);
    assert_eq!(n.server_alias.len(), 1, "the valid names are still served");
}

use super::*;
use crate::ingress::{Lookup, PathType, RequestView};

fn listeners() -> Vec<ListenerConfig> {
    let text = "[[listeners]]\nname = \"file\"\nlisten = \"127.0.0.1:80\"\n\
                [[listeners]]\nname = \"gw\"\nlisten = \"127.0.0.1:81\"\n";
    let mut ls = crate::config::Config::parse(text, "test")
        .map(|c| c.http.listeners)
        .unwrap_or_default();
    assert_eq!(ls.len(), 2);
    ls[1].isolated = true;
    ls[1].sections = vec![section("a", None), section("b", Some("*.b.test"))];
    ls
}

fn section(name: &str, host: Option<&str>) -> Section {
    Section {
        name: name.into(),
        hostname: host.map(|h| HostPattern::parse(h).unwrap()),
    }
}

fn rule(host: Option<&str>, path: &str, to: &'static str) -> Rule<&'static str> {
    Rule {
        host: host.map(|h| HostPattern::parse(h).unwrap()),
        path: path.into(),
        path_type: PathType::Prefix,
        backend: to,
        conditions: Default::default(),
    }
}

fn fence(names: &[&str]) -> Option<Arc<[Arc<str>]>> {
    Some(names.iter().map(|n| Arc::from(*n)).collect())
}

/// (listener, host, path) → backend or "404".
fn ask(built: &Built<&'static str>, listener: &str, host: &str, path: &str) -> &'static str {
    let host = Hostname::parse(host).unwrap();
    let table = match &built.1 {
        None => Some(&built.0),
        Some(s) => s.table(&built.0, listener, None, &host),
    };
    match table.map(|t| t.lookup_request(Some(&host), path, &RequestView::NONE)) {
        Some(Lookup::Matched { backend, .. } | Lookup::HostDefault(backend)) => backend,
        Some(Lookup::Default(backend)) => backend,
        _ => "404",
    }
}

fn table() -> Built<&'static str> {
    let fences = [None, fence(&["a"]), fence(&["b"]), fence(&["a", "b"])];
    let rules = vec![
        rule(Some("x.b.test"), "/", "file"),
        rule(None, "/a", "route-a"),
        rule(Some("*.b.test"), "/b", "route-b"),
        rule(None, "/both", "route-ab"),
    ];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    build(&listeners(), rules, &fences, Vec::new(), Some("default"))
}

#[test]
fn fenced_routes_are_served_only_on_their_listeners() {
    let t = table();
    assert!(t.2.is_empty(), "{:?}", t.2);
    assert_eq!(ask(&t, "gw", "any.test", "/a"), "route-a");
    assert_eq!(ask(&t, "gw", "x.b.test", "/b"), "route-b");
    assert_eq!(ask(&t, "gw", "other.test", "/both"), "route-ab");
    // On the file's listener: only the file's route and default, never a fenced one.
    assert_eq!(ask(&t, "file", "x.b.test", "/a"), "file");
    assert_eq!(ask(&t, "file", "any.test", "/a"), "default");
    assert_eq!(ask(&t, "file", "y.b.test", "/b"), "default");
}

#[test]
fn a_section_serves_only_its_routes_and_isolation_drops_the_file_and_default() {
    let t = table();
    // x.b.test is claimed by section b (more specific than a): a's route is not there.
    assert_eq!(ask(&t, "gw", "x.b.test", "/a"), "404");
    // Section a (no hostname) does not have b's route, nor the file's route or default.
    assert_eq!(ask(&t, "gw", "any.test", "/b"), "404");
    assert_eq!(ask(&t, "gw", "any.test", "/"), "404");
}

#[test]
fn an_unfenced_table_has_no_scopes() {
    let fences: Fences<'_> = vec![None];
    let mut ls = listeners();
    ls.truncate(1);
    let t = build(
        &ls,
        vec![rule(None, "/", "file")],
        &fences,
        Vec::new(),
        None,
    );
    assert!(t.1.is_none());
    assert_eq!(ask(&t, "whatever", "any.test", "/x"), "file");
}

#[test]
fn an_isolated_socket_without_a_claiming_section_is_404() {
    let mut ls = listeners();
    ls[1].sections = vec![section("a", Some("a.test"))];
    let fences = [fence(&["a"])];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let t = build(
        &ls,
        vec![rule(None, "/", "route-a")],
        &fences,
        Vec::new(),
        None,
    );
    assert_eq!(ask(&t, "gw", "a.test", "/"), "route-a");
    assert_eq!(ask(&t, "gw", "b.test", "/"), "404");
    assert_eq!(ask(&t, "file", "a.test", "/"), "404");
}

#[test]
fn a_file_listener_fence_adds_to_the_shared_routes() {
    let fences = [None, fence(&["file"])];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let rules = vec![rule(None, "/", "shared"), rule(None, "/only", "file-only")];
    let mut ls = listeners();
    ls[1].isolated = false;
    ls[1].sections.clear();
    let t = build(&ls, rules, &fences, Vec::new(), None);
    assert_eq!(ask(&t, "file", "h.test", "/only"), "file-only");
    assert_eq!(ask(&t, "gw", "h.test", "/only"), "shared");
}

#[test]
fn duplicate_indices_are_positions_in_the_whole_input() {
    let fences = [None, fence(&["a"]), fence(&["a"])];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let rules = vec![
        rule(None, "/", "file"),
        rule(None, "/x", "a1"),
        rule(None, "/x", "a2"),
    ];
    let t = build(&listeners(), rules, &fences, Vec::new(), None);
    assert!(
        matches!(
            t.2.as_slice(),
            [Conflict::Duplicate {
                rule: 2,
                first: 1,
                ..
            }]
        ),
        "{:?}",
        t.2
    );
}

#[test]
fn wildcard_sections_claim_any_depth_but_not_the_domain() {
    let s = section("w", Some("*.example.com"));
    let claims = |h: &str| s.claims(&Hostname::parse(h).unwrap());
    assert!(claims("a.example.com"));
    assert!(claims("a.b.example.com"));
    assert!(!claims("example.com"));
    assert!(!claims("aexample.com"));
}

#[test]
fn section_tables_give_wildcards_any_depth_the_longest_suffix_first() {
    let fences = [fence(&["b"]), fence(&["b"])];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let rules = vec![
        rule(Some("*.b.test"), "/", "b"),
        rule(Some("*.deep.b.test"), "/", "deep"),
    ];
    let t = build(&listeners(), rules, &fences, Vec::new(), None);
    assert_eq!(ask(&t, "gw", "x.b.test", "/"), "b");
    assert_eq!(ask(&t, "gw", "x.y.b.test", "/"), "b");
    assert_eq!(ask(&t, "gw", "x.deep.b.test", "/"), "deep");
    assert_eq!(ask(&t, "gw", "x.y.deep.b.test", "/"), "deep");
    assert_eq!(ask(&t, "gw", "b.test", "/"), "404");
    // The shared table keeps the Ingress meaning (one label).
    let shared = RouteTable::build(vec![rule(Some("*.b.test"), "/", "b")], Vec::new(), None).0;
    let deep = Hostname::parse("x.y.b.test").unwrap();
    assert!(matches!(shared.lookup(Some(&deep), "/"), Lookup::NoHost));
}

#[test]
fn only_the_shared_routes_bring_the_file_host_settings() {
    let t = table();
    let scoped = t.1.as_ref().unwrap();
    let host = |h: &str| Hostname::parse(h).unwrap();
    assert!(scoped.serves_shared("file", &host("a.test")));
    assert!(scoped.serves_shared("unknown", &host("a.test")));
    assert!(!scoped.serves_shared("gw", &host("a.test")));
    assert!(!scoped.serves_shared("gw", &host("x.b.test")));
}

/// Conformance HTTPRouteMatchingAcrossRoutes, on one Gateway listener: a route for
/// `example.com` and `example.net` (`/`, or header `version: one`) and one for `*.com`
/// (`/v2`, or header `version: two`).
#[test]
fn a_gateway_listener_matches_across_routes_covering_the_host() {
    use crate::ingress::matches::{Conditions, NamedMatch, ValueMatch};
    let mut ls = listeners();
    ls[1].sections = vec![section("gw", None)];
    let version = |v: &str| Conditions {
        headers: vec![NamedMatch {
            name: "version".into(),
            value: ValueMatch::Exact(v.into()),
        }],
        ..Default::default()
    };
    let mut rules = Vec::new();
    for host in ["example.com", "example.net"] {
        rules.push(rule(Some(host), "/", "v1"));
        let mut by_header = rule(Some(host), "/", "v1");
        by_header.conditions = version("one");
        rules.push(by_header);
    }
    rules.push(rule(Some("*.com"), "/v2", "v2"));
    let mut by_header = rule(Some("*.com"), "/", "v2");
    by_header.conditions = version("two");
    rules.push(by_header);
    let fences = vec![fence(&["gw"]); rules.len()];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let built = build(&ls, rules, &fences, Vec::new(), None);
    assert_eq!(built.2, Vec::new(), "copies are never conflicts");
    let scoped = built.1.as_ref().unwrap();
    let ask_with = |host: &str, path: &str, version: Option<&str>| {
        let host = Hostname::parse(host).unwrap();
        let table = scoped.table(&built.0, "gw", None, &host).unwrap();
        let mut fields = http::HeaderMap::new();
        if let Some(v) = version {
            fields.insert("version", http::HeaderValue::from_str(v).unwrap());
        }
        let view = RequestView {
            method: "GET",
            query: None,
            fields: &fields,
        };
        match table.lookup_request(Some(&host), path, &view) {
            Lookup::Matched { backend, .. } => *backend,
            _ => "404",
        }
    };
    assert_eq!(ask_with("example.com", "/", None), "v1");
    assert_eq!(ask_with("example.com", "/example", None), "v1");
    assert_eq!(ask_with("example.net", "/example", None), "v1");
    assert_eq!(ask_with("example.com", "/example", Some("one")), "v1");
    assert_eq!(ask_with("example.com", "/v2", None), "v2");
    assert_eq!(ask_with("example.net", "/v2", None), "v1");
    assert_eq!(ask_with("example.com", "/v2/example", None), "v2");
    assert_eq!(ask_with("example.com", "/", Some("two")), "v2");
    assert_eq!(ask_with("foo.com", "/v2", None), "v2");
    assert_eq!(ask_with("foo.com", "/", None), "404");
}

/// On a tie (same path, same conditions) the more specific hostname's rule wins, and the
/// file's shared table keeps the Ingress rule: no matching across host groups there.
#[test]
fn ties_go_to_the_more_specific_hostname_and_ingress_tables_do_not_merge() {
    let mut ls = listeners();
    ls[1].sections = vec![section("gw", None)];
    let rules = vec![
        rule(None, "/", "any"),
        rule(Some("*.test"), "/", "wild"),
        rule(Some("a.test"), "/x", "exact"),
        rule(Some("a.test"), "/z", "file-exact"),
        rule(None, "/y", "file-any"),
    ];
    let fences = [fence(&["gw"]), fence(&["gw"]), fence(&["gw"]), None, None];
    let fences: Fences<'_> = fences.iter().map(|f| f.as_deref()).collect();
    let built = build(&ls, rules, &fences, Vec::new(), None);
    assert_eq!(built.2, Vec::new());
    assert_eq!(ask(&built, "gw", "a.test", "/"), "wild");
    assert_eq!(ask(&built, "gw", "a.test", "/x/1"), "exact");
    assert_eq!(ask(&built, "gw", "b.test", "/"), "wild");
    assert_eq!(ask(&built, "gw", "other", "/"), "any");
    assert_eq!(ask(&built, "file", "a.test", "/y"), "404");
    assert_eq!(ask(&built, "file", "a.test", "/z"), "file-exact");
    assert_eq!(ask(&built, "file", "b.test", "/y"), "file-any");
}

#[test]
fn on_tls_the_server_name_picks_the_section_and_the_host_the_route() {
    let t = table();
    let scoped = t.1.as_ref().unwrap();
    let ask_tls = |sni: Option<&str>, host: &str, path: &str| {
        let host = Hostname::parse(host).unwrap();
        let table = scoped.table(&t.0, "gw", sni, &host);
        match table.map(|t| t.lookup_request(Some(&host), path, &RequestView::NONE)) {
            Some(Lookup::Matched { backend, .. }) => *backend,
            _ => "404",
        }
    };
    // SNI in section b, Host too: b's route.
    assert_eq!(ask_tls(Some("x.b.test"), "x.b.test", "/b"), "route-b");
    // SNI claimed by section a only: a's table, where x.b.test has no /b route.
    assert_eq!(ask_tls(Some("other.test"), "x.b.test", "/b"), "404");
    assert_eq!(ask_tls(Some("other.test"), "x.b.test", "/a"), "route-a");
    // No SNI: the Host picks.
    assert_eq!(ask_tls(None, "x.b.test", "/b"), "route-b");
}

use super::*;
use http::HeaderMap;

fn cors(origins: &[&str], credentials: bool) -> Arc<Cors> {
    Arc::new(Cors::new(CorsConfig {
        allow_origins: origins
            .iter()
            .map(|o| OriginPattern::parse(o).unwrap())
            .collect(),
        allow_methods: vec!["GET".into(), "POST".into()],
        allow_headers: vec!["Content-Type".into()],
        expose_headers: vec!["X-Total".into()],
        allow_credentials: credentials,
        max_age: Some(600),
    }))
}

fn asked(origin: &str, preflight: bool) -> CorsAsk<'_> {
    CorsAsk {
        origin: Some(origin),
        preflight_method: preflight,
    }
}

fn fields(write: impl FnOnce(&mut HeaderMap)) -> Vec<(String, String)> {
    let mut map = HeaderMap::new();
    write(&mut map);
    map.iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn origin_patterns_parse_and_match() {
    let sub = OriginPattern::parse("https://*.Example.com").unwrap();
    assert!(sub.matches("https://app.example.com"));
    assert!(sub.matches("https://a.b.example.com"));
    assert!(!sub.matches("https://example.com"));
    assert!(!sub.matches("http://app.example.com"));
    assert!(!sub.matches("https://evil-example.com"));
    assert!(!sub.matches("https://app.example.com.evil.test"));
    assert!(!sub.matches("https://x/.example.com"));
    let exact = OriginPattern::parse("https://app.test:8443").unwrap();
    assert!(exact.matches("HTTPS://APP.TEST:8443"));
    assert!(!exact.matches("https://app.test"));
    for bad in ["app.test", "https://", "https://a b", "https://a/path", ""] {
        assert!(OriginPattern::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_preflight_from_an_allowed_origin_gets_the_configured_fields() {
    let (preflight, reply) =
        cors(&["https://a.test"], true).reply("OPTIONS", &asked("https://a.test", true));
    assert!(preflight);
    assert_eq!(
        fields(|m| reply.preflight(m)),
        [
            ("access-control-allow-origin", "https://a.test"),
            ("access-control-allow-credentials", "true"),
            ("access-control-allow-methods", "GET, POST"),
            ("access-control-allow-headers", "Content-Type"),
            ("access-control-max-age", "600"),
            ("vary", "Origin"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
}

#[test]
fn a_disallowed_origin_gets_no_cors_field_and_its_preflight_goes_on() {
    let (preflight, reply) =
        cors(&["https://a.test"], false).reply("OPTIONS", &asked("https://b.test", true));
    assert!(!preflight);
    assert_eq!(
        fields(|m| reply.response(m)),
        [("vary".to_owned(), "Origin".to_owned())]
    );
}

#[test]
fn star_is_sent_only_without_credentials() {
    let (_, reply) = cors(&["*"], false).reply("GET", &asked("https://b.test", false));
    let sent = fields(|m| reply.response(m));
    assert_eq!(sent[0], ("access-control-allow-origin".into(), "*".into()));
    let (_, reply) = cors(&["*"], true).reply("GET", &asked("https://b.test", false));
    let sent = fields(|m| reply.response(m));
    assert_eq!(
        sent[..3],
        [
            ("access-control-allow-origin", "https://b.test"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "X-Total"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
}

#[test]
fn only_options_with_a_requested_method_is_a_preflight() {
    let c = cors(&["*"], false);
    assert!(!c.reply("OPTIONS", &asked("https://a.test", false)).0);
    assert!(!c.reply("GET", &asked("https://a.test", true)).0);
    assert!(!c.reply("OPTIONS", &CorsAsk::default()).0);
}

#[test]
fn the_endpoints_access_control_fields_are_dropped() {
    let (_, reply) = cors(&["*"], false).reply("GET", &CorsAsk::default());
    assert!(reply.drops(b"Access-Control-Allow-Origin"));
    assert!(reply.drops(b"access-control-max-age"));
    assert!(!reply.drops(b"vary"));
    assert!(!reply.drops(b"access-control-"));
}

#[test]
fn asked_reads_origin_and_the_preflight_method() {
    let pairs: [(&[u8], &[u8]); 3] = [
        (b"Host", b"a"),
        (b"ORIGIN", b"https://a.test"),
        (b"Access-Control-Request-Method", b"PUT"),
    ];
    let a = CorsAsk::from_fields(pairs.into_iter());
    assert_eq!(a.origin, Some("https://a.test"));
    assert!(a.preflight_method);
}

#[test]
fn only_one_serialized_origin_is_ever_echoed() {
    let c = cors(&["*"], true);
    for origin in [
        "https://a.test, https://b.test",
        "https://a.test/path",
        "*",
        "https://*.a.test",
    ] {
        let (_, reply) = c.reply("GET", &asked(origin, false));
        assert!(reply.origin.is_none(), "{origin}");
    }
    let (_, reply) = c.reply("GET", &asked("null", false));
    assert_eq!(reply.origin.unwrap(), "null");
    let pairs: [(&[u8], &[u8]); 2] = [
        (b"origin", b"https://a.test"),
        (b"Origin", b"https://b.test"),
    ];
    assert_eq!(CorsAsk::from_fields(pairs.into_iter()).origin, None);
}

use crate::config::{Config, ConfigError, Issue};
use crate::policy::cors::OriginPattern;

const BASE: &str = r#"
[[services]]
name = "web"
[[services.endpoints]]
address = "127.0.0.1:9001"
[[listeners]]
name = "l"
listen = "127.0.0.1:8080"
[[routes]]
host = "a.test"
service = "web"
[[routes]]
host = "b.test"
service = "web"
"#;

fn with(second_route: &str) -> String {
    format!("{BASE}{second_route}\n")
}

fn issues(text: &str) -> Vec<String> {
    match Config::parse(text, "test.toml") {
        Err(ConfigError::Invalid { issues, .. }) => issues.iter().map(Issue::to_string).collect(),
        other => panic!("expected validation issues, got {other:?}"),
    }
}

#[test]
fn a_rate_of_zero_and_other_bad_limits_are_named_by_path() {
    assert_eq!(
        issues(&with("[routes.rate_limit]\nrps = 0")),
        ["routes[1].rate_limit.rps: must be > 0"]
    );
    assert_eq!(
        issues(&with(
            "max_connections_per_client = 0\n[routes.rate_limit]\nrps = 1\nrpm = 60\n\
             allow = [\"10.0.0.0/33\"]"
        )),
        [
            "routes[1].max_connections_per_client: must be > 0 and < 2^32",
            "routes[1].rate_limit.allow[0]: invalid address or CIDR \"10.0.0.0/33\"",
            "routes[1].rate_limit.rpm: give rps or rpm, not both",
        ]
    );
    assert_eq!(
        issues(&with("[routes.rate_limit]\nrpm = 5\nburst = 0")),
        ["routes[1].rate_limit.burst: must be > 0 and < 2^32"]
    );
    assert_eq!(
        issues(&with("[routes.rate_limit]\nrpm = 1\nburst = 4000000000")),
        ["routes[1].rate_limit.burst: too large for this rate"]
    );
    assert_eq!(
        issues(&with("[routes.rate_limit]\nburst = 3")),
        ["routes[1].rate_limit.rps: give rps or rpm"]
    );
}

#[test]
fn rates_become_buckets() {
    let config = Config::parse(
        &with("max_connections_per_client = 4\n[routes.rate_limit]\nrps = 10\nburst = 5\nallow = [\"10.0.0.1\"]"),
        "t",
    )
    .unwrap();
    let limits = &config.http.routes[1].limits;
    let bucket = limits.rate.unwrap();
    assert_eq!((bucket.interval_ns, bucket.burst), (100_000_000, 5));
    assert_eq!(limits.max_connections, Some(4));
    assert_eq!(
        limits.allow,
        ["10.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]
    );
    let per_minute = Config::parse(&with("[routes.rate_limit]\nrpm = 90"), "t").unwrap();
    let bucket = per_minute.http.routes[1].limits.rate.unwrap();
    assert_eq!((bucket.interval_ns, bucket.burst), (666_666_666, 2));
    assert!(
        !Config::parse(BASE, "t").unwrap().http.routes[1]
            .limits
            .limits()
    );
}

#[test]
fn cors_defaults_follow_ingress_nginx_but_credentials() {
    let config = Config::parse(&with("[routes.cors]"), "t").unwrap();
    let cors = config.http.routes[1].cors.clone().unwrap();
    assert_eq!(cors.allow_origins, [OriginPattern::Any]);
    assert_eq!(cors.allow_methods.join(", "), super::DEFAULT_CORS_METHODS);
    assert_eq!(cors.allow_headers.join(","), super::DEFAULT_CORS_HEADERS);
    assert_eq!(cors.max_age, Some(1_728_000));
    assert!(!cors.allow_credentials);
    assert!(config.http.routes[0].cors.is_none());
}

#[test]
fn bad_cors_values_are_named_by_path() {
    assert_eq!(
        issues(&with(
            "[routes.cors]\nallow_origins = [\"https://ok.test\", \"ftp//x\"]\n\
             allow_methods = [\"GET\", \"BAD METHOD\"]\nexpose_headers = [\"x:y\"]"
        )),
        [
            "routes[1].cors.allow_origins[1]: invalid origin \"ftp//x\": use scheme://host[:port] or *",
            "routes[1].cors.allow_methods[1]: invalid name \"BAD METHOD\": use an HTTP token",
            "routes[1].cors.expose_headers[0]: invalid name \"x:y\": use an HTTP token",
        ]
    );
}

use super::*;

fn notes(pairs: &[(&str, &str)]) -> PolicyNotes {
    let mut notes = PolicyNotes::default();
    for (name, value) in pairs {
        assert!(handles(name), "{name}");
        assert_eq!(notes.read(name, value), Some(()), "{name}={value}");
    }
    notes
}

#[test]
fn limit_rps_makes_a_bucket_of_rate_times_the_multiplier() {
    let limits = notes(&[("limit-rps", "10")]).limits();
    let bucket = limits.rate.unwrap();
    assert_eq!((bucket.interval_ns, bucket.burst), (100_000_000, 50));
    let limits = notes(&[("limit-rps", "10"), ("limit-burst-multiplier", "2")]).limits();
    assert_eq!(limits.rate.unwrap().burst, 20);
    let huge = notes(&[("limit-rpm", "1"), ("limit-burst-multiplier", "4000000000")]).limits();
    let bucket = huge.rate.unwrap();
    assert!(
        bucket
            .interval_ns
            .checked_mul(u64::from(bucket.burst))
            .is_some()
    );
}

#[test]
fn with_rps_and_rpm_the_lower_rate_wins() {
    let limits = notes(&[("limit-rps", "10"), ("limit-rpm", "60")]).limits();
    let bucket = limits.rate.unwrap();
    assert_eq!((bucket.interval_ns, bucket.burst), (1_000_000_000, 300));
}

#[test]
fn connections_whitelist_and_zero_rates() {
    let limits = notes(&[
        ("limit-connections", "3"),
        ("limit-whitelist", "10.0.0.0/8, 192.168.0.1"),
        ("limit-rps", "0"),
    ])
    .limits();
    assert_eq!(limits.max_connections, Some(3));
    assert_eq!(limits.allow.len(), 2);
    assert_eq!(limits.rate, None, "0 turns the limit off");
    assert!(!notes(&[("limit-connections", "0")]).limits().limits());
}

#[test]
fn bad_values_are_refused() {
    let mut n = PolicyNotes::default();
    for (name, value) in [
        ("limit-rps", "ten"),
        ("limit-burst-multiplier", "0"),
        ("limit-whitelist", "nowhere"),
        ("enable-cors", "yes"),
        ("cors-allow-origin", "app.test"),
        ("cors-allow-methods", "GET, P UT"),
        ("cors-max-age", "-1"),
    ] {
        assert_eq!(n.read(name, value), None, "{name}={value}");
    }
    assert!(!handles("limit-req-status-code"));
}

#[test]
fn enable_cors_gives_ingress_nginx_defaults() {
    assert!(
        notes(&[("cors-allow-origin", "https://a.test")])
            .cors()
            .is_none()
    );
    let cors = notes(&[("enable-cors", "true")]).cors().unwrap();
    assert_eq!(cors.allow_origins, [OriginPattern::Any]);
    assert_eq!(cors.allow_methods.join(", "), DEFAULT_CORS_METHODS);
    assert_eq!(cors.allow_headers.len(), 9);
    assert!(cors.allow_credentials);
    assert_eq!(cors.max_age, Some(1_728_000));
    let cors = notes(&[
        ("enable-cors", "true"),
        ("cors-allow-origin", "https://a.test, https://*.b.test"),
        ("cors-allow-methods", "GET,POST"),
        ("cors-allow-headers", "X-Token"),
        ("cors-expose-headers", "X-Total, X-Page"),
        ("cors-allow-credentials", "false"),
        ("cors-max-age", "60"),
    ])
    .cors()
    .unwrap();
    assert_eq!(cors.allow_origins.len(), 2);
    assert_eq!(cors.allow_methods, ["GET", "POST"]);
    assert_eq!(cors.allow_headers, ["X-Token"]);
    assert_eq!(cors.expose_headers, ["X-Total", "X-Page"]);
    assert!(!cors.allow_credentials);
    assert_eq!(cors.max_age, Some(60));
}

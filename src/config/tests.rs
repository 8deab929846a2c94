use super::*;

const MINIMAL: &str = r#"
[[services]]
name = "web"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"
"#;

fn issues(text: &str) -> Vec<String> {
    match Config::parse(text, "test.toml") {
        Err(ConfigError::Invalid { issues, .. }) => issues.iter().map(Issue::to_string).collect(),
        other => panic!("expected validation issues, got {other:?}"),
    }
}

fn syntax(text: &str) -> String {
    match Config::parse(text, "test.toml") {
        Err(e @ ConfigError::Syntax { .. }) => e.to_string(),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = Config::parse(MINIMAL, "t").unwrap();
    assert_eq!(c.admin.listen, "127.0.0.1:9901".parse().unwrap());
    assert_eq!(c.runtime.drain_timeout, Duration::from_secs(30));
    assert_eq!(c.runtime.workers, None);
    let s = &c.services[0];
    assert_eq!(s.protocol, Protocol::Tcp);
    assert_eq!(s.scheduler, Scheduler::Rr);
    assert_eq!(s.connect_timeout, Duration::from_secs(3));
    assert_eq!(s.connect_attempts.get(), 3);
    assert_eq!(s.idle_timeout, Duration::from_secs(600));
    assert_eq!(s.max_connections, None);
    assert_eq!(s.proxy_protocol, ProxyProtocol::None);
    assert_eq!(s.endpoints[0].weight, 1);
    assert_eq!(s.mh_table_size, DEFAULT_MH_TABLE_SIZE);
    assert_eq!(s.upgrades, [Arc::from("websocket")]);
}

#[test]
fn upgrades_are_protocol_names_and_never_h2c() {
    let text = MINIMAL.replace(
        "name = \"web\"",
        "name = \"web\"\nupgrades = [\"WebSocket\", \"h2c\", \"a b\"]",
    );
    assert_eq!(
        issues(&text),
        vec![
            "services[0].upgrades[1]: must be a protocol name (a token), and not h2c",
            "services[0].upgrades[2]: must be a protocol name (a token), and not h2c",
        ]
    );
    let text = MINIMAL.replace(
        "name = \"web\"",
        "name = \"web\"\nupgrades = [\"WebSocket\"]",
    );
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!(c.services[0].upgrades, [Arc::from("websocket")]);
}

#[test]
fn udp_services_default_to_a_short_idle_timeout() {
    let c = Config::parse(
        &MINIMAL.replace("name = \"web\"", "name = \"dns\"\nprotocol = \"udp\""),
        "t",
    )
    .unwrap();
    assert_eq!(c.services[0].idle_timeout, Duration::from_secs(30));
}

#[test]
fn durations_are_human_readable() {
    let text = MINIMAL.replace(
        "name = \"web\"",
        "name = \"web\"\nconnect_timeout = \"250ms\"\nidle_timeout = \"2m\"",
    );
    let c = Config::parse(&text, "t").unwrap();
    assert_eq!(c.services[0].connect_timeout, Duration::from_millis(250));
    assert_eq!(c.services[0].idle_timeout, Duration::from_secs(120));
}

#[test]
fn bad_addresses_are_reported_with_their_path() {
    let text = r#"
[[services]]
name = "a"
listen = "127.0.0.1:1"
[[services.endpoints]]
address = "127.0.0.1:2"
[[services]]
name = "b"
listen = "nowhere"
[[services.endpoints]]
address = "10.0.0.1"
[[services.endpoints]]
address = "10.0.0.2:80"
weight = 99999999999
"#;
    assert_eq!(
        issues(text),
        vec![
            "services[1].listen: invalid socket address \"nowhere\" (want ip:port)",
            "services[1].endpoints[0].address: invalid socket address \"10.0.0.1\" (want ip:port)",
            "services[1].endpoints[1].weight: weight 99999999999 is out of range 0..=65535",
        ]
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let e = syntax(&MINIMAL.replace("listen =", "listne = \"x\"\nlisten ="));
    assert!(e.contains("services[0]") && e.contains("listne"), "{e}");
}

#[test]
fn malformed_toml_is_a_syntax_error() {
    let e = syntax("[[services]\nname = ");
    assert!(e.starts_with("test.toml: "), "{e}");
}

#[test]
fn unknown_scheduler_names_the_key() {
    let e = syntax(&MINIMAL.replace("name = \"web\"", "name = \"web\"\nscheduler = \"fastest\""));
    assert!(
        e.contains("services[0].scheduler") && e.contains("fastest"),
        "{e}"
    );
}

#[test]
fn duplicate_listen_addresses_and_names_are_rejected() {
    let text = format!("{MINIMAL}{}", MINIMAL.replace("9001", "9002"));
    assert_eq!(
        issues(&text),
        vec![
            "services[1].name: duplicate name \"web\" (first used by services[0])",
            "services[1].listen: tcp 127.0.0.1:8080 is already used by services[0]",
        ]
    );
}

#[test]
fn same_port_for_tcp_and_udp_is_fine() {
    let udp = MINIMAL.replace("name = \"web\"", "name = \"web-udp\"\nprotocol = \"udp\"");
    assert!(Config::parse(&format!("{MINIMAL}{udp}"), "t").is_ok());
}

#[test]
fn admin_address_conflicts_with_a_service() {
    let text = format!("[admin]\nlisten = \"127.0.0.1:8080\"\n{MINIMAL}");
    assert_eq!(
        issues(&text),
        vec!["services[0].listen: tcp 127.0.0.1:8080 is already used by admin.listen"]
    );
}

#[test]
fn zero_endpoints_and_duplicates_are_rejected() {
    let none = "[[services]]\nname = \"x\"\nlisten = \"127.0.0.1:1\"\n";
    assert_eq!(
        issues(none),
        vec!["services[0].endpoints: a service needs at least one endpoint"]
    );
    let dup = format!("{MINIMAL}[[services.endpoints]]\naddress = \"127.0.0.1:9001\"\n");
    assert_eq!(
        issues(&dup),
        vec!["services[0].endpoints[1].address: duplicate endpoint 127.0.0.1:9001"]
    );
}

#[test]
fn maglev_table_size_must_be_a_large_enough_prime() {
    let mh = |size: &str| {
        MINIMAL.replace(
            "name = \"web\"",
            &format!("name = \"web\"\nscheduler = \"mh\"\nmh_table_size = {size}"),
        )
    };
    assert!(Config::parse(&mh("65537"), "t").is_ok());
    assert_eq!(
        issues(&mh("65536")),
        vec!["services[0].mh_table_size: 65536 must be a prime between 2 and 16777213"]
    );
    assert_eq!(
        issues(&mh("97")),
        vec![
            "services[0].mh_table_size: 97 is too small for 1 endpoints: use a prime of at least 100"
        ]
    );
    let rr = MINIMAL.replace("name = \"web\"", "name = \"web\"\nmh_table_size = 65537");
    assert_eq!(
        issues(&rr),
        vec!["services[0].mh_table_size: only used by scheduler \"mh\""]
    );
}

#[test]
fn limits_and_names_are_checked() {
    let text = MINIMAL.replace(
        "name = \"web\"",
        "name = \"we b\"\nconnect_attempts = 0\nconnect_timeout = \"0s\"\nmax_flows = 0",
    );
    assert_eq!(
        issues(&text),
        vec![
            "services[0].name: invalid name \"we b\": use 1-63 letters, digits, '-', '_' or '.'",
            "services[0].connect_attempts: must be between 1 and 100",
            "services[0].connect_timeout: must be longer than 0s",
            "services[0].max_flows: must be at least 1",
        ]
    );
}

#[test]
fn proxy_protocol_is_tcp_only() {
    let text = MINIMAL.replace(
        "name = \"web\"",
        "name = \"web\"\nprotocol = \"udp\"\nproxy_protocol = \"v2\"",
    );
    assert_eq!(
        issues(&text),
        vec!["services[0].proxy_protocol: PROXY protocol is only supported for tcp services"]
    );
}

#[test]
fn every_example_config_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            // kubernetes*.toml run beside the Kubernetes source (certificates from Secrets).
            let kube = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("kubernetes"));
            let loaded = if kube {
                Config::load_for_kubernetes(&path)
            } else {
                Config::load(&path)
            };
            loaded.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected example configs in {}", dir.display());
}

#[test]
fn an_empty_file_is_rejected() {
    assert_eq!(
        syntax("# only a comment\n\n"),
        "test.toml: .: the file is empty"
    );
}

#[test]
fn uniqueness_is_checked_with_file_positions_even_on_broken_services() {
    let bad = "[[services]]\nname = \"bad\"\nlisten = \"127.0.0.1:7\"\n";
    let text = format!("{bad}{MINIMAL}{}", MINIMAL.replace("9001", "9002"));
    assert_eq!(
        issues(&text),
        vec![
            "services[0].endpoints: a service needs at least one endpoint",
            "services[2].name: duplicate name \"web\" (first used by services[1])",
            "services[2].listen: tcp 127.0.0.1:8080 is already used by services[1]",
        ]
    );
}

#[test]
fn http_settings_parse_and_bad_values_name_their_path() {
    let http = "[http]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\"]\nforwarded = true\n\
        [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:80\"\n\
        [[routes]]\nhost = \"*.example.com\"\nservice = \"web\"\n";
    let c = Config::parse(&format!("{MINIMAL}{http}"), "t").unwrap();
    assert_eq!(c.http.trusted_proxies.len(), 2);
    let routes = crate::ingress::HttpRoutes::build(&c.http);
    assert!(routes.trusts("10.1.2.3".parse().unwrap()));
    assert!(routes.trusts("::ffff:192.0.2.1".parse().unwrap()));
    assert!(!routes.trusts("192.0.2.2".parse().unwrap()));
    let bad = "[http]\ntrusted_proxies = [\"10.0.0.0/33\"]\n[[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:80\"\ntls = true\n\
        [[routes]]\nhost = \"a..b\"\nservice = \"nope\"\n[[routes]]\npath = \"/x\"\nservice = \"web\"\n[[routes]]\npath = \"/x/\"\nservice = \"web\"\n";
    let found = issues(&format!("{MINIMAL}{bad}"));
    let has = |prefix: &str| found.iter().any(|i| i.starts_with(prefix));
    assert!(
        has("http.trusted_proxies[0]: invalid address or CIDR"),
        "{found:?}"
    );
    assert!(has("listeners[0].tls: a TLS listener needs"), "{found:?}");
    assert!(has("routes[0].host:"), "{found:?}");
    assert!(
        has("routes[0].service: no service named \"nope\""),
        "{found:?}"
    );
}

#[test]
fn duplicate_routes_are_config_errors() {
    let dup = "[[routes]]\npath = \"/x\"\nservice = \"web\"\n[[routes]]\npath = \"/x/\"\nservice = \"127.0.0.1:8080\"\n";
    let found = issues(&format!("{MINIMAL}{dup}"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("routes[1]: rules[1]"), "{found:?}");
}

#[test]
fn route_allow_lists_cookie_names_and_metric_names_are_checked() {
    let bad = "[[routes]]\npath = \"/a\"\nservice = \"web\"\nallow_sources = [\"10.0.0.0/8\", \"nope\"]\n\
        [[routes]]\npath = \"/b\"\nservice = \"web\"\nsticky_cookie = \"a b\"\n\
        [[routes]]\npath = \"/c\"\nservice = \"web\"\nname = \"\"\n";
    let found = issues(&format!("{MINIMAL}{bad}"));
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].starts_with("routes[0].allow_sources[1]: invalid address or CIDR \"nope\""));
    assert!(found[1].starts_with("routes[1].sticky_cookie: invalid cookie name \"a b\""));
    assert!(found[2].starts_with("routes[2].name: invalid route name"));
    let good = "[[routes]]\npath = \"/a\"\nservice = \"web\"\nallow_sources = [\"::1\"]\nsticky_cookie = \"SY_ID\"\n";
    let config = Config::parse(&format!("{MINIMAL}{good}"), "t").unwrap();
    assert_eq!(config.http.routes[0].name.as_ref(), "*/a");
    assert_eq!(
        config.http.routes[0].sticky_cookie.as_deref(),
        Some("SY_ID")
    );
}

#[test]
fn ipvs_settings_default_to_user_space_and_switchyard0() {
    let c = Config::parse(MINIMAL, "t").unwrap();
    assert_eq!(c.ipvs.dataplane, Dataplane::Userspace);
    assert_eq!(c.ipvs.interface, "switchyard0");
    assert_eq!(c.ipvs.forwarding, Forwarding::Masq);
    assert_eq!(c.services[0].ipvs.dataplane, Dataplane::Userspace);
}

#[test]
fn a_service_inherits_the_global_dataplane_unless_it_sets_its_own() {
    let text = r#"
[ipvs]
dataplane = "auto"
owned_ranges = ["10.96.0.0/12"]
forwarding = "route"
[[services]]
name = "a"
listen = "10.96.0.1:80"
scheduler = "mh"
scheduler_flags = ["fallback", "port"]
persistence_timeout = "5m"
[[services.endpoints]]
address = "10.0.0.1:80"
[[services]]
name = "b"
listen = "10.96.0.2:80"
dataplane = "userspace"
[[services.endpoints]]
address = "10.0.0.1:80"
"#;
    let c = Config::parse(text, "t").unwrap();
    let a = &c.services[0].ipvs;
    assert_eq!(a.dataplane, Dataplane::Auto);
    assert!(a.sched_fallback && a.sched_port);
    assert_eq!(a.persistence, Some(Duration::from_secs(300)));
    assert_eq!(c.services[1].ipvs.dataplane, Dataplane::Userspace);
    assert_eq!(c.ipvs.forwarding, Forwarding::Route);
    assert_eq!(c.ipvs.owned_ranges.len(), 1);
}

#[test]
fn bad_ipvs_settings_are_reported_with_their_paths() {
    let text = r#"
[ipvs]
interface = "a name that is far too long"
owned_ranges = ["nope"]
[[services]]
name = "a"
listen = "10.96.0.1:80"
scheduler_flags = ["port"]
[[services.endpoints]]
address = "10.0.0.1:80"
"#;
    let found = issues(text);
    assert!(
        found.iter().any(|i| i.starts_with("ipvs.interface")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|i| i.starts_with("ipvs.owned_ranges[0]")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|i| i.starts_with("services[0].scheduler_flags[0]")),
        "{found:?}"
    );
}

#[test]
fn http2_deadlines_have_defaults_and_zero_values_are_refused_by_path() {
    let listener = "[[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:80\"\n";
    let c = Config::parse(&format!("{MINIMAL}{listener}"), "t").unwrap();
    let l = &c.http.listeners[0];
    assert_eq!(l.h2_idle_timeout, Duration::from_secs(60));
    assert_eq!(l.h2_keepalive_interval, Some(Duration::from_secs(30)));
    assert_eq!(l.h2_keepalive_timeout, Duration::from_secs(10));
    let off = format!("{MINIMAL}{listener}h2_keepalive_interval = \"0s\"\n");
    let c = Config::parse(&off, "t").unwrap();
    assert_eq!(c.http.listeners[0].h2_keepalive_interval, None);
    let zero = format!(
        "{MINIMAL}{listener}h2_idle_timeout = \"0s\"\nh2_keepalive_timeout = \"0s\"\n{}",
        listener.replace("web", "b").replace(":80", ":81")
    );
    assert_eq!(
        issues(&zero),
        vec![
            "listeners[0].h2_idle_timeout: must be longer than 0s",
            "listeners[0].h2_keepalive_timeout: must be longer than 0s",
        ]
    );
    let bad = format!("{MINIMAL}{listener}h2_idle_timeout = \"soon\"\n");
    let error = syntax(&bad);
    assert!(error.contains("listeners[0].h2_idle_timeout"), "{error}");
}

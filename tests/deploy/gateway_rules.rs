//! The standard-channel CRDs' validation (v1.4: OpenAPI limits, patterns and CEL rules) for
//! the Gateway API objects of `gateway_api.rs`, so a YAML the API server would refuse fails
//! here first. Each assertion names the rule it stands for.

use crate::gateway_api::{
    GatewayClassSpec, GatewaySpec, HttpRouteSpec, Object, PathType, Protocol, Rule, TlsMode,
    is_controller_name, is_dns_label, is_header_name, is_hostname,
};
use std::collections::HashSet;

const GROUP_VERSION: &str = "gateway.networking.k8s.io/v1";

fn port_ok(port: i64) -> bool {
    (1..=65535).contains(&port)
}

pub(crate) fn validate_class(class: &Object<GatewayClassSpec>, origin: &str) {
    let at = format!("{origin}: GatewayClass {}", class.metadata.name);
    assert_eq!(class.api_version, GROUP_VERSION, "{at}");
    assert!(class.metadata.namespace.is_none(), "{at}: cluster-scoped");
    assert!(
        is_controller_name(&class.spec.controller_name),
        "{at}: controllerName must be DOMAIN/PATH"
    );
    let description = class.spec.description.as_deref().unwrap_or_default();
    assert!(description.len() <= 64, "{at}: description maxLength 64");
}

pub(crate) fn validate_gateway(gw: &Object<GatewaySpec>, origin: &str) {
    let at = format!("{origin}: Gateway {}", gw.metadata.name);
    assert_eq!(gw.api_version, GROUP_VERSION, "{at}");
    assert!(gw.metadata.namespace.is_some(), "{at}: namespaced");
    let listeners = &gw.spec.listeners;
    assert!(
        (1..=64).contains(&listeners.len()),
        "{at}: 1 to 64 listeners"
    );
    let mut names = HashSet::new();
    let mut triples = HashSet::new();
    for l in listeners {
        let at = format!("{at}: listener {}", l.name);
        assert!(is_dns_label(&l.name), "{at}: name is a SectionName");
        assert!(names.insert(&l.name), "{at}: listener names must be unique");
        assert!(port_ok(l.port), "{at}: port 1-65535");
        let hostname = l.hostname.as_deref();
        assert!(hostname.is_none_or(is_hostname), "{at}: hostname pattern");
        assert!(
            triples.insert((l.port, l.protocol as u8, hostname)),
            "{at}: combination of port, protocol and hostname must be unique"
        );
        match l.protocol {
            Protocol::Http | Protocol::Tcp | Protocol::Udp => {
                assert!(
                    l.tls.is_none(),
                    "{at}: tls must not be specified for HTTP/TCP/UDP"
                );
            }
            Protocol::Https | Protocol::Tls => {
                let tls = l.tls.as_ref().unwrap_or_else(|| {
                    panic!("{at}: tls must be specified for protocols HTTPS and TLS")
                });
                let mode = tls.mode.as_ref().unwrap_or(&TlsMode::Terminate);
                if l.protocol == Protocol::Https {
                    assert_eq!(mode, &TlsMode::Terminate, "{at}: HTTPS terminates TLS");
                }
                if mode == &TlsMode::Terminate {
                    assert!(
                        (1..=64).contains(&tls.certificate_refs.len()),
                        "{at}: certificateRefs must be specified when mode is Terminate"
                    );
                }
                for r in &tls.certificate_refs {
                    assert_eq!(
                        r.group.as_deref().unwrap_or_default(),
                        "",
                        "{at}: core group"
                    );
                    assert_eq!(r.kind.as_deref().unwrap_or("Secret"), "Secret", "{at}");
                    assert!(is_hostname(&r.name), "{at}: Secret name");
                    assert!(r.namespace.as_deref().is_none_or(is_dns_label), "{at}");
                }
            }
        }
        if matches!(l.protocol, Protocol::Tcp | Protocol::Udp) {
            assert!(
                hostname.is_none(),
                "{at}: hostname must be empty for TCP and UDP"
            );
        }
    }
}

pub(crate) fn validate_route(route: &Object<HttpRouteSpec>, origin: &str) {
    let at = format!("{origin}: HTTPRoute {}", route.metadata.name);
    assert_eq!(route.api_version, GROUP_VERSION, "{at}");
    assert!(route.metadata.namespace.is_some(), "{at}: namespaced");
    let spec = &route.spec;
    assert!(spec.parent_refs.len() <= 32, "{at}: parentRefs maxItems 32");
    for p in &spec.parent_refs {
        assert!(p.port.is_none_or(port_ok), "{at}: parentRef port");
        assert!(p.section_name.as_deref().is_none_or(is_dns_label), "{at}");
        assert!(p.namespace.as_deref().is_none_or(is_dns_label), "{at}");
        assert!(p.group.is_none() && p.kind.is_none() || p.kind.as_deref() == Some("Gateway"));
    }
    assert!(spec.hostnames.len() <= 16, "{at}: hostnames maxItems 16");
    assert!(
        spec.hostnames.iter().all(|h| is_hostname(h)),
        "{at}: hostname pattern"
    );
    assert!(spec.rules.len() <= 16, "{at}: rules maxItems 16");
    let matches: usize = spec.rules.iter().map(|r| r.matches.len()).sum();
    assert!(
        matches < 128,
        "{at}: fewer than 128 matches across all rules"
    );
    let mut rule_names = HashSet::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        if let Some(name) = &rule.name {
            assert!(is_dns_label(name), "{at}: rules[{i}].name pattern");
            assert!(rule_names.insert(name), "{at}: rule names must be unique");
        }
        validate_rule(rule, &format!("{at}: rules[{i}]"));
    }
}

fn validate_rule(rule: &Rule, at: &str) {
    assert!(rule.matches.len() <= 64, "{at}: matches maxItems 64");
    for m in &rule.matches {
        if let Some(path) = &m.path {
            let v = &path.value;
            assert!(
                v.starts_with('/') && v.len() <= 1024,
                "{at}: path must be absolute"
            );
            if path.type_ != PathType::RegularExpression {
                for bad in ["//", "/./", "/../", "%2f", "%2F", "#"] {
                    assert!(!v.contains(bad), "{at}: path must not contain {bad}");
                }
                assert!(
                    !v.ends_with("/..") && !v.ends_with("/."),
                    "{at}: path ends in a dot segment"
                );
            }
        }
        assert!(m.headers.len() <= 16, "{at}: headers maxItems 16");
        let mut names = HashSet::new();
        for h in &m.headers {
            assert!(is_header_name(&h.name), "{at}: header name {:?}", h.name);
            assert!(
                names.insert(h.name.to_ascii_lowercase()),
                "{at}: header names unique"
            );
            assert!(
                !h.value.is_empty() && h.value.len() <= 4096,
                "{at}: header value"
            );
        }
    }
    assert!(rule.filters.len() <= 16, "{at}: filters maxItems 16");
    for f in &rule.filters {
        assert_eq!(
            f.type_, "RequestHeaderModifier",
            "{at}: filter types used here"
        );
        let m = f
            .request_header_modifier
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: filter.requestHeaderModifier must be specified"));
        assert!(
            m.set.len() <= 16 && m.add.len() <= 16 && m.remove.len() <= 16,
            "{at}"
        );
        let names = m.set.iter().chain(&m.add).map(|h| h.name.as_str());
        assert!(
            names
                .chain(m.remove.iter().map(String::as_str))
                .all(is_header_name),
            "{at}"
        );
        let values = m.set.iter().chain(&m.add).map(|h| h.value.len());
        assert!(
            values.into_iter().all(|n| (1..=4096).contains(&n)),
            "{at}: header value"
        );
    }
    assert!(
        rule.backend_refs.len() <= 16,
        "{at}: backendRefs maxItems 16"
    );
    for b in &rule.backend_refs {
        let service = b.group.as_deref().unwrap_or_default() == ""
            && b.kind.as_deref().unwrap_or("Service") == "Service";
        if service {
            assert!(
                b.port.is_some(),
                "{at}: must have port for Service reference"
            );
        }
        assert!(b.port.is_none_or(port_ok), "{at}: backendRef port");
        assert!(
            b.weight.is_none_or(|w| (0..=1_000_000).contains(&w)),
            "{at}: weight"
        );
        assert!(b.namespace.as_deref().is_none_or(is_dns_label), "{at}");
    }
}

//! Validation of `[[passthrough]]`: SNI names passed through undecrypted to a TCP service.
//!
//! Each problem is named with its path: a host that is not a DNS name or a one-label wildcard
//! (an IP address cannot be an SNI name), a host passed through twice on the same listener, a
//! missing or UDP service, a listener that does not exist or does not terminate TLS, and an
//! entry with no TLS listener to apply to.

use super::file::{RawConfig, RawPassthrough};
use super::validate::Issues;
use super::validate_http::resolve_service;
use super::{ListenerConfig, PassthroughConfig, Protocol, ServiceConfig};
use crate::ingress::HostPattern;
use std::collections::HashMap;
use std::sync::Arc;

/// The valid entries of `raw.passthrough`; problems go to `issues`.
pub(super) fn passthrough(
    raw: &RawConfig,
    services: &[ServiceConfig],
    listeners: &[ListenerConfig],
    issues: &mut Issues,
) -> Vec<PassthroughConfig> {
    // (host, listener or "" for all) → where it was first listed.
    let mut seen: HashMap<(HostPattern, Arc<str>), String> = HashMap::new();
    raw.passthrough
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let path = format!("passthrough[{i}]");
            let entry = one(p, &path, raw, services, listeners, issues)?;
            for (j, host) in entry.hosts.iter().enumerate() {
                let scopes: Vec<Arc<str>> = if entry.listeners.is_empty() {
                    listeners
                        .iter()
                        .filter(|l| l.tls)
                        .map(|l| Arc::clone(&l.name))
                        .collect()
                } else {
                    entry.listeners.clone()
                };
                for scope in scopes {
                    let here = format!("{path}.hosts[{j}]");
                    if let Some(first) = seen.get(&(host.clone(), Arc::clone(&scope))) {
                        issues.push(
                            &here,
                            format!(
                                "{host} is already passed through on listener {scope:?} by {first}"
                            ),
                        );
                        return None;
                    }
                    seen.insert((host.clone(), scope), here);
                }
            }
            Some(entry)
        })
        .collect()
}

fn one(
    p: &RawPassthrough,
    path: &str,
    raw: &RawConfig,
    services: &[ServiceConfig],
    listeners: &[ListenerConfig],
    issues: &mut Issues,
) -> Option<PassthroughConfig> {
    let before = issues.len();
    if p.hosts.is_empty() {
        issues.push(format!("{path}.hosts"), "list at least one host name");
    }
    let hosts: Vec<HostPattern> = p
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(j, h)| host(h, &format!("{path}.hosts[{j}]"), issues))
        .collect();
    let service = resolve_service(
        &p.service,
        &format!("{path}.service"),
        raw,
        services,
        issues,
    );
    if let Some(name) = &service
        && services
            .iter()
            .any(|s| &s.name == name && s.protocol != Protocol::Tcp)
    {
        issues.push(
            format!("{path}.service"),
            format!("service {name:?} is not a TCP service"),
        );
    }
    let mut named = Vec::new();
    for (j, name) in p.listeners.iter().enumerate() {
        match listeners.iter().find(|l| *l.name == **name) {
            Some(l) if l.tls => named.push(Arc::clone(&l.name)),
            Some(_) => issues.push(
                format!("{path}.listeners[{j}]"),
                format!("listener {name:?} does not terminate TLS (set tls = true)"),
            ),
            // A listener with problems of its own was reported already.
            None if raw.listeners.iter().any(|l| l.name == *name) => {}
            None => issues.push(
                format!("{path}.listeners[{j}]"),
                format!("no listener named {name:?}"),
            ),
        }
    }
    if p.listeners.is_empty() && !raw.listeners.iter().any(|l| l.tls) {
        issues.push(
            path,
            "no TLS listener to pass through on (add one with tls = true)",
        );
    }
    if issues.len() != before {
        return None;
    }
    Some(PassthroughConfig {
        hosts,
        service: service?,
        listeners: named,
        deep_wildcards: false,
    })
}

fn host(text: &str, path: &str, issues: &mut Issues) -> Option<HostPattern> {
    match HostPattern::parse(text) {
        Ok(HostPattern::Exact(name)) if name.is_ip() => {
            issues.push(
                path,
                format!("{text:?} is an IP address; SNI carries names only"),
            );
            None
        }
        Ok(pattern) => Some(pattern),
        Err(error) => {
            issues.push(path, error.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const BASE: &str = r#"
[[services]]
name = "db"
[[services.endpoints]]
address = "127.0.0.1:5432"
[[services]]
name = "dns"
protocol = "udp"
[[services.endpoints]]
address = "127.0.0.1:53"
[[listeners]]
name = "https"
listen = "127.0.0.1:443"
tls = true
[[listeners]]
name = "plain"
listen = "127.0.0.1:80"
"#;

    fn issues(extra: &str) -> Vec<String> {
        match Config::parse(&format!("{BASE}{extra}"), "t") {
            Err(ConfigError::Invalid { issues, .. }) => {
                issues.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected validation issues, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_entry_needs_no_certificate_and_applies_to_every_tls_listener() {
        let text = format!(
            "{BASE}[[passthrough]]\nhosts = [\"DB.example.com\", \"*.raw.example.com\"]\nservice = \"db\"\n"
        );
        let config = Config::parse(&text, "t").unwrap();
        let p = &config.http.passthrough[0];
        assert_eq!(p.hosts[0].to_string(), "db.example.com");
        assert_eq!(p.hosts[1].to_string(), "*.raw.example.com");
        assert_eq!(&*p.service, "db");
        assert!(p.listeners.is_empty());
    }

    #[test]
    fn bad_entries_are_named_with_their_paths() {
        let found = issues(
            "[[passthrough]]\nhosts = [\"10.0.0.1\", \"a..b\", \"ok.test\"]\nservice = \"nope\"\n\
             [[passthrough]]\nhosts = [\"u.test\"]\nservice = \"dns\"\nlisteners = [\"plain\", \"gone\"]\n\
             [[passthrough]]\nhosts = []\nservice = \"db\"\n",
        );
        let want = [
            "passthrough[0].hosts[0]: \"10.0.0.1\" is an IP address",
            "passthrough[0].hosts[1]:",
            "passthrough[0].service: no service named \"nope\"",
            "passthrough[1].service: service \"dns\" is not a TCP service",
            "passthrough[1].listeners[0]: listener \"plain\" does not terminate TLS",
            "passthrough[1].listeners[1]: no listener named \"gone\"",
            "passthrough[2].hosts: list at least one host name",
        ];
        for w in want {
            assert!(found.iter().any(|i| i.starts_with(w)), "{w}: {found:?}");
        }
        assert_eq!(found.len(), want.len(), "{found:?}");
    }

    #[test]
    fn a_host_passed_through_twice_on_one_listener_is_refused() {
        let found = issues(
            "[[passthrough]]\nhosts = [\"db.test\"]\nservice = \"db\"\n\
             [[passthrough]]\nhosts = [\"db.test\"]\nservice = \"db\"\nlisteners = [\"https\"]\n",
        );
        assert_eq!(
            found,
            [
                "passthrough[1].hosts[0]: db.test is already passed through on listener \"https\" by passthrough[0].hosts[0]"
            ]
        );
    }

    #[test]
    fn passthrough_without_a_tls_listener_is_refused() {
        let text = "[[services]]\nname = \"db\"\n[[services.endpoints]]\naddress = \"127.0.0.1:5432\"\n\
            [[passthrough]]\nhosts = [\"db.test\"]\nservice = \"db\"\n";
        match Config::parse(text, "t") {
            Err(ConfigError::Invalid { issues, .. }) => assert_eq!(
                issues[0].to_string(),
                "passthrough[0]: no TLS listener to pass through on (add one with tls = true)"
            ),
            other => panic!("{other:?}"),
        }
    }
}

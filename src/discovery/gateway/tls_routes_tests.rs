//! Table tests for the TLSRoute → passthrough mapping.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use kube::runtime::watcher::Event;
use serde_json::json;

fn store<K: kube::Resource + Clone + serde::de::DeserializeOwned>(
    items: &[serde_json::Value],
) -> Store<K> {
    let mut s = Store::default();
    s.apply(Event::Init);
    for i in items {
        s.apply(Event::InitApply(serde_json::from_value(i.clone()).unwrap()));
    }
    s.apply(Event::InitDone);
    s
}

/// Translates one TLSRoute (hostnames, backendRefs) against a Gateway whose listener `l`
/// (protocol, mode, hostname) is on port 443: the entries' hosts and service, and the verdict.
fn run(
    l: (&str, &str, Option<&str>),
    hosts: &[&str],
    backends: serde_json::Value,
) -> (Vec<(Vec<String>, String)>, Verdict) {
    let classes = store(&[json!({"metadata": {"name": "c"},
        "spec": {"controllerName": "ours"}})]);
    let mut listener = json!({"name": "l", "port": 443, "protocol": l.0,
        "tls": {"mode": l.1}});
    if let Some(h) = l.2 {
        listener["hostname"] = json!(h);
    }
    let gateways = store(&[json!({"metadata": {"name": "gw", "namespace": "ns"},
        "spec": {"gatewayClassName": "c", "listeners": [listener]}})]);
    let routes = store(&[json!({"metadata": {"name": "r", "namespace": "ns"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": hosts,
            "rules": [{"backendRefs": backends}]}})]);
    let services = store(&[
        json!({"metadata": {"name": "a", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}),
        json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}),
    ]);
    let listeners = [GatewayListener {
        name: Arc::from("gateway:ns/gw/l"),
        port: 443,
        tls: true,
        sections: Vec::new(),
    }];
    let input = Input {
        classes: &classes,
        gateways: &gateways,
        routes: &routes,
        grants: &Store::default(),
        namespaces: &Store::default(),
        services: &services,
        listeners: &listeners,
        controller: "ours",
    };
    let (out, mut verdicts) = translate(&input, &mut Reporter::default());
    let out = out
        .into_iter()
        .map(|p| {
            assert_eq!(p.listeners, vec![Arc::from("gateway:ns/gw/l")]);
            let hosts = p.hosts.iter().map(ToString::to_string).collect();
            (hosts, p.service.to_string())
        })
        .collect();
    (out, verdicts.remove(0).1)
}

const PASS: (&str, &str, Option<&str>) = ("TLS", "Passthrough", None);

fn to(name: &str) -> serde_json::Value {
    json!([{"name": name, "port": 80}])
}

#[test]
fn route_hostnames_are_intersected_with_the_listener_hostname() {
    let wild = ("TLS", "Passthrough", Some("*.test"));
    let cases: [(&[&str], &[&str]); 4] = [
        (&["db.test"], &["db.test"]),
        (&["db.test", "db.example"], &["db.test"]),
        (&["*.test"], &["*.test"]),
        (&["*.x.test"], &["*.x.test"]),
    ];
    for (hosts, want) in cases {
        let (out, v) = run(wild, hosts, to("a"));
        let service = out[0].1.clone();
        assert_eq!(
            out,
            vec![(want.iter().map(|h| h.to_string()).collect(), service)]
        );
        assert_eq!(v.parents[0].refused, None, "{hosts:?}");
    }
    let (out, v) = run(wild, &["db.example"], to("a"));
    assert!(out.is_empty());
    assert_eq!(v.parents[0].refused, Some("NoMatchingListenerHostname"));
}

#[test]
fn only_tls_passthrough_listeners_admit_tls_routes() {
    for l in [
        ("HTTPS", "Terminate", None),
        ("TLS", "Terminate", None),
        ("HTTP", "", None),
    ] {
        let (out, v) = run(l, &["db.test"], to("a"));
        assert!(out.is_empty(), "{l:?}");
        assert_eq!(v.parents[0].refused, Some("NotAllowedByListeners"), "{l:?}");
    }
    let (out, v) = run(PASS, &["db.test"], to("a"));
    assert_eq!(out.len(), 1);
    assert!(v.unsupported.is_none() && v.unresolved.is_none());
}

#[test]
fn a_route_without_any_hostname_is_unsupported() {
    let (out, v) = run(PASS, &[], to("a"));
    assert!(out.is_empty());
    assert!(v.unsupported.is_some());
}

#[test]
fn several_backends_use_the_first_that_resolves_and_say_so() {
    let two = json!([{"name": "missing", "port": 80}, {"name": "b", "port": 80},
        {"name": "a", "port": 80}, {"name": "a", "port": 80, "weight": 0}]);
    let (out, v) = run(PASS, &["db.test"], two);
    assert_eq!(out.len(), 1);
    assert!(out[0].1.contains('b'), "{out:?}");
    assert!(v.unsupported.is_some());
    assert_eq!(v.unresolved, Some("BackendNotFound"));
    let kind = json!([{"name": "a", "port": 80, "kind": "ConfigMap"}]);
    let (out, v) = run(PASS, &["db.test"], kind);
    assert!(out.is_empty());
    assert_eq!(v.unresolved, Some("InvalidKind"));
    assert!(v.unsupported.is_none());
}

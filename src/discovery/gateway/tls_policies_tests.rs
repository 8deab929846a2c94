//! Table tests for BackendTLSPolicy resolution: targets and sectionName, conflicts, CA refs.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};

fn store<K: kube::Resource + Clone + serde::de::DeserializeOwned>(items: &[Value]) -> Store<K> {
    let mut s = Store::default();
    s.apply(Event::Init);
    for i in items {
        s.apply(Event::InitApply(serde_json::from_value(i.clone()).unwrap()));
    }
    s.apply(Event::InitDone);
    s
}

/// A CA certificate's PEM.
fn ca_pem() -> String {
    rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
        .unwrap()
        .cert
        .pem()
}

/// A policy `name` created at `second`, for `targets` (name, sectionName), validated with
/// `validation`.
fn policy(name: &str, second: u32, targets: &[(&str, Option<&str>)], validation: Value) -> Value {
    let refs: Vec<Value> = targets
        .iter()
        .map(|(n, s)| json!({"group": "", "kind": "Service", "name": n, "sectionName": s}))
        .collect();
    json!({"metadata": {"name": name, "namespace": "ns",
            "creationTimestamp": format!("2025-01-01T00:00:{second:02}Z")},
        "spec": {"targetRefs": refs, "validation": validation}})
}

fn run(policies: &[Value]) -> Resolved {
    let services = store(&[json!({"metadata": {"name": "svc", "namespace": "ns"},
        "spec": {"ports": [{"name": "https", "port": 443}, {"name": "alt", "port": 8443}]}})]);
    let maps = store(&[
        json!({"metadata": {"name": "ca", "namespace": "ns"}, "data": {"ca.crt": ca_pem()}}),
        json!({"metadata": {"name": "empty", "namespace": "ns"}, "data": {}}),
    ]);
    resolve(&store(policies), &maps, &services)
}

fn verdict(r: &Resolved, name: &str) -> (Option<&'static str>, Option<&'static str>) {
    let v = &r.verdicts.iter().find(|(k, _)| k.1 == name).unwrap().1;
    (v.refused, v.unresolved)
}

fn with_ca(hostname: &str) -> Value {
    json!({"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "ca"}],
        "hostname": hostname})
}

#[test]
fn the_older_policy_for_the_same_target_wins_and_the_other_is_conflicted() {
    let r = run(&[
        policy("newer", 2, &[("svc", None)], with_ca("new.test")),
        policy("older", 1, &[("svc", None)], with_ca("old.test")),
    ]);
    assert_eq!(verdict(&r, "older"), (None, None));
    assert_eq!(verdict(&r, "newer"), (Some("Conflicted"), None));
    assert_eq!(r.upstream["ns/svc:https"].sni, "old.test");
    assert_eq!(r.upstream["ns/svc:alt"].sni, "old.test");
}

#[test]
fn a_port_named_by_section_takes_its_own_policy_and_both_are_accepted() {
    let r = run(&[
        policy("named", 1, &[("svc", Some("https"))], with_ca("named.test")),
        policy("whole", 2, &[("svc", None)], with_ca("whole.test")),
    ]);
    assert_eq!(verdict(&r, "named"), (None, None));
    assert_eq!(verdict(&r, "whole"), (None, None));
    assert_eq!(r.upstream["ns/svc:https"].sni, "named.test");
    assert_eq!(r.upstream["ns/svc:alt"].sni, "whole.test");
}

#[test]
fn unusable_ca_refs_refuse_the_policy_with_the_specs_reasons() {
    let refs = |r: Value| json!({"caCertificateRefs": [r], "hostname": "h.test"});
    let r = run(&[
        policy(
            "missing",
            1,
            &[("svc", Some("https"))],
            refs(json!({"group": "", "kind": "ConfigMap", "name": "nope"})),
        ),
        policy(
            "malformed",
            2,
            &[("svc", Some("alt"))],
            refs(json!({"group": "", "kind": "ConfigMap", "name": "empty"})),
        ),
    ]);
    let bad_ref = (
        Some("NoValidCACertificate"),
        Some("InvalidCACertificateRef"),
    );
    assert_eq!(verdict(&r, "missing"), bad_ref);
    assert_eq!(verdict(&r, "malformed"), bad_ref);
    assert_eq!(
        r.upstream["ns/svc:https"].trust, None,
        "requests answer 502"
    );
    let r = run(&[policy(
        "kind",
        1,
        &[("svc", None)],
        refs(json!({"group": "", "kind": "Secret", "name": "ca"})),
    )]);
    assert_eq!(
        verdict(&r, "kind"),
        (Some("NoValidCACertificate"), Some("InvalidKind"))
    );
}

#[test]
fn system_roots_hostname_and_subject_alt_names_are_read() {
    let r = run(&[policy(
        "sys",
        1,
        &[("svc", None)],
        json!({
        "wellKnownCACertificates": "System", "hostname": "abc.example.com",
        "subjectAltNames": [{"type": "Hostname", "hostname": "abc.example.com"},
            {"type": "URI", "uri": "spiffe://abc.example.com/test-identity"}]}),
    )]);
    assert_eq!(verdict(&r, "sys"), (None, None));
    let tls = &r.upstream["ns/svc:https"];
    assert_eq!(tls.trust, Some(Trust::System));
    assert_eq!(tls.sni, "abc.example.com");
    assert_eq!(
        tls.names,
        [
            SubjectName::Dns("abc.example.com".into()),
            SubjectName::Uri("spiffe://abc.example.com/test-identity".into())
        ]
    );
    assert_eq!(r.verdicts[0].1.services.len(), 2);
}

//! HTTPRoute status through the fake API server and the real binary: per parent of ours,
//! `Accepted` and `ResolvedRefs` with each reason we write, written by a merge patch that
//! keeps other controllers' entries, once (no write loop), and again when the verdict changes.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::poll;
use gateway_support::{Setup, route, setup, to};
use serde_json::{Value, json};
use std::time::Duration;

const OURS: &str = "switchyard.dev/gateway-controller";

/// Our entry's (Accepted, ResolvedRefs) as (status, reason) pairs.
fn ours(s: &Setup, ns: &str, name: &str) -> Option<[(String, String); 2]> {
    let r = s.fake.get("HTTPRoute", ns, name)?;
    let entry = r["status"]["parents"]
        .as_array()?
        .iter()
        .find(|p| p["controllerName"] == OURS)?
        .clone();
    let cond = |ty: &str| {
        let c = entry["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == ty)?
            .clone();
        Some((
            c["status"].as_str()?.to_owned(),
            c["reason"].as_str()?.to_owned(),
        ))
    };
    Some([cond("Accepted")?, cond("ResolvedRefs")?])
}

async fn status_is(
    s: &Setup,
    ns: &str,
    name: &str,
    accepted: (&str, &str),
    resolved: (&str, &str),
) {
    let want = [
        (accepted.0.to_owned(), accepted.1.to_owned()),
        (resolved.0.to_owned(), resolved.1.to_owned()),
    ];
    let ok = poll(Duration::from_secs(10), || async {
        ours(s, ns, name).as_ref() == Some(&want)
    })
    .await;
    assert!(
        ok,
        "{ns}/{name}: want {want:?}, got {:?}; log:\n{}",
        ours(s, ns, name),
        s.proxy.log()
    );
}

const OK: (&str, &str) = ("True", "Accepted");
const RESOLVED: (&str, &str) = ("True", "ResolvedRefs");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_route_is_written_once_beside_other_controllers_entries() {
    let s = setup(None, "Same").await;
    let mut r = route("infra", "web", &["web.example"], to("v1"));
    r["metadata"]["generation"] = json!(4);
    let theirs = json!({"parentRef": {"name": "elsewhere"}, "controllerName": "example.net/x",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}]});
    r["status"] = json!({"parents": [theirs.clone()]});
    s.fake.apply(&r);
    status_is(&s, "infra", "web", OK, RESOLVED).await;
    let stored = s.fake.get("HTTPRoute", "infra", "web").unwrap();
    let parents = stored["status"]["parents"].as_array().unwrap().clone();
    assert_eq!(parents.len(), 2);
    assert_eq!(
        parents[0], theirs,
        "other controllers' entries kept as read"
    );
    let mine: &Value = &parents[1];
    assert_eq!(
        mine["parentRef"],
        json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "infra", "name": "gw"})
    );
    assert_eq!(mine["conditions"][0]["observedGeneration"], 4);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        s.fake.status_patches("httproutes").len(),
        1,
        "no write loop"
    );
    // A verdict that changes is written again.
    s.fake.delete("Service", "infra", "v1");
    status_is(&s, "infra", "web", OK, ("False", "BackendNotFound")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reason_is_written() {
    let s = setup(Some("*.wildcard.io"), "Same").await;
    s.fake.apply(&route("apps", "other-ns", &[], to("v3")));
    let mut section = route("infra", "section", &[], to("v1"));
    section["spec"]["parentRefs"][0]["sectionName"] = json!("https");
    s.fake.apply(&section);
    s.fake
        .apply(&route("infra", "hosts", &["non.matching.com"], to("v1")));
    s.fake.apply(&route("infra", "missing", &[], to("nope")));
    let kind = json!([{"backendRefs": [{"kind": "ConfigMap", "name": "v1", "port": 80}]}]);
    s.fake.apply(&route("infra", "kind", &[], kind));
    let cross = json!([{"backendRefs": [{"name": "v3", "namespace": "apps", "port": 80}]}]);
    s.fake.apply(&route("infra", "cross", &[], cross));
    let filter = json!([{"filters": [{"type": "ExtensionRef", "extensionRef": {"name": "x"}}],
                         "backendRefs": [{"name": "v1", "port": 80}]}]);
    s.fake.apply(&route("infra", "filter", &[], filter));
    status_is(
        &s,
        "apps",
        "other-ns",
        ("False", "NotAllowedByListeners"),
        RESOLVED,
    )
    .await;
    status_is(
        &s,
        "infra",
        "section",
        ("False", "NoMatchingParent"),
        RESOLVED,
    )
    .await;
    status_is(
        &s,
        "infra",
        "hosts",
        ("False", "NoMatchingListenerHostname"),
        RESOLVED,
    )
    .await;
    status_is(&s, "infra", "missing", OK, ("False", "BackendNotFound")).await;
    status_is(&s, "infra", "kind", OK, ("False", "InvalidKind")).await;
    status_is(&s, "infra", "cross", OK, ("False", "RefNotPermitted")).await;
    status_is(
        &s,
        "infra",
        "filter",
        ("False", "UnsupportedValue"),
        RESOLVED,
    )
    .await;
}

/// A parent that is not ours (another class's Gateway, or no such Gateway) gets no entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_not_ours_get_no_entry() {
    let s = setup(None, "Same").await;
    let mut r = route("infra", "nowhere", &[], to("v1"));
    r["spec"]["parentRefs"][0]["name"] = json!("no-such-gateway");
    s.fake.apply(&r);
    s.fake.apply(&route("infra", "web", &[], to("v1")));
    status_is(&s, "infra", "web", OK, RESOLVED).await;
    let stored = s.fake.get("HTTPRoute", "infra", "nowhere").unwrap();
    assert!(stored["status"].is_null(), "{stored}");
}

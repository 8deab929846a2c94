//! The Gateway API source (`run --kubernetes --gateway-api`) through the fake API server and
//! the real binary: the kinds are watched only with the flag, GatewayClasses of our
//! controller are `Accepted` (with `supportedFeatures`) by a merge patch of `/status`, written
//! once and again on a generation bump (conformance GatewayClassObservedGenerationBump) or when
//! the features claimed differ, and classes of other controllers are left alone.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, poll};
use serde_json::{Value, json};
use std::time::Duration;

const OURS: &str = "switchyard.dev/gateway-controller";

fn gateway_class(name: &str, controller: &str, generation: i64) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name, "generation": generation},
        "spec": {"controllerName": controller, "description": "unknown fields are ignored"},
    })
}

/// The `Accepted` condition of a stored GatewayClass.
fn accepted(fake: &FakeKube, name: &str) -> Option<Value> {
    let class = fake.get("GatewayClass", "", name)?;
    let conditions = class["status"]["conditions"].as_array()?.clone();
    conditions.into_iter().find(|c| c["type"] == "Accepted")
}

async fn accepted_at(fake: &FakeKube, name: &str, generation: i64) -> bool {
    poll(Duration::from_secs(10), || async {
        accepted(fake, name).is_some_and(|c| c["observedGeneration"] == generation)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_gateway_class_is_accepted_once_and_others_are_left_alone() {
    let fake = FakeKube::start().await;
    fake.apply(&gateway_class("switchyard", OURS, 1));
    fake.apply(&gateway_class("other", "example.net/other-controller", 1));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    assert!(
        accepted_at(&fake, "switchyard", 1).await,
        "log:\n{}",
        proxy.log()
    );
    let cond = accepted(&fake, "switchyard").unwrap();
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "Accepted");
    let class = fake.get("GatewayClass", "", "switchyard").unwrap();
    let features = class["status"]["supportedFeatures"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        features.contains(&json!({"name": "HTTPRouteQueryParamMatching"})),
        "{features:?}"
    );
    for core in [
        "Gateway",
        "HTTPRoute",
        "ReferenceGrant",
        "GRPCRoute",
        "TLSRoute",
    ] {
        assert!(features.contains(&json!({ "name": core })), "{features:?}");
    }
    // The patch came back as a watch event; nothing more is written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.status_patches("gatewayclasses").len(), 1);
    assert!(fake.get("GatewayClass", "", "other").unwrap()["status"].is_null());
    for kind in [
        "gatewayclasses",
        "gateways",
        "httproutes",
        "referencegrants",
    ] {
        assert!(fake.watches(kind) >= 1, "{kind} watched");
    }
}

/// A class an older version accepted, claiming fewer features, at the same generation: the
/// list is written again (an upgrade changes it without a generation bump).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_claimed_by_an_older_version_are_replaced() {
    let fake = FakeKube::start().await;
    let mut class = gateway_class("switchyard", OURS, 1);
    class["status"] = json!({"conditions": [{"type": "Accepted", "status": "True",
        "reason": "Accepted", "message": "served by switchyard", "observedGeneration": 1,
        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "supportedFeatures": [{"name": "HTTPRouteQueryParamMatching"}]});
    fake.apply(&class);
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    let claims = |name: &str| {
        let c = fake
            .get("GatewayClass", "", "switchyard")
            .unwrap_or_default();
        let fs = c["status"]["supportedFeatures"].as_array().cloned();
        fs.unwrap_or_default().contains(&json!({ "name": name }))
    };
    let ok = poll(Duration::from_secs(10), || async { claims("HTTPRoute") }).await;
    assert!(ok, "log:\n{}", proxy.log());
    let since = accepted(&fake, "switchyard").unwrap()["lastTransitionTime"].clone();
    assert_eq!(since, "2026-01-01T00:00:00Z", "still accepted since then");
}

/// Conformance GatewayClassObservedGenerationBump: after a spec change, the Accepted
/// condition carries the new generation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_bump_is_acknowledged() {
    let fake = FakeKube::start().await;
    fake.apply(&gateway_class("switchyard", OURS, 1));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    assert!(
        accepted_at(&fake, "switchyard", 1).await,
        "log:\n{}",
        proxy.log()
    );
    let mut class = fake.get("GatewayClass", "", "switchyard").unwrap();
    let since = accepted(&fake, "switchyard").unwrap()["lastTransitionTime"].clone();
    class["metadata"]["generation"] = json!(2);
    class["spec"]["description"] = json!("changed");
    fake.apply(&class);
    assert!(
        accepted_at(&fake, "switchyard", 2).await,
        "log:\n{}",
        proxy.log()
    );
    let cond = accepted(&fake, "switchyard").unwrap();
    assert_eq!(
        cond["lastTransitionTime"], since,
        "still accepted since then"
    );
    assert_eq!(fake.status_patches("gatewayclasses").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_name_is_a_flag() {
    let fake = FakeKube::start().await;
    fake.apply(&gateway_class("mine", "example.com/mine", 3));
    fake.apply(&gateway_class("default", OURS, 1));
    let args = [
        "--gateway-api",
        "--gateway-class-controller",
        "example.com/mine",
    ];
    let proxy = Proxy::start(&fake, &args);
    proxy.wait_ready().await;
    assert!(accepted_at(&fake, "mine", 3).await, "log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(accepted(&fake, "default").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_the_gateway_kinds_are_not_watched() {
    let fake = FakeKube::start().await;
    fake.apply(&gateway_class("switchyard", OURS, 1));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.lists("gatewayclasses") + fake.watches("gatewayclasses"),
        0
    );
    assert!(fake.status_patches("gatewayclasses").is_empty());
}

/// Readiness waits for the Gateway API kinds' first listing too: with a CRD missing
/// (404), `/readyz` stays 503 until it is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_gateway_listings() {
    let fake = FakeKube::start().await;
    fake.set_missing("referencegrants", true);
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    let ready = || async {
        fake_kube::harness::admin_get(proxy.admin, "/readyz")
            .await
            .map(|r| r.0)
    };
    let up = poll(Duration::from_secs(10), || async {
        ready().await == Some(503)
    })
    .await;
    assert!(up, "log:\n{}", proxy.log());
    let listed = poll(Duration::from_secs(10), || async {
        fake.lists("gatewayclasses") >= 1 && fake.lists("services") >= 1
    })
    .await;
    assert!(listed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ready().await,
        Some(503),
        "not ready without ReferenceGrants"
    );
    fake.set_missing("referencegrants", false);
    proxy.wait_ready().await;
}

#[test]
fn the_flag_without_kubernetes_is_ignored_with_a_warning() {
    let out = std::process::Command::new(fake_kube::harness::BIN)
        .args([
            "run",
            "--gateway-api",
            "--config",
            "/nonexistent/switchyard.toml",
        ])
        .env_remove("SWITCHYARD_KUBERNETES")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--gateway-api is ignored without --kubernetes"),
        "{err}"
    );
    assert!(err.contains("cannot read"), "then runs as usual: {err}");
}

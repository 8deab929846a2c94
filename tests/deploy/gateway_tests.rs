//! The Gateway API in `deploy/`: the chart with `gatewayAPI` on, off and `auto` (by the CRDs
//! the cluster serves), the `deploy/gateway-api` overlay against the chart, and the flags
//! against the binary (the example: `gateway_example.rs`).

use crate::checks::{Expect, check};
use crate::gateway_checks::CONTROLLER;
use crate::objects::{first_difference, yaml_docs};
use crate::render::{chart_output, gateway_overlay, render_chart_for};
use crate::skip::skip;
use crate::{BIN, repo};
use serde_json::{Value, json};
use std::process::Command;

/// What `.Capabilities.APIVersions` has on a cluster with the standard CRDs.
const CRDS: &[&str] = &["gateway.networking.k8s.io/v1/GatewayClass"];

const NO_RENDERER: &str = "neither helm nor helm-python-sdk (pip install helm-python-sdk)";

fn expect(gateway: Option<&'static str>) -> Expect {
    Expect {
        ipvs: false,
        external_tls_secret: false,
        gateway,
    }
}

#[test]
fn chart_gateway_api_is_on_when_the_crds_exist() {
    let test = "chart_gateway_api_is_on_when_the_crds_exist";
    // (values, the cluster has the CRDs, served)
    let cases = [
        (json!({}), false, false),
        (json!({}), true, true),
        (json!({"gatewayAPI": {"enabled": false}}), true, false),
        (json!({"gatewayAPI": {"enabled": true}}), false, true),
        (json!({"gatewayAPI": {"enabled": "auto"}}), true, true),
    ];
    for (values, crds, on) in cases {
        let api: &[&str] = if crds { CRDS } else { &[] };
        let Some(objects) = render_chart_for(&values, api) else {
            return skip(test, NO_RENDERER);
        };
        check(&objects, &expect(on.then_some(CONTROLLER)));
        let classes: Vec<&Value> = objects.gateway_classes.iter().collect();
        if on {
            assert_eq!(classes.len(), 1, "{}", objects.origin);
            assert_eq!(classes[0]["metadata"]["name"], "switchyard");
        } else {
            assert!(classes.is_empty(), "{}", objects.origin);
        }
    }
}

#[test]
fn chart_gateway_api_values() {
    let test = "chart_gateway_api_values";
    let values = json!({"gatewayAPI": {
        "controllerName": "example.com/edge", "gatewayClassName": "edge"}});
    let Some(objects) = render_chart_for(&values, CRDS) else {
        return skip(test, NO_RENDERER);
    };
    check(&objects, &expect(Some("example.com/edge")));
    assert_eq!(objects.gateway_classes[0]["metadata"]["name"], "edge");

    let values = json!({"gatewayAPI": {"enabled": true, "createGatewayClass": false}});
    let objects = render_chart_for(&values, &[]).unwrap();
    check(&objects, &expect(Some(CONTROLLER)));
    assert!(objects.gateway_classes.is_empty());

    let out = chart_output(&json!({"gatewayAPI": {"enabled": "yes"}}), CRDS).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "gatewayAPI.enabled: yes rendered");
    assert!(
        stderr.contains("gatewayAPI.enabled: want true, false or auto"),
        "{stderr}"
    );
}

/// `kubectl apply -k deploy/gateway-api` gives what the chart gives on a cluster with the CRDs.
#[test]
fn gateway_overlay_matches_the_chart() {
    let overlay = gateway_overlay();
    check(
        &overlay,
        &Expect {
            external_tls_secret: true,
            ..expect(Some(CONTROLLER))
        },
    );
    let Some(chart) = render_chart_for(&json!({}), CRDS) else {
        return skip("gateway_overlay_matches_the_chart", NO_RENDERER);
    };
    for doc in overlay.raw.iter().filter(|d| d["kind"] != "Namespace") {
        let (kind, name) = (doc["kind"].as_str().unwrap(), &doc["metadata"]["name"]);
        let rendered = chart
            .raw(kind, name.as_str().unwrap())
            .unwrap_or_else(|| panic!("chart lacks {kind} {name}"));
        if let Some(at) = first_difference(doc, rendered, String::new()) {
            panic!("{kind} {name}: chart and deploy/gateway-api differ at {at}");
        }
    }
    // The chart: less the Namespace, plus the TLS Secret.
    assert_eq!(chart.raw.len(), overlay.raw.len());
}

#[test]
fn kustomize_renders_the_gateway_overlay() {
    let dir = repo().join("deploy/gateway-api");
    let Ok(out) = Command::new("kubectl").arg("kustomize").arg(&dir).output() else {
        return skip(
            "kustomize_renders_the_gateway_overlay",
            "kubectl is not installed",
        );
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rendered = yaml_docs(&String::from_utf8(out.stdout).unwrap(), "kubectl kustomize");
    let ours = gateway_overlay().raw;
    assert_eq!(rendered.len(), ours.len());
    for doc in &ours {
        let same = |d: &&Value| d["kind"] == doc["kind"] && d["metadata"] == doc["metadata"];
        let theirs = rendered.iter().find(same);
        let theirs = theirs.unwrap_or_else(|| panic!("kustomize lacks {}", doc["metadata"]));
        if let Some(at) = first_difference(doc, theirs, String::new()) {
            panic!(
                "{} {}: kustomize differs at {at}",
                doc["kind"], doc["metadata"]["name"]
            );
        }
    }
}

#[test]
fn chart_lints_clean_with_gateway_api() {
    let chart = repo().join("deploy/helm/switchyard");
    let helm = Command::new("helm")
        .args(["lint", "--strict", "--kube-version", "1.33.0"])
        .args(["--set", "gatewayAPI.enabled=true"])
        .arg(&chart)
        .output();
    let out = match helm {
        Ok(out) => out,
        Err(_) => match Command::new("python3")
            .arg(repo().join("deploy/helm/render.py"))
            .args(["--lint", r#"{"gatewayAPI": {"enabled": true}}"#])
            .output()
        {
            Ok(out) if out.status.code() != Some(3) => out,
            _ => return skip("chart_lints_clean_with_gateway_api", NO_RENDERER),
        },
    };
    assert!(
        out.status.success(),
        "helm lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The flags the chart and the overlay pass with the Gateway API on are ones the binary knows.
#[test]
fn gateway_api_flags_exist_in_the_binary() {
    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    if !help.contains("--gateway-api") {
        let why = "this build has no --gateway-api flag yet (the controller is another branch)";
        return skip("gateway_api_flags_exist_in_the_binary", why);
    }
    for flag in [
        "--gateway-api",
        "--gateway-class-controller",
        "SWITCHYARD_GATEWAY_API",
    ] {
        assert!(help.contains(flag), "switchyard run --help lacks {flag}");
    }
    // The default is the chart's and the overlay's.
    assert!(
        help.contains(CONTROLLER),
        "--gateway-class-controller default"
    );
}

//! deploy/prometheus and deploy/grafana: the alert rules pass `promtool check rules` and their
//! unit tests (`promtool test rules`), the PrometheusRule carries the same rules, and every
//! metric the rules and the Grafana dashboard query is one the binary exports.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod skip;

use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;
use skip::skip;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn promtool(args: &[&str]) -> Option<std::process::Output> {
    Command::new("promtool")
        .args(args)
        .current_dir(repo().join("deploy/prometheus"))
        .output()
        .ok()
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let Some(check) = promtool(&["check", "rules", "switchyard-rules.yml"]) else {
        return skip(
            "alert_rules_pass_promtool_check_and_their_unit_tests",
            "promtool is not installed (apt-get install prometheus)",
        );
    };
    let said = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(check.status.success(), "{}", said(&check));
    assert!(
        said(&check).contains("SUCCESS: 7 rules found"),
        "{}",
        said(&check)
    );
    let test = promtool(&["test", "rules", "switchyard-rules-test.yml"]).unwrap();
    assert!(test.status.success(), "{}", said(&test));
    // Every alert has a unit test.
    let tests = read("deploy/prometheus/switchyard-rules-test.yml");
    for alert in alerts() {
        assert!(
            tests.contains(&format!("alertname: {alert}")),
            "{alert} has no unit test"
        );
    }
}

fn rules() -> Yaml {
    serde_yaml_ng::from_str(&read("deploy/prometheus/switchyard-rules.yml")).unwrap()
}

fn alerts() -> Vec<String> {
    rules()["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_prometheus_rule_manifest_carries_the_same_rules() {
    let manifest: Yaml =
        serde_yaml_ng::from_str(&read("deploy/prometheus/prometheusrule.yaml")).unwrap();
    assert_eq!(
        manifest["apiVersion"].as_str(),
        Some("monitoring.coreos.com/v1")
    );
    assert_eq!(manifest["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(manifest["spec"]["groups"], rules()["groups"]);
    let wanted = [
        "SwitchyardHighErrorRatio",
        "SwitchyardAllEndpointsBenched",
        "SwitchyardCertificateExpiringSoon",
        "SwitchyardReloadFailed",
        "SwitchyardKubeWatchRestarting",
        "SwitchyardKubeTableStale",
        "SwitchyardIpvsSyncErrors",
    ];
    assert_eq!(alerts(), wanted);
}

/// Every `"switchyard_…"` metric name constant in `src/`.
fn exported() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo().join("src"), &mut files);
    let mut names = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines().filter(|l| l.contains("&str")) {
            names.extend(metric_names(line));
        }
        // Names split over two lines: `pub const X: &str =\n    "switchyard_…";`
        for pair in text.lines().collect::<Vec<_>>().windows(2) {
            if pair[0].trim_start().starts_with("pub const") && pair[0].ends_with('=') {
                names.extend(metric_names(pair[1]));
            }
        }
    }
    names
}

/// The `switchyard_…` names in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("switchyard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// A queried name, histogram suffixes taken off when the family is known.
fn family<'a>(name: &'a str, known: &BTreeSet<String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && known.contains(base)
        {
            return base;
        }
    }
    name
}

fn exprs(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                match v {
                    Json::String(s) if k == "expr" || k == "definition" => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn the_dashboard_and_the_rules_query_only_metrics_the_binary_exports() {
    let known = exported();
    for name in [
        "switchyard_build_info",
        "switchyard_certificate_expiry_timestamp_seconds",
        "switchyard_endpoints_benched",
        "switchyard_http_request_duration_seconds",
    ] {
        assert!(known.contains(name), "{name} not found in src/: {known:?}");
    }
    let dashboard: Json = serde_json::from_str(&read("deploy/grafana/switchyard.json")).unwrap();
    assert_eq!(dashboard["uid"], "switchyard");
    let mut queries = Vec::new();
    exprs(&dashboard, &mut queries);
    assert!(queries.len() > 20, "{queries:?}");
    let rules = read("deploy/prometheus/switchyard-rules.yml");
    let mut used = BTreeSet::new();
    for query in queries.iter().map(String::as_str).chain([rules.as_str()]) {
        for name in metric_names(query) {
            let base = family(&name, &known);
            assert!(
                known.contains(base),
                "{name} is not a metric the binary exports"
            );
            used.insert(base.to_owned());
        }
    }
    // What the issue asks the dashboard to show.
    for topic in [
        "switchyard_http_requests_total",
        "switchyard_http_request_duration_seconds",
        "switchyard_endpoints",
        "switchyard_reloads_total",
        "switchyard_kube_publish_latency_seconds",
        "switchyard_ipvs_syncs_total",
        "switchyard_certificate_expiry_timestamp_seconds",
    ] {
        assert!(used.contains(topic), "nothing shows {topic}");
    }
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(
        panels.iter().any(|p| p["type"] == "heatmap"),
        "a latency heatmap"
    );
    let ids: BTreeSet<u64> = panels.iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
}

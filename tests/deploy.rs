//! `deploy/`: the Kubernetes manifests, the Helm chart, the systemd unit and the Dockerfile.
//!
//! Every YAML document is read into its k8s-openapi type and written back: a field the type
//! does not know (a typo, a wrong level) makes the two differ, which is what
//! `kubectl apply --validate=strict` would refuse. Then the objects are checked against each
//! other and against the binary: the ServiceAccount, ClusterRole and ConfigMap the DaemonSet
//! names exist, the role grants what the Kubernetes source needs, the ConfigMap's TOML passes
//! `switchyard check` (with its certificate), the probes hit the admin port, and the grace
//! period covers the preStop sleep plus `drain_timeout`.
//!
//! The chart is rendered with `helm template` or, without helm, `deploy/helm/render.py`
//! (Helm's engine from the `helm-python-sdk` package); with neither, and without kubectl or
//! systemd-analyze, those tests print why and pass.
//!
//! The helpers live beside this file: `deploy/objects.rs` (YAML into typed objects),
//! `deploy/checks.rs` (the checks on one deployment) and `deploy/render.rs` (the manifests,
//! the Gateway API overlay and the chart rendering); the Gateway API's tests are in
//! `deploy/gateway_tests.rs` and `deploy/gateway_example.rs`, with its strict types (`deploy/gateway_api.rs`), the CRDs'
//! rules (`deploy/gateway_rules.rs`) and the checks on a deployment (`deploy/gateway_checks.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

#[path = "deploy/checks.rs"]
mod checks;
#[path = "deploy/gateway_api.rs"]
mod gateway_api;
#[path = "deploy/gateway_checks.rs"]
mod gateway_checks;
#[path = "deploy/gateway_example.rs"]
mod gateway_example;
#[path = "deploy/gateway_rules.rs"]
mod gateway_rules;
#[path = "deploy/gateway_tests.rs"]
mod gateway_tests;
#[path = "deploy/objects.rs"]
mod objects;
#[path = "deploy/render.rs"]
mod render;
mod skip;

use checks::{Expect, PLAIN, check};
use objects::{Objects, first_difference, one};
use render::{plain_manifests, render_chart};
use skip::skip;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn plain_manifests_are_valid_and_consistent() {
    let objects = plain_manifests();
    check(&objects, &PLAIN);
    let ds = &objects.daemon_sets[0];
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.host_network, Some(true));
    // The Secret the README tells people to create.
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    assert!(readme.contains("create secret tls switchyard-default-tls"));
    assert_eq!(
        one(&objects.namespaces, "Namespace", "plain")
            .metadata
            .name
            .as_deref(),
        Some("switchyard")
    );
}

#[test]
fn kustomize_renders_the_manifests() {
    let Ok(out) = Command::new("kubectl")
        .args([
            "kustomize",
            repo().join("deploy/kubernetes").to_str().unwrap(),
        ])
        .output()
    else {
        return skip(
            "kustomize_renders_the_manifests",
            "kubectl is not installed",
        );
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let objects = Objects::from_text("kubectl kustomize", &String::from_utf8(out.stdout).unwrap());
    check(&objects, &PLAIN);
}

/// The flags and environment variables that the DaemonSet, the chart and the systemd drop-in
/// pass are ones `switchyard run` knows, once it knows `--kubernetes` at all.
#[test]
fn deploy_flags_exist_in_the_binary() {
    let help = Command::new(BIN).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    if !help.contains("--kubernetes") {
        return skip(
            "deploy_flags_exist_in_the_binary",
            "this build has no --kubernetes flag yet",
        );
    }
    let files = [
        "deploy/kubernetes/daemonset.yaml",
        "deploy/helm/switchyard/templates/daemonset.yaml",
        "deploy/switchyard-kubernetes.conf",
        "deploy/gateway-api/daemonset-patch.yaml",
    ];
    // Those of the Gateway API are checked by gateway_api_flags_exist_in_the_binary, which
    // says when this build has none.
    let gateway_flags = ["--gateway-api", "--gateway-class-controller"];
    let gateway_known = help.contains("--gateway-api");
    let mut used = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
            let words = line.split(|c: char| c.is_whitespace() || c == '=' || c == '"');
            for word in words {
                let flag = word.starts_with("--") && word.len() > 2;
                if flag || (word.starts_with("SWITCHYARD_") && word != "SWITCHYARD_") {
                    used.push((file, word.to_owned()));
                }
            }
        }
    }
    assert!(
        used.iter()
            .any(|(_, w)| w == "SWITCHYARD_PUBLISH_STATUS_ADDRESS")
    );
    for (file, word) in used {
        if !gateway_known && gateway_flags.contains(&word.as_str()) {
            continue;
        }
        assert!(
            help.contains(&word),
            "{file}: switchyard run does not know {word}"
        );
    }
}

#[test]
fn chart_renders_the_same_objects_as_the_manifests() {
    let Some(chart) = render_chart(&serde_json::json!({})) else {
        return skip(
            "chart_renders_the_same_objects_as_the_manifests",
            "neither helm nor helm-python-sdk (pip install helm-python-sdk)",
        );
    };
    check(
        &chart,
        &Expect {
            ipvs: false,
            external_tls_secret: false,
            gateway: None,
        },
    );
    let plain = plain_manifests();
    for doc in &plain.raw {
        let (kind, name) = (
            doc["kind"].as_str().unwrap(),
            doc["metadata"]["name"].as_str().unwrap(),
        );
        if kind == "Namespace" {
            continue; // helm install --create-namespace
        }
        let rendered = chart
            .raw(kind, name)
            .unwrap_or_else(|| panic!("chart lacks {kind} {name}"));
        if let Some(at) = first_difference(doc, rendered, String::new()) {
            panic!("{kind} {name}: chart and deploy/kubernetes differ at {at}");
        }
    }
    assert_eq!(
        chart.raw.len(),
        plain.raw.len(),
        "chart: the manifests' objects, less the Namespace, plus the TLS Secret"
    );
}

#[test]
fn chart_options_render_valid_objects() {
    let variants = [
        serde_json::json!({"ipvs": {"enabled": true}, "hostNetwork": false}),
        serde_json::json!({
            "hostNetwork": false, "https": {"enabled": false}, "watchNamespace": "web",
            "labelSelector": "tier=edge", "drainTimeoutSeconds": 120, "admin": {"port": 19901},
            "extraConfig": "[http]\nforwarded = true\n", "ingressClass": {"name": "edge", "default": true},
        }),
        serde_json::json!({"https": {"http3": true}}),
    ];
    for values in variants {
        let Some(objects) = render_chart(&values) else {
            return skip(
                "chart_options_render_valid_objects",
                "neither helm nor helm-python-sdk",
            );
        };
        let ipvs = values["ipvs"]["enabled"] == true;
        check(
            &objects,
            &Expect {
                ipvs,
                external_tls_secret: false,
                gateway: None,
            },
        );
    }
    // `https.http3` turns HTTP/3 on for the TLS listener (and only there).
    let objects = render_chart(&serde_json::json!({"https": {"http3": true}})).unwrap();
    let text = objects.raw("ConfigMap", "switchyard-config").unwrap()["data"]["switchyard.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let config = switchyard::config::Config::parse(&text, "chart").unwrap();
    let http3: Vec<(&str, bool)> = config
        .http
        .listeners
        .iter()
        .map(|l| (l.name.as_ref(), l.http3))
        .collect();
    assert_eq!(http3, [("http", false), ("https", true)]);
    // A Secret named in values is used, not made.
    let values = serde_json::json!({"tls": {"defaultCertificate": {"secretName": "mine"}}});
    let objects = render_chart(&values).unwrap();
    assert!(objects.secrets.is_empty());
    let pod = objects.daemon_sets[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let secrets = pod
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.secret.as_ref());
    let names: Vec<_> = secrets.filter_map(|s| s.secret_name.as_deref()).collect();
    assert_eq!(names, ["mine"]);
    check(&objects, &PLAIN);
}

#[test]
fn chart_lints_clean() {
    let chart = repo().join("deploy/helm/switchyard");
    let helm = Command::new("helm")
        .args(["lint", "--strict", "--kube-version", "1.33.0"])
        .arg(&chart)
        .output();
    let out = match helm {
        Ok(out) => out,
        Err(_) => match Command::new("python3")
            .arg(repo().join("deploy/helm/render.py"))
            .arg("--lint")
            .output()
        {
            Ok(out) if out.status.code() != Some(3) => out,
            _ => return skip("chart_lints_clean", "neither helm nor helm-python-sdk"),
        },
    };
    assert!(
        out.status.success(),
        "helm lint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The unit and its drop-ins load without warnings (with the binary path pointed at the build).
#[test]
fn systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("systemd_unit_verifies", "systemd-analyze is not installed");
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("switchyard.service");
    let dropins = dir.path().join("switchyard.service.d");
    std::fs::create_dir(&dropins).unwrap();
    let copy = |from: &str, to: PathBuf| {
        let text = std::fs::read_to_string(repo().join(from)).unwrap();
        std::fs::write(to, text.replace("/usr/local/bin/switchyard", BIN)).unwrap();
    };
    copy("deploy/switchyard.service", unit.clone());
    for d in ["switchyard-kubernetes.conf", "switchyard-ipvs.conf"] {
        copy(&format!("deploy/{d}"), dropins.join(d));
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(dir.path().to_str().unwrap()) || l.contains("switchyard"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );
}

/// Every file the Dockerfile copies exists and passes the .dockerignore.
#[test]
fn dockerfile_copies_what_exists() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for src in &words[1..words.len() - 1] {
            assert!(
                repo().join(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
            let allowed = format!("!{}", src.trim_end_matches('/'));
            assert!(
                ignore.lines().any(|l| l.trim_end_matches('/') == allowed),
                ".dockerignore leaves out {src}"
            );
        }
    }
}

/// The Dockerfile passes hadolint.
#[test]
fn dockerfile_passes_hadolint() {
    match Command::new("hadolint")
        .arg(repo().join("Dockerfile"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "hadolint:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => skip("dockerfile_passes_hadolint", "hadolint is not installed"),
    }
}

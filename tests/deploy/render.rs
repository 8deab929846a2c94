//! Where the deployments come from: the plain manifests in `deploy/kubernetes` (as
//! `kustomization.yaml` lists them) and the Helm chart rendered with given values.

use crate::objects::{Objects, yaml_docs};
use crate::repo;
use serde_json::Value;
use std::process::{Command, Output};

/// The Gateway API example in `deploy/kubernetes`, not one of the kustomization's resources.
pub(crate) const EXAMPLE: &str = "gateway-example.yaml";

pub(crate) fn plain_manifests() -> Objects {
    let dir = repo().join("deploy/kubernetes");
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let k = &yaml_docs(&kustomization, "kustomization.yaml")[0];
    let mut objects = Objects {
        origin: "deploy/kubernetes".into(),
        ..Objects::default()
    };
    let mut listed = Vec::new();
    for file in k["resources"].as_array().expect("resources") {
        let file = file.as_str().unwrap();
        listed.push(file.to_owned());
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for doc in yaml_docs(&text, file) {
            objects.add(doc);
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // The Gateway API example is applied on its own (deploy/README.md).
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml" && f != EXAMPLE)
        .collect();
    on_disk.sort();
    listed.sort();
    assert_eq!(
        listed, on_disk,
        "kustomization.yaml resources vs the files beside it"
    );
    objects
}

/// `helm template`, or the same through Helm's engine in Python; None when neither exists.
pub(crate) fn render_chart(values: &Value) -> Option<Objects> {
    render_chart_for(values, &[])
}

/// [`render_chart`] for a cluster that serves `api_versions` (`--api-versions`, what
/// `.Capabilities.APIVersions` reports, e.g. `gateway.networking.k8s.io/v1/GatewayClass`).
pub(crate) fn render_chart_for(values: &Value, api_versions: &[&str]) -> Option<Objects> {
    let out = chart_output(values, api_versions)?;
    assert!(
        out.status.success(),
        "rendering the chart with {values}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let origin = format!("chart with {values} {api_versions:?}");
    Some(Objects::from_text(&origin, &text))
}

/// The output of rendering the chart, successful or not; None when it cannot be rendered.
pub(crate) fn chart_output(values: &Value, api_versions: &[&str]) -> Option<Output> {
    let chart = repo().join("deploy/helm/switchyard");
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("values.json");
    std::fs::write(&values_file, values.to_string()).unwrap();
    let api: Vec<String> = api_versions
        .iter()
        .flat_map(|a| ["--api-versions".to_owned(), (*a).to_owned()])
        .collect();
    let helm = Command::new("helm")
        .args([
            "template",
            "switchyard",
            chart.to_str().unwrap(),
            "--namespace",
            "switchyard",
            "--kube-version",
            "1.33.0",
        ])
        .arg("--values")
        .arg(&values_file)
        .args(&api)
        .output();
    match helm {
        Ok(out) => Some(out),
        Err(_) => {
            let out = Command::new("python3")
                .arg(repo().join("deploy/helm/render.py"))
                .arg(values.to_string())
                .args(["--kube-version", "1.33.0"])
                .args(&api)
                .output()
                .ok()?;
            (out.status.code() != Some(3)).then_some(out)
        }
    }
}

/// `deploy/gateway-api`, the kustomize overlay, rendered here as kustomize would: the
/// manifests of `deploy/kubernetes`, its own resources, and its JSON patches (`add` only)
/// applied to their targets.
pub(crate) fn gateway_overlay() -> Objects {
    let dir = repo().join("deploy/gateway-api");
    let text = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let k = &yaml_docs(&text, "deploy/gateway-api/kustomization.yaml")[0];
    let mut docs = Vec::new();
    for file in k["resources"].as_array().expect("resources") {
        match file.as_str().unwrap() {
            "../kubernetes" => docs.extend(plain_manifests().raw),
            file => {
                let text = std::fs::read_to_string(dir.join(file)).unwrap();
                docs.extend(yaml_docs(&text, file));
            }
        }
    }
    for patch in k["patches"].as_array().expect("patches") {
        let target = &patch["target"];
        let file = patch["path"].as_str().unwrap();
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let doc = docs
            .iter_mut()
            .find(|d| d["kind"] == target["kind"] && d["metadata"]["name"] == target["name"])
            .unwrap_or_else(|| panic!("{file}: no target {target}"));
        for op in yaml_docs(&text, file)[0].as_array().unwrap() {
            assert_eq!(op["op"], "add", "{file}: only add is rendered here");
            json_patch_add(doc, op["path"].as_str().unwrap(), op["value"].clone());
        }
    }
    let mut objects = Objects {
        origin: "deploy/gateway-api".into(),
        ..Objects::default()
    };
    for doc in docs {
        objects.add(doc);
    }
    objects
}

/// RFC 6902 `add`: `path` names an object member, an array index, or `-` (the end).
fn json_patch_add(doc: &mut Value, path: &str, value: Value) {
    let (parent, last) = path.rsplit_once('/').unwrap();
    let mut at = doc;
    for key in parent.split('/').skip(1) {
        at = match at {
            Value::Array(items) => &mut items[key.parse::<usize>().unwrap()],
            other => other
                .get_mut(key)
                .unwrap_or_else(|| panic!("{path}: no {key}")),
        };
    }
    match at {
        Value::Array(items) if last == "-" => items.push(value),
        Value::Array(items) => items.insert(last.parse().unwrap(), value),
        Value::Object(map) => {
            map.insert(last.to_owned(), value);
        }
        _ => panic!("{path}: not a container"),
    }
}

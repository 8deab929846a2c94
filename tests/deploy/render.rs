//! Where the deployments come from: the plain manifests in `deploy/kubernetes` (as
//! `kustomization.yaml` lists them) and the Helm chart rendered with given values.

use crate::objects::{Objects, yaml_docs};
use crate::repo;
use serde_json::Value;
use std::process::Command;

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
        .filter(|f| f.ends_with(".yaml") && f != "kustomization.yaml")
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
    let chart = repo().join("deploy/helm/switchyard");
    let dir = tempfile::tempdir().unwrap();
    let values_file = dir.path().join("values.json");
    std::fs::write(&values_file, values.to_string()).unwrap();
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
        .output();
    let out = match helm {
        Ok(out) => out,
        Err(_) => {
            let out = Command::new("python3")
                .arg(repo().join("deploy/helm/render.py"))
                .arg(values.to_string())
                .output()
                .ok()?;
            if out.status.code() == Some(3) {
                return None;
            }
            out
        }
    };
    assert!(
        out.status.success(),
        "rendering the chart with {values}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(Objects::from_text(&format!("chart with {values}"), &text))
}

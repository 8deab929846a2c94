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
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PodSpec, Secret, ServiceAccount,
};
use k8s_openapi::api::networking::v1::IngressClass;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use switchyard::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// What the Kubernetes source reads and writes: (API group, resource, verbs).
const NEEDED: &[(&str, &str, &[&str])] = &[
    ("", "services", &["get", "list", "watch"]),
    ("", "secrets", &["get", "list", "watch"]),
    (
        "discovery.k8s.io",
        "endpointslices",
        &["get", "list", "watch"],
    ),
    ("networking.k8s.io", "ingresses", &["get", "list", "watch"]),
    (
        "networking.k8s.io",
        "ingressclasses",
        &["get", "list", "watch"],
    ),
    ("networking.k8s.io", "ingresses/status", &["update"]),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn skip(test: &str, why: &str) {
    println!("{test}: skipped: {why}");
}

/// Every non-empty document of a YAML stream, as JSON.
fn yaml_docs(text: &str, origin: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| {
            <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{origin}: not YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Reads `doc` as a `T` and insists that writing it back gives `doc` again.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value, origin: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: {} {}: {e}", doc["kind"], doc["metadata"]["name"]));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(at) = first_difference(doc, &back, String::new()) {
        panic!(
            "{origin}: {} {}: {at}: a field its type does not know, or a wrong type",
            doc["kind"], doc["metadata"]["name"]
        );
    }
    object
}

/// Where two JSON values first differ, as a path (`spec.template.spec.containers[0].x`).
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .find_map(|(k, v)| match b.get(k) {
                Some(w) => first_difference(v, w, format!("{at}.{k}")),
                None => Some(format!("{at}.{k}")),
            })
            .or_else(|| {
                b.keys()
                    .find(|k| !a.contains_key(*k))
                    .map(|k| format!("{at}.{k}"))
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]"))),
        _ => (a != b).then_some(if at.is_empty() { ".".to_owned() } else { at }),
    }
}

/// The objects of one deployment (the plain manifests, or one rendering of the chart).
#[derive(Default)]
struct Objects {
    origin: String,
    /// Every document as JSON, to compare deployments with each other.
    raw: Vec<Value>,
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    bindings: Vec<ClusterRoleBinding>,
    ingress_classes: Vec<IngressClass>,
    config_maps: Vec<ConfigMap>,
    daemon_sets: Vec<DaemonSet>,
    secrets: Vec<Secret>,
}

impl Objects {
    fn add(&mut self, doc: Value) {
        let origin = self.origin.clone();
        match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
            (Some("v1"), Some("Namespace")) => self.namespaces.push(typed(&doc, &origin)),
            (Some("v1"), Some("ServiceAccount")) => {
                self.service_accounts.push(typed(&doc, &origin))
            }
            (Some("v1"), Some("ConfigMap")) => self.config_maps.push(typed(&doc, &origin)),
            (Some("v1"), Some("Secret")) => self.secrets.push(typed(&doc, &origin)),
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRole")) => {
                self.cluster_roles.push(typed(&doc, &origin))
            }
            (Some("rbac.authorization.k8s.io/v1"), Some("ClusterRoleBinding")) => {
                self.bindings.push(typed(&doc, &origin))
            }
            (Some("networking.k8s.io/v1"), Some("IngressClass")) => {
                self.ingress_classes.push(typed(&doc, &origin))
            }
            (Some("apps/v1"), Some("DaemonSet")) => self.daemon_sets.push(typed(&doc, &origin)),
            (api, kind) => panic!("{origin}: unexpected object {api:?} {kind:?}"),
        }
        self.raw.push(doc);
    }

    fn from_text(origin: &str, text: &str) -> Objects {
        let mut objects = Objects {
            origin: origin.to_owned(),
            ..Objects::default()
        };
        for doc in yaml_docs(text, origin) {
            objects.add(doc);
        }
        objects
    }

    fn raw(&self, kind: &str, name: &str) -> Option<&Value> {
        self.raw
            .iter()
            .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
    }
}

fn one<'a, T>(items: &'a [T], what: &str, origin: &str) -> &'a T {
    assert_eq!(items.len(), 1, "{origin}: want exactly one {what}");
    &items[0]
}

/// What a deployment is meant to look like; everything else is checked the same way.
struct Expect {
    /// Kernel IPVS mode: root with NET_ADMIN on the host network.
    ipvs: bool,
    /// The default certificate's Secret is created outside these objects.
    external_tls_secret: bool,
}

/// The plain manifests (and any non-root deployment whose TLS Secret is made outside).
const PLAIN: Expect = Expect {
    ipvs: false,
    external_tls_secret: true,
};

fn container(pod: &PodSpec) -> &Container {
    pod.containers
        .iter()
        .find(|c| c.name == "switchyard")
        .expect("a container named switchyard")
}

/// The value after `flag` in the container's args.
fn arg<'a>(c: &'a Container, flag: &str) -> Option<&'a str> {
    let args = c.args.as_deref().unwrap_or_default();
    let i = args.iter().position(|a| a == flag)?;
    args.get(i + 1).map(String::as_str)
}

fn named_port(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("probe port {name:?} is not a container port"))
                .container_port
        }
    }
}

/// Every check on one deployment's objects.
fn check(objects: &Objects, expect: &Expect) {
    let origin = objects.origin.as_str();
    let ds = one(&objects.daemon_sets, "DaemonSet", origin);
    let ns = ds
        .metadata
        .namespace
        .as_deref()
        .expect("DaemonSet namespace");
    let pod = ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let c = container(pod);

    check_rbac(objects, pod, ns);

    // IngressClass and the class the process serves.
    let class = one(&objects.ingress_classes, "IngressClass", origin);
    assert_eq!(
        arg(c, "--ingress-class"),
        class.metadata.name.as_deref(),
        "{origin}: --ingress-class"
    );
    assert!(
        c.args.iter().flatten().any(|a| a == "--kubernetes"),
        "{origin}"
    );

    let toml = check_config(objects, pod, ns);
    let config = Config::parse(&toml, origin).unwrap();
    check_pod(objects, expect, pod, &config);
    switchyard_check(objects, expect, pod, &toml);
}

/// The ServiceAccount, ClusterRole and binding the DaemonSet uses exist, match, and grant
/// what the Kubernetes source needs and no more.
fn check_rbac(objects: &Objects, pod: &PodSpec, ns: &str) {
    let origin = objects.origin.as_str();
    let sa = one(&objects.service_accounts, "ServiceAccount", origin);
    let sa_name = sa.metadata.name.as_deref().unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(sa_name),
        "{origin}"
    );
    assert_eq!(sa.metadata.namespace.as_deref(), Some(ns), "{origin}");
    let role = one(&objects.cluster_roles, "ClusterRole", origin);
    let binding = one(&objects.bindings, "ClusterRoleBinding", origin);
    assert_eq!(binding.role_ref.kind, "ClusterRole", "{origin}");
    assert_eq!(
        Some(&binding.role_ref.name),
        role.metadata.name.as_ref(),
        "{origin}"
    );
    assert!(
        binding
            .subjects
            .iter()
            .flatten()
            .any(|s| s.kind == "ServiceAccount"
                && s.name == sa_name
                && s.namespace.as_deref() == Some(ns)),
        "{origin}: the binding does not name ServiceAccount {ns}/{sa_name}"
    );
    let rules = role.rules.as_deref().unwrap_or_default();
    for (group, resource, verbs) in NEEDED {
        for verb in *verbs {
            let has = |list: &Option<Vec<String>>, want: &str| {
                list.iter().flatten().any(|x| x == want || x == "*")
            };
            assert!(
                rules.iter().any(|r| has(&r.api_groups, group)
                    && has(&r.resources, resource)
                    && r.verbs.iter().any(|v| v == verb)),
                "{origin}: the ClusterRole does not grant {verb} on {group:?} {resource}"
            );
        }
    }
    for rule in rules {
        for verb in &rule.verbs {
            let writes_status = rule
                .resources
                .iter()
                .flatten()
                .all(|r| r == "ingresses/status");
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str())
                    || (verb == "update" && writes_status),
                "{origin}: the ClusterRole grants more than needed: {verb} on {:?}",
                rule.resources
            );
        }
    }
}

/// The ConfigMap mounted where `--config` points is valid, and its admin port is what the
/// probes use; returns its TOML.
fn check_config(objects: &Objects, pod: &PodSpec, ns: &str) -> String {
    let origin = objects.origin.as_str();
    let c = container(pod);
    let config_path = arg(c, "--config").expect("--config");
    let (dir, file) = config_path.rsplit_once('/').unwrap();
    let mount = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == dir)
        .unwrap_or_else(|| panic!("{origin}: nothing is mounted at {dir}"));
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == mount.name)
        .unwrap();
    let cm_name = &volume
        .config_map
        .as_ref()
        .expect("config from a ConfigMap")
        .name;
    let cm = objects
        .config_maps
        .iter()
        .find(|m| m.metadata.name.as_ref() == Some(cm_name))
        .unwrap_or_else(|| panic!("{origin}: no ConfigMap {cm_name}"));
    assert_eq!(cm.metadata.namespace.as_deref(), Some(ns), "{origin}");
    let toml = &cm.data.as_ref().unwrap()[file];
    let config = Config::parse(toml, &format!("{origin}: ConfigMap {cm_name}"))
        .unwrap_or_else(|e| panic!("{e}"));

    let admin = i32::from(config.admin.listen.port());
    assert!(
        config.admin.listen.ip().is_unspecified(),
        "{origin}: kubelet probes the pod IP"
    );
    let ready = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref());
    let live = c.liveness_probe.as_ref().and_then(|p| p.http_get.as_ref());
    let (ready, live) = (ready.expect("readinessProbe"), live.expect("livenessProbe"));
    assert_eq!(ready.path.as_deref(), Some("/readyz"), "{origin}");
    assert_eq!(live.path.as_deref(), Some("/livez"), "{origin}");
    assert_eq!(
        named_port(c, &ready.port),
        admin,
        "{origin}: readiness port"
    );
    assert_eq!(named_port(c, &live.port), admin, "{origin}: liveness port");
    let ports: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
    for l in &config.http.listeners {
        assert!(
            ports.contains(&i32::from(l.listen.port())),
            "{origin}: listener {} port is not a containerPort",
            l.name
        );
    }

    toml.clone()
}

/// Shutdown timing, the status address and least privilege.
fn check_pod(objects: &Objects, expect: &Expect, pod: &PodSpec, config: &Config) {
    let origin = objects.origin.as_str();
    let c = container(pod);
    // Shutdown: the grace period covers the preStop sleep and the drain.
    let sleep = c
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_stop.as_ref())
        .and_then(|h| h.sleep.as_ref())
        .map_or(0, |s| s.seconds);
    assert!(sleep > 0, "{origin}: preStop sleep");
    let grace = pod
        .termination_grace_period_seconds
        .expect("terminationGracePeriodSeconds");
    let drain = i64::try_from(config.runtime.drain_timeout.as_secs()).unwrap();
    assert!(
        grace > sleep + drain,
        "{origin}: terminationGracePeriodSeconds {grace} <= preStop {sleep} + drain_timeout {drain}"
    );

    // Status address from the downward API, host or pod IP to match the network.
    let host_network = pod.host_network == Some(true);
    let publish = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "SWITCHYARD_PUBLISH_STATUS_ADDRESS")
        .expect("SWITCHYARD_PUBLISH_STATUS_ADDRESS");
    let field = publish
        .value_from
        .as_ref()
        .and_then(|v| v.field_ref.as_ref());
    let want = if host_network {
        "status.hostIP"
    } else {
        "status.podIP"
    };
    assert_eq!(field.map(|f| f.field_path.as_str()), Some(want), "{origin}");
    if host_network {
        assert_eq!(
            pod.dns_policy.as_deref(),
            Some("ClusterFirstWithHostNet"),
            "{origin}"
        );
    }

    // Least privilege.
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    assert!(requests.is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")));
    let pod_sc = pod.security_context.as_ref().expect("pod securityContext");
    let seccomp = pod_sc.seccomp_profile.as_ref().map(|s| s.type_.as_str());
    assert_eq!(seccomp, Some("RuntimeDefault"), "{origin}");
    let sc = c
        .security_context
        .as_ref()
        .expect("container securityContext");
    assert_eq!(sc.allow_privilege_escalation, Some(false), "{origin}");
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{origin}");
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(
        caps.drop.as_deref(),
        Some(&["ALL".to_owned()][..]),
        "{origin}"
    );
    let mut added = caps.add.clone().unwrap_or_default();
    added.sort();
    if expect.ipvs {
        assert!(host_network, "{origin}: IPVS needs the host network");
        assert_eq!(added, ["NET_ADMIN", "NET_BIND_SERVICE"], "{origin}");
    } else {
        assert_eq!(sc.run_as_non_root, Some(true), "{origin}");
        assert_eq!(pod_sc.run_as_non_root, Some(true), "{origin}");
        assert_ne!(pod_sc.run_as_user, Some(0), "{origin}");
        assert_eq!(added, ["NET_BIND_SERVICE"], "{origin}");
    }
}

/// Runs the real `switchyard check` on the ConfigMap's TOML, with each certificate taken from
/// the Secret mounted at its path (or, for a Secret made outside, a fresh self-signed pair).
fn switchyard_check(objects: &Objects, expect: &Expect, pod: &PodSpec, toml: &str) {
    let origin = objects.origin.as_str();
    let c = container(pod);
    // The Secret (name, key) behind a file path in the container.
    let secret_file = |path: &Path| {
        let path = path.to_str().unwrap();
        let (mount_dir, key) = path.rsplit_once('/').unwrap();
        let mount = c
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == mount_dir)
            .unwrap_or_else(|| panic!("{origin}: {path} is not in a mounted volume"));
        let volume = pod.volumes.iter().flatten().find(|v| v.name == mount.name);
        let secret = volume
            .and_then(|v| v.secret.as_ref())
            .expect("a Secret volume");
        assert_eq!(secret.default_mode, Some(0o440), "{origin}: key file mode");
        (secret.secret_name.clone().unwrap(), key.to_owned())
    };
    let dir = tempfile::tempdir().unwrap();
    let mut text = toml.to_owned();
    let config = Config::parse(toml, origin).unwrap();
    for (i, spec) in config.http.certificates.iter().enumerate() {
        let (name, cert_key) = secret_file(&spec.cert);
        let (key_name, key_key) = secret_file(&spec.key);
        assert_eq!(
            name, key_name,
            "{origin}: certificate and key from one Secret"
        );
        let secret = objects
            .secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(name.as_str()));
        let (cert_pem, key_pem) = match secret {
            Some(s) => {
                let data = s.data.as_ref().expect("Secret data");
                let file = |k: &str| {
                    let bytes = data
                        .get(k)
                        .unwrap_or_else(|| panic!("{origin}: Secret {name} has no {k}"));
                    bytes.0.clone()
                };
                (file(&cert_key), file(&key_key))
            }
            None => {
                assert!(expect.external_tls_secret, "{origin}: no Secret {name}");
                let made = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
                let key = made.signing_key.serialize_pem();
                (made.cert.pem().into_bytes(), key.into_bytes())
            }
        };
        for (path, pem, suffix) in [(&spec.cert, cert_pem, "crt"), (&spec.key, key_pem, "key")] {
            let file = dir.path().join(format!("{i}.{suffix}"));
            std::fs::write(&file, pem).unwrap();
            text = text.replace(path.to_str().unwrap(), file.to_str().unwrap());
        }
    }
    let toml_file = dir.path().join("switchyard.toml");
    std::fs::write(&toml_file, &text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config", toml_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{origin}: switchyard check failed:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn plain_manifests() -> Objects {
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
    ];
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
        assert!(
            help.contains(&word),
            "{file}: switchyard run does not know {word}"
        );
    }
}

/// `helm template`, or the same through Helm's engine in Python; None when neither exists.
fn render_chart(values: &Value) -> Option<Objects> {
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

#[test]
fn chart_renders_the_same_objects_as_the_manifests() {
    let Some(chart) = render_chart(&serde_json::json!({})) else {
        return skip(
            "chart",
            "neither helm nor helm-python-sdk (pip install helm-python-sdk)",
        );
    };
    check(
        &chart,
        &Expect {
            ipvs: false,
            external_tls_secret: false,
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
    ];
    for values in variants {
        let Some(objects) = render_chart(&values) else {
            return skip("chart options", "neither helm nor helm-python-sdk");
        };
        let ipvs = values["ipvs"]["enabled"] == true;
        check(
            &objects,
            &Expect {
                ipvs,
                external_tls_secret: false,
            },
        );
    }
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
    match Command::new("hadolint")
        .arg(repo().join("Dockerfile"))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "hadolint:\n{}",
            String::from_utf8_lossy(&out.stdout)
        ),
        Err(_) => skip("hadolint", "hadolint is not installed"),
    }
}

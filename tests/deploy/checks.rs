//! The checks on one deployment's objects, against each other and against the binary:
//! RBAC ([`check_rbac`]), the ConfigMap and probes ([`check_config`]), shutdown timing and
//! least privilege ([`check_pod`]), `switchyard check` on the mounted TOML
//! ([`switchyard_check`]) and the Gateway API part (`gateway_checks.rs`); [`check`] runs them
//! all.

use crate::BIN;
use crate::objects::{Objects, one};
use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::path::Path;
use std::process::Command;
use switchyard::config::Config;

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
    (
        "networking.k8s.io",
        "ingresses/status",
        &["update", "patch"],
    ),
];

/// What a deployment is meant to look like; everything else is checked the same way.
pub(crate) struct Expect {
    /// Kernel IPVS mode: root with NET_ADMIN on the host network.
    pub(crate) ipvs: bool,
    /// The default certificate's Secret is created outside these objects.
    pub(crate) external_tls_secret: bool,
    /// The Gateway API is served for this controller name (None: off).
    pub(crate) gateway: Option<&'static str>,
}

/// The plain manifests (and any non-root deployment whose TLS Secret is made outside).
pub(crate) const PLAIN: Expect = Expect {
    ipvs: false,
    external_tls_secret: true,
    gateway: None,
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
pub(crate) fn check(objects: &Objects, expect: &Expect) {
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
    crate::gateway_checks::check_gateway(objects, expect.gateway);

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
        let groups = rule.api_groups.as_deref().unwrap_or_default();
        let resources = rule.resources.as_deref().unwrap_or_default();
        if crate::gateway_checks::is_gateway_rule(groups, resources) {
            continue; // exactly as check_gateway wants
        }
        for verb in &rule.verbs {
            let writes_status = rule
                .resources
                .iter()
                .flatten()
                .all(|r| r == "ingresses/status");
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str())
                    || (["update", "patch"].contains(&verb.as_str()) && writes_status),
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

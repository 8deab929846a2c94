//! The Gateway API example, `deploy/kubernetes/gateway-example.yaml`: read into strict types
//! of the standard-channel CRDs and k8s-openapi types, checked object against object and
//! against deploy/README.md, and given to a cluster's API server when there is one.

use crate::gateway_api::{
    FromNamespaces, GatewaySpec, HeaderMatchType, HttpRouteSpec, Object, Protocol, strict,
};
use crate::gateway_checks::{CONTROLLER, check_class};
use crate::gateway_rules::{validate_gateway, validate_route};
use crate::objects::{typed, yaml_docs};
use crate::render::EXAMPLE;
use crate::repo;
use crate::skip::skip;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};
use std::process::Command;

fn example() -> Vec<Value> {
    let path = repo().join("deploy/kubernetes").join(EXAMPLE);
    yaml_docs(&std::fs::read_to_string(path).unwrap(), EXAMPLE)
}

/// Every object of the example as its CRD or k8s-openapi type takes it, and they fit
/// together: the class names our controller, the route attaches to both listeners of the
/// Gateway, its backends are the example's Services, whose pods the Deployments make.
#[test]
fn gateway_example_is_valid_and_complete() {
    let docs = example();
    let of = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    let want = [
        "Namespace",
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "Service",
        "Service",
    ];
    assert_eq!(kinds[..6], want, "{EXAMPLE}: kinds in apply order");
    assert_eq!(kinds[6..], ["Deployment", "Deployment"]);

    let ns: Namespace = typed(of("Namespace").next().unwrap(), EXAMPLE);
    let ns = ns.metadata.name.unwrap();
    let class = of("GatewayClass").next().unwrap();
    check_class(class, EXAMPLE, CONTROLLER);

    let gw: Object<GatewaySpec> = strict(of("Gateway").next().unwrap(), EXAMPLE);
    validate_gateway(&gw, EXAMPLE);
    assert_eq!(gw.kind, "Gateway");
    assert_eq!(gw.metadata.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(&gw.spec.gateway_class_name, &class["metadata"]["name"]);
    let listeners: Vec<_> = gw
        .spec
        .listeners
        .iter()
        .map(|l| (l.protocol, l.port))
        .collect();
    assert_eq!(listeners, [(Protocol::Http, 80), (Protocol::Https, 443)]);
    for l in &gw.spec.listeners {
        let from = l
            .allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref());
        assert_eq!(
            from.map(|n| &n.from),
            Some(&FromNamespaces::Same),
            "{EXAMPLE}"
        );
    }

    check_readme_secret(&gw, &ns);

    let route: Object<HttpRouteSpec> = strict(of("HTTPRoute").next().unwrap(), EXAMPLE);
    validate_route(&route, EXAMPLE);
    assert_eq!(route.metadata.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(route.spec.parent_refs[0].name, gw.metadata.name);
    for l in &gw.spec.listeners {
        assert!(route.spec.hostnames.contains(l.hostname.as_ref().unwrap()));
    }
    check_example_features(&route.spec);

    check_backends(&route.spec, &docs, &ns);
}

/// Every backendRef of the route is a Service of the example, on a port it has, whose named
/// targetPort is a container port of the Deployment whose pods it selects.
fn check_backends(route: &HttpRouteSpec, docs: &[Value], ns: &str) {
    let services: Vec<Service> = docs
        .iter()
        .filter(|d| d["kind"] == "Service")
        .map(|d| typed(d, EXAMPLE))
        .collect();
    let deployments: Vec<Deployment> = docs
        .iter()
        .filter(|d| d["kind"] == "Deployment")
        .map(|d| typed(d, EXAMPLE))
        .collect();
    for b in route.rules.iter().flat_map(|r| &r.backend_refs) {
        let at = format!("{EXAMPLE}: backendRef {}", b.name);
        let svc = services
            .iter()
            .find(|s| s.metadata.name.as_ref() == Some(&b.name));
        let svc = svc.unwrap_or_else(|| panic!("{at}: no such Service"));
        assert_eq!(svc.metadata.namespace.as_deref(), Some(ns), "{at}");
        let spec = svc.spec.as_ref().unwrap();
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| i64::from(p.port) == b.port.unwrap());
        let target = port
            .unwrap_or_else(|| panic!("{at}: no port {:?}", b.port))
            .target_port
            .clone();
        let selector = spec.selector.as_ref().unwrap();
        let dep = deployments.iter().find(|d| {
            let labels = d
                .spec
                .as_ref()
                .unwrap()
                .template
                .metadata
                .as_ref()
                .unwrap()
                .labels
                .as_ref();
            selector
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
        });
        let dep = dep.unwrap_or_else(|| panic!("{at}: no Deployment's pods match the Service"));
        assert_eq!(dep.metadata.namespace.as_deref(), Some(ns), "{at}");
        let pod = dep.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let Some(IntOrString::String(name)) = target else {
            panic!("{at}: named targetPort")
        };
        let container_port = pod.containers[0]
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_ref() == Some(&name));
        assert!(container_port.is_some(), "{at}: no container port {name}");
    }
}

/// The HTTPS listener's certificate is a Secret of the Gateway's namespace, which the
/// commands of deploy/README.md (and the file's comment) create.
fn check_readme_secret(gw: &Object<GatewaySpec>, ns: &str) {
    let https = &gw.spec.listeners[1];
    let cert = &https.tls.as_ref().unwrap().certificate_refs[0];
    assert_eq!(cert.namespace, None, "{EXAMPLE}: no ReferenceGrant needed");
    // The Secret the file's comment and deploy/README.md tell people to create.
    let create = format!("kubectl -n {ns} create secret tls {} ", cert.name);
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    assert!(readme.contains(&create), "deploy/README.md: {create}");
}

/// The route shows what deploy/README.md says it shows: a path match, a header match, a
/// weighted split and a RequestHeaderModifier (set, add and remove).
fn check_example_features(spec: &HttpRouteSpec) {
    let rules = &spec.rules;
    let matches = || rules.iter().flat_map(|r| &r.matches);
    assert!(matches().any(|m| m.path.as_ref().is_some_and(|p| p.value != "/")));
    let header = matches()
        .flat_map(|m| &m.headers)
        .next()
        .expect("a header match");
    assert_eq!(header.type_, Some(HeaderMatchType::Exact));
    let split = rules
        .iter()
        .find(|r| r.backend_refs.len() == 2)
        .expect("a split");
    let weights: Vec<_> = split.backend_refs.iter().map(|b| b.weight).collect();
    assert_eq!(weights, [Some(90), Some(10)]);
    assert_ne!(split.backend_refs[0].name, split.backend_refs[1].name);
    let modifier = split
        .filters
        .iter()
        .find_map(|f| f.request_header_modifier.as_ref());
    let modifier = modifier.expect("a RequestHeaderModifier on the split");
    assert!(!modifier.set.is_empty() && !modifier.add.is_empty() && !modifier.remove.is_empty());
}

/// With a cluster that has the CRDs (a kubeconfig pointing at one), the API server itself
/// takes the example (`kubectl apply --dry-run=server`).
#[test]
fn gateway_example_applies_to_a_cluster() {
    let test = "gateway_example_applies_to_a_cluster";
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--request-timeout=10s")
            .args(args)
            .output()
    };
    let Ok(crd) = kubectl(&["get", "crd", "httproutes.gateway.networking.k8s.io"]) else {
        return skip(test, "kubectl is not installed");
    };
    if !crd.status.success() {
        return skip(
            test,
            "no cluster with the Gateway API CRDs (kubectl get crd httproutes...)",
        );
    }
    // Server-side dry run creates nothing, so not the Namespace either: the namespaced
    // objects go to "default" for the check.
    let mut items = example();
    items.retain(|d| d["kind"] != "Namespace");
    for d in &mut items {
        if d["metadata"].get("namespace").is_some() {
            d["metadata"]["namespace"] = json!("default");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("example.json");
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    std::fs::write(&file, list.to_string()).unwrap();
    let out = kubectl(&["apply", "--dry-run=server", "-f", file.to_str().unwrap()]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A change that breaks one CRD rule, and what it breaks.
type Mutation = (&'static str, fn(&mut Value));

/// The strict types and rules above refuse what the API server would: each change to the
/// example breaks one CRD rule and must be caught.
#[test]
fn gateway_rules_refuse_invalid_objects() {
    let docs = example();
    let find = |kind: &str| docs.iter().find(|d| d["kind"] == kind).unwrap().clone();
    let (gw, route) = (find("Gateway"), find("HTTPRoute"));
    let gateway_ok = |doc: &Value| {
        let doc = doc.clone();
        std::panic::catch_unwind(move || {
            validate_gateway(&strict::<Object<GatewaySpec>>(&doc, "mutated"), "mutated");
        })
        .is_ok()
    };
    let route_ok = |doc: &Value| {
        let doc = doc.clone();
        std::panic::catch_unwind(move || {
            validate_route(&strict::<Object<HttpRouteSpec>>(&doc, "mutated"), "mutated");
        })
        .is_ok()
    };
    assert!(gateway_ok(&gw) && route_ok(&route), "the example itself");
    let broken_gateways: [Mutation; 5] = [
        ("unknown field", |g| {
            g["spec"]["listeners"][0]["hostnames"] = json!([])
        }),
        ("HTTPS without tls", |g| {
            g["spec"]["listeners"][1]
                .as_object_mut()
                .unwrap()
                .remove("tls");
        }),
        ("tls on HTTP", |g| {
            g["spec"]["listeners"][0]["tls"] = json!({"mode": "Terminate"})
        }),
        ("same listener name", |g| {
            g["spec"]["listeners"][1]["name"] = json!("http")
        }),
        ("protocol case", |g| {
            g["spec"]["listeners"][0]["protocol"] = json!("http")
        }),
    ];
    for (what, mutate) in broken_gateways {
        let mut doc = gw.clone();
        mutate(&mut doc);
        assert!(!gateway_ok(&doc), "Gateway with {what} was taken");
    }
    let broken_routes: [Mutation; 5] = [
        ("weight over 1000000", |r| {
            r["spec"]["rules"][1]["backendRefs"][0]["weight"] = json!(1_000_001)
        }),
        ("Service without port", |r| {
            r["spec"]["rules"][0]["backendRefs"][0]
                .as_object_mut()
                .unwrap()
                .remove("port");
        }),
        ("relative path", |r| {
            r["spec"]["rules"][0]["matches"][0]["path"]["value"] = json!("api")
        }),
        ("same rule name", |r| {
            r["spec"]["rules"][1]["name"] = json!("canary")
        }),
        ("bad header name", |r| {
            r["spec"]["rules"][0]["matches"][0]["headers"][0]["name"] = json!("X Canary")
        }),
    ];
    for (what, mutate) in broken_routes {
        let mut doc = route.clone();
        mutate(&mut doc);
        assert!(!route_ok(&doc), "HTTPRoute with {what} was taken");
    }
}

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use crate::discovery::Merger;
use k8s_openapi::api::core::v1::{ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IngressBackend, IngressRule, IngressServiceBackend,
    IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ObjectMeta;
use kube::runtime::watcher::Event;

fn meta(name: &str, rv: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some("ns".into()),
        resource_version: Some(rv.into()),
        ..ObjectMeta::default()
    }
}

fn service(name: &str) -> Service {
    Service {
        metadata: meta(name, "1"),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// An Ingress created at second `age`, routing `host` `/` to `svc` port `port`.
fn ingress(
    name: &str,
    age: i64,
    class: Option<&str>,
    host: &str,
    svc: &str,
    port: ServiceBackendPort,
) -> Ingress {
    let mut m = meta(name, "1");
    m.creation_timestamp = Some(Time(
        k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + age).unwrap(),
    ));
    Ingress {
        metadata: m,
        spec: Some(IngressSpec {
            ingress_class_name: class.map(str::to_owned),
            rules: Some(vec![IngressRule {
                host: Some(host.into()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: svc.into(),
                                port: Some(port),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

fn by_name(n: &str) -> ServiceBackendPort {
    ServiceBackendPort {
        name: Some(n.into()),
        number: None,
    }
}

fn by_number(n: i32) -> ServiceBackendPort {
    ServiceBackendPort {
        name: None,
        number: Some(n),
    }
}

/// A model whose every kind has listed `services` and `ingresses` (and nothing else).
fn listed(services: Vec<Service>, ingresses: Vec<Ingress>) -> Model {
    let mut m = Model::new("switchyard".into(), Vec::new());
    let mut list = |msgs: Vec<Msg>| msgs.into_iter().for_each(|msg| m.handle(msg));
    list(vec![Msg::Service(Event::Init)]);
    list(
        services
            .into_iter()
            .map(|s| Msg::Service(Event::InitApply(s)))
            .collect(),
    );
    list(vec![
        Msg::Service(Event::InitDone),
        Msg::Ingress(Event::Init),
    ]);
    list(
        ingresses
            .into_iter()
            .map(|i| Msg::Ingress(Event::InitApply(i)))
            .collect(),
    );
    list(vec![
        Msg::Ingress(Event::InitDone),
        Msg::Slice(Event::Init),
        Msg::Slice(Event::InitDone),
        Msg::Class(Event::Init),
        Msg::Class(Event::InitDone),
        Msg::Secret(Event::Init),
        Msg::Secret(Event::InitDone),
    ]);
    m
}

fn empty_config() -> crate::config::Config {
    crate::config::Config::parse("[admin]\nlisten = \"127.0.0.1:0\"\n", "test").unwrap()
}

#[test]
fn nothing_is_published_until_every_kind_has_listed_then_even_an_empty_cluster_is() {
    let mut m = Model::new("switchyard".into(), Vec::new());
    m.handle(Msg::Service(Event::Init));
    m.handle(Msg::Service(Event::InitDone));
    assert!(m.build().is_none());
    let mut m = listed(Vec::new(), Vec::new());
    assert_eq!(m.build(), Some(KubeParts::default()));
    assert!(m.build().is_none(), "nothing changed since");
}

#[test]
fn a_backend_port_number_is_mapped_to_the_service_port_name() {
    let mut m = listed(
        vec![service("web")],
        vec![ingress(
            "web",
            0,
            Some("switchyard"),
            "a.test",
            "web",
            by_number(80),
        )],
    );
    let parts = m.build().unwrap();
    assert_eq!(&*parts.routes[0].service, "ns/web:http");
    assert_eq!(&*parts.services[0].config.name, "ns/web:http");
}

#[test]
fn a_path_naming_a_missing_service_or_port_is_skipped_and_the_rest_kept() {
    let mut m = listed(
        vec![service("web")],
        vec![
            ingress(
                "ok",
                0,
                Some("switchyard"),
                "a.test",
                "web",
                by_name("http"),
            ),
            ingress(
                "gone",
                1,
                Some("switchyard"),
                "b.test",
                "nope",
                by_name("http"),
            ),
            ingress(
                "port",
                2,
                Some("switchyard"),
                "c.test",
                "web",
                by_name("grpc"),
            ),
        ],
    );
    let parts = m.build().unwrap();
    assert_eq!(parts.routes.len(), 1);
    assert_eq!(&*parts.route_origins[0], "ns/ok");
}

#[test]
fn ingresses_of_other_classes_are_ignored_and_classless_ones_need_the_default_class() {
    let mut m = listed(
        vec![service("web")],
        vec![
            ingress("other", 0, Some("nginx"), "a.test", "web", by_name("http")),
            ingress("none", 1, None, "b.test", "web", by_name("http")),
        ],
    );
    assert!(m.build().unwrap().routes.is_empty());
    let mut class = IngressClass {
        metadata: ObjectMeta {
            name: Some("switchyard".into()),
            resource_version: Some("1".into()),
            ..ObjectMeta::default()
        },
        ..IngressClass::default()
    };
    class.metadata.annotations = Some([(DEFAULT_CLASS.to_owned(), "true".to_owned())].into());
    m.handle(Msg::Class(Event::Apply(class)));
    let parts = m.build().unwrap();
    assert_eq!(parts.route_origins, vec![Arc::<str>::from("ns/none")]);
}

#[test]
fn conflicting_routes_keep_the_oldest_ingress_whatever_the_listing_order() {
    let newer = ingress(
        "newer",
        5,
        Some("switchyard"),
        "a.test",
        "web",
        by_name("http"),
    );
    let older = ingress(
        "older",
        1,
        Some("switchyard"),
        "a.test",
        "api",
        by_name("http"),
    );
    let mut m = listed(vec![service("web"), service("api")], vec![newer, older]);
    let parts = m.build().unwrap();
    let config = Merger::default().merge(&empty_config(), &parts);
    assert_eq!(config.http.routes.len(), 1);
    assert_eq!(&*config.http.routes[0].service, "ns/api:http");
}

#[test]
fn an_endpoint_slice_change_retranslates_only_its_service() {
    let mut m = listed(vec![service("web"), service("api")], Vec::new());
    m.build().unwrap();
    let slice = EndpointSlice {
        metadata: ObjectMeta {
            name: Some("web-x".into()),
            namespace: Some("ns".into()),
            resource_version: Some("7".into()),
            labels: Some([(SERVICE_NAME_LABEL.to_owned(), "web".to_owned())].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: vec![k8s_openapi::api::discovery::v1::Endpoint {
            addresses: vec!["10.0.0.1".into()],
            ..Default::default()
        }],
        ports: Some(vec![k8s_openapi::api::discovery::v1::EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            ..Default::default()
        }]),
    };
    m.handle(Msg::Slice(Event::Apply(slice)));
    assert_eq!(m.dirty.len(), 1);
    assert!(
        !m.ingress_dirty,
        "an endpoint change must not rerun the ingress pass"
    );
    let parts = m.build().unwrap();
    let web = parts
        .services
        .iter()
        .find(|s| &*s.config.name == "ns/web:http")
        .unwrap();
    assert_eq!(
        web.config.endpoints[0].address,
        "10.0.0.1:8080".parse().unwrap()
    );
}

#[test]
fn annotations_set_the_backend_and_route_and_the_oldest_ingress_wins_a_disagreement() {
    let mut older = ingress(
        "older",
        1,
        Some("switchyard"),
        "a.test",
        "web",
        by_name("http"),
    );
    older.metadata.annotations = Some(
        [
            ("nginx.ingress.kubernetes.io/backend-protocol", "GRPC"),
            ("nginx.ingress.kubernetes.io/proxy-body-size", "1k"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into(),
    );
    let mut newer = ingress(
        "newer",
        2,
        Some("switchyard"),
        "b.test",
        "web",
        by_name("http"),
    );
    newer.metadata.annotations = Some(
        [("nginx.ingress.kubernetes.io/backend-protocol", "HTTP")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
    );
    let mut m = listed(vec![service("web")], vec![newer, older]);
    let parts = m.build().unwrap();
    assert_eq!(
        parts.services[0].config.upstream_protocol,
        crate::config::UpstreamProtocol::H2c
    );
    let a = parts
        .routes
        .iter()
        .find(|r| r.host.as_ref().unwrap().to_string() == "a.test");
    assert_eq!(a.unwrap().max_body_bytes, Some(1024));
}

#[test]
fn a_default_backend_serves_the_ingress_hosts_or_everything_without_host_rules() {
    let mut hosted = ingress(
        "hosted",
        1,
        Some("switchyard"),
        "a.test",
        "web",
        by_name("http"),
    );
    let mut catch_all = ingress("all", 2, Some("switchyard"), "x", "api", by_name("http"));
    let default = |svc: &str| IngressBackend {
        service: Some(IngressServiceBackend {
            name: svc.into(),
            port: Some(by_name("http")),
        }),
        resource: None,
    };
    if let Some(spec) = hosted.spec.as_mut() {
        spec.default_backend = Some(default("api"));
    }
    if let Some(spec) = catch_all.spec.as_mut() {
        spec.rules = None;
        spec.default_backend = Some(default("web"));
    }
    let mut m = listed(
        vec![service("web"), service("api")],
        vec![hosted, catch_all],
    );
    let parts = m.build().unwrap();
    assert_eq!(parts.default_service.as_deref(), Some("ns/web:http"));
    assert_eq!(parts.hosts.len(), 1);
    assert_eq!(
        parts.hosts[0].default_service.as_deref(),
        Some("ns/api:http")
    );
}

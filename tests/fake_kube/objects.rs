//! Kubernetes objects for the fake API server, as k8s-openapi types: the `switchyard`
//! IngressClass, Services with one `http` port, one-endpoint EndpointSlices on 127.0.0.1 in a
//! given (ready, serving, terminating) state, Ingresses and TLS Secrets.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

pub fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..ObjectMeta::default()
    }
}

pub fn class() -> IngressClass {
    IngressClass {
        metadata: ObjectMeta {
            name: Some("switchyard".into()),
            ..ObjectMeta::default()
        },
        ..IngressClass::default()
    }
}

pub fn service(ns: &str, name: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.96.0.10".into()),
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

/// One slice of `svc` with one endpoint 127.0.0.1:`port` in the given state.
pub fn slice(
    ns: &str,
    svc: &str,
    name: &str,
    port: u16,
    state: (bool, bool, bool),
) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_owned(),
        svc.to_owned(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec!["127.0.0.1".into()],
            conditions: Some(EndpointConditions {
                ready: Some(state.0),
                serving: Some(state.1),
                terminating: Some(state.2),
            }),
            ..Endpoint::default()
        }],
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(i32::from(port)),
            ..EndpointPort::default()
        }]),
    }
}

pub const READY: (bool, bool, bool) = (true, true, false);
pub const TERMINATING: (bool, bool, bool) = (false, true, true);

pub fn backend(svc: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: svc.into(),
            port: Some(ServiceBackendPort {
                name: Some("http".into()),
                number: None,
            }),
        }),
        resource: None,
    }
}

pub fn ingress(ns: &str, name: &str, host: &str, svc: &str, tls_secret: Option<&str>) -> Ingress {
    Ingress {
        metadata: meta(ns, name),
        spec: Some(IngressSpec {
            ingress_class_name: Some("switchyard".into()),
            rules: Some(vec![IngressRule {
                host: Some(host.into()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: backend(svc),
                    }],
                }),
            }]),
            tls: tls_secret.map(|s| {
                vec![IngressTLS {
                    hosts: Some(vec![host.into()]),
                    secret_name: Some(s.into()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    }
}

pub fn secret(ns: &str, name: &str, cert: &str, key: &str) -> Secret {
    Secret {
        metadata: meta(ns, name),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
            ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

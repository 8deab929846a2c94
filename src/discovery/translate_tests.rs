#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;
use k8s_openapi::api::core::v1::ServiceSpec;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use kube::api::ObjectMeta;

fn service(ports: &[(Option<&str>, i32)], affinity: Option<&str>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.96.0.10".into()),
            session_affinity: affinity.map(str::to_owned),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, port)| ServicePort {
                        name: name.map(str::to_owned),
                        port: *port,
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// (ip, ready, serving, terminating)
fn slice(port_name: Option<&str>, port: i32, eps: &[(&str, bool, bool, bool)]) -> EndpointSlice {
    EndpointSlice {
        address_type: if eps.first().is_some_and(|e| e.0.contains(':')) {
            "IPv6".into()
        } else {
            "IPv4".into()
        },
        endpoints: eps
            .iter()
            .map(|(ip, ready, serving, terminating)| Endpoint {
                addresses: vec![(*ip).to_owned()],
                conditions: Some(EndpointConditions {
                    ready: Some(*ready),
                    serving: Some(*serving),
                    terminating: Some(*terminating),
                }),
                ..Endpoint::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: port_name.map(str::to_owned),
            port: Some(port),
            ..EndpointPort::default()
        }]),
        metadata: ObjectMeta::default(),
    }
}

fn addrs(s: &KubeService) -> Vec<String> {
    s.config
        .endpoints
        .iter()
        .map(|e| e.address.to_string())
        .collect()
}

#[test]
fn each_port_becomes_a_service_named_after_the_port_name_or_number() {
    let entries = service_entries(&service(&[(Some("http"), 80), (None, 9090)], None), &[]);
    let names: Vec<&str> = entries.iter().map(|e| &*e.config.name).collect();
    assert_eq!(names, ["shop/web:http", "shop/web:9090"]);
    assert_eq!(
        entries[0].cluster_ip,
        Some("10.96.0.10:80".parse().unwrap())
    );
    assert!(entries[0].config.listen.is_none());
}

#[test]
fn slices_are_merged_and_ports_taken_from_the_slice_port_of_the_same_name() {
    let svc = service(&[(Some("http"), 80)], None);
    let a = slice(Some("http"), 8080, &[("10.0.0.1", true, true, false)]);
    let b = slice(Some("http"), 8080, &[("fd00::2", true, true, false)]);
    let other = slice(Some("metrics"), 9100, &[("10.0.0.9", true, true, false)]);
    let entries = service_entries(&svc, &[&a, &b, &other]);
    assert_eq!(addrs(&entries[0]), ["10.0.0.1:8080", "[fd00::2]:8080"]);
}

#[test]
fn ready_endpoints_win_and_not_ready_ones_are_left_out() {
    let svc = service(&[(None, 80)], None);
    let s = slice(
        None,
        8080,
        &[
            ("10.0.0.1", true, true, false),
            ("10.0.0.2", false, true, true),
            ("10.0.0.3", false, false, false),
        ],
    );
    assert_eq!(addrs(&service_entries(&svc, &[&s])[0]), ["10.0.0.1:8080"]);
}

#[test]
fn without_ready_endpoints_serving_terminating_ones_are_used() {
    let svc = service(&[(None, 80)], None);
    let s = slice(
        None,
        8080,
        &[
            ("10.0.0.2", false, true, true),
            ("10.0.0.3", false, false, true),
        ],
    );
    assert_eq!(addrs(&service_entries(&svc, &[&s])[0]), ["10.0.0.2:8080"]);
}

#[test]
fn client_ip_affinity_selects_source_hashing_with_its_timeout() {
    let entries = service_entries(&service(&[(None, 80)], Some("ClientIP")), &[]);
    assert_eq!(entries[0].config.scheduler, Scheduler::Sh);
    assert_eq!(
        entries[0].affinity_timeout,
        Some(Duration::from_secs(10_800))
    );
}

#[test]
fn external_name_services_produce_nothing_and_headless_ones_have_no_vip() {
    let mut ext = service(&[(None, 80)], None);
    if let Some(spec) = ext.spec.as_mut() {
        spec.type_ = Some("ExternalName".into());
    }
    assert!(service_entries(&ext, &[]).is_empty());
    let mut headless = service(&[(None, 80)], None);
    if let Some(spec) = headless.spec.as_mut() {
        spec.cluster_ip = Some("None".into());
    }
    assert_eq!(service_entries(&headless, &[])[0].cluster_ip, None);
}

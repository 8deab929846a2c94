use super::*;
use crate::config::Forwarding;
use std::collections::HashSet;

fn key(vip: &str, protocol: Protocol) -> ServiceKey {
    ServiceKey {
        protocol,
        vip: vip.parse().unwrap(),
    }
}

fn spec(k: ServiceKey, scheduler: &str) -> ServiceSpec {
    ServiceSpec {
        key: k,
        scheduler: scheduler.into(),
        flags: 0,
        timeout: 0,
    }
}

fn d(addr: &str, weight: u32) -> DestSpec {
    DestSpec {
        addr: addr.parse().unwrap(),
        forwarding: Forwarding::Masq,
        weight,
    }
}

fn want(k: ServiceKey, dests: &[DestSpec]) -> (ServiceKey, DesiredService) {
    (
        k,
        DesiredService {
            spec: spec(k, "rr"),
            dests: dests.iter().map(|d| (d.addr, *d)).collect(),
        },
    )
}

fn have(k: ServiceKey, dests: &[(DestSpec, u32, u32)]) -> (ServiceKey, ActualService) {
    (
        k,
        ActualService {
            spec: spec(k, "rr"),
            dests: dests
                .iter()
                .map(|(d, active, inactive)| {
                    (
                        d.addr,
                        DestState {
                            spec: *d,
                            active: *active,
                            inactive: *inactive,
                        },
                    )
                })
                .collect(),
        },
    )
}

fn tcp() -> ServiceKey {
    key("10.96.0.1:80", Protocol::Tcp)
}

#[test]
fn an_empty_kernel_gets_each_service_then_its_destinations() {
    let desired: Desired = [want(tcp(), &[d("10.0.0.1:80", 1), d("10.0.0.2:80", 2)])].into();
    let ops = diff(&desired, &Actual::new(), &Policy::default());
    assert_eq!(
        ops,
        vec![
            Op::AddService(spec(tcp(), "rr")),
            Op::AddDest(tcp(), d("10.0.0.1:80", 1)),
            Op::AddDest(tcp(), d("10.0.0.2:80", 2)),
        ]
    );
}

#[test]
fn an_identical_kernel_needs_no_operation() {
    let desired: Desired = [want(tcp(), &[d("10.0.0.1:80", 1)])].into();
    let actual: Actual = [have(tcp(), &[(d("10.0.0.1:80", 1), 5, 2)])].into();
    assert!(diff(&desired, &actual, &Policy::default()).is_empty());
}

#[test]
fn a_reweighted_endpoint_is_one_set_dest() {
    let desired: Desired = [want(tcp(), &[d("10.0.0.1:80", 3), d("10.0.0.2:80", 1)])].into();
    let actual: Actual = [have(
        tcp(),
        &[(d("10.0.0.1:80", 1), 0, 0), (d("10.0.0.2:80", 1), 0, 0)],
    )]
    .into();
    assert_eq!(
        diff(&desired, &actual, &Policy::default()),
        vec![Op::SetDest(tcp(), d("10.0.0.1:80", 3))]
    );
}

#[test]
fn a_changed_scheduler_edits_the_service_in_place() {
    let mut desired: Desired = [want(tcp(), &[])].into();
    desired.get_mut(&tcp()).unwrap().spec.scheduler = "wlc".into();
    let actual: Actual = [have(tcp(), &[])].into();
    assert_eq!(
        diff(&desired, &actual, &Policy::default()),
        vec![Op::SetService(spec(tcp(), "wlc"))]
    );
}

#[test]
fn a_removed_tcp_endpoint_with_connections_first_gets_weight_zero() {
    let desired: Desired = [want(tcp(), &[d("10.0.0.1:80", 1)])].into();
    let actual: Actual = [have(
        tcp(),
        &[(d("10.0.0.1:80", 1), 0, 0), (d("10.0.0.2:80", 4), 3, 0)],
    )]
    .into();
    assert_eq!(
        diff(&desired, &actual, &Policy::default()),
        vec![Op::SetDest(tcp(), d("10.0.0.2:80", 0))]
    );
    assert_eq!(
        draining(&desired, &actual, &Policy::default()),
        vec![(tcp(), "10.0.0.2:80".parse().unwrap())]
    );
}

#[test]
fn a_draining_endpoint_is_deleted_when_its_last_connection_ends() {
    let desired: Desired = [want(tcp(), &[])].into();
    let busy: Actual = [have(tcp(), &[(d("10.0.0.2:80", 0), 1, 0)])].into();
    assert!(diff(&desired, &busy, &Policy::default()).is_empty());
    let idle: Actual = [have(tcp(), &[(d("10.0.0.2:80", 0), 0, 5)])].into();
    assert_eq!(
        diff(&desired, &idle, &Policy::default()),
        vec![Op::DelDest(tcp(), "10.0.0.2:80".parse().unwrap())]
    );
}

#[test]
fn a_draining_endpoint_is_deleted_at_its_deadline_even_with_connections() {
    let desired: Desired = [want(tcp(), &[])].into();
    let actual: Actual = [have(tcp(), &[(d("10.0.0.2:80", 0), 9, 0)])].into();
    let expired: HashSet<_> = [(tcp(), "10.0.0.2:80".parse().unwrap())].into();
    let policy = Policy {
        expired: Some(&expired),
        ..Policy::default()
    };
    assert_eq!(
        diff(&desired, &actual, &policy),
        vec![Op::DelDest(tcp(), "10.0.0.2:80".parse().unwrap())]
    );
}

#[test]
fn a_removed_udp_endpoint_is_deleted_at_once() {
    let udp = key("10.96.0.1:53", Protocol::Udp);
    let desired: Desired = [want(udp, &[])].into();
    let actual: Actual = [have(udp, &[(d("10.0.0.2:53", 1), 0, 40)])].into();
    assert_eq!(
        diff(&desired, &actual, &Policy::default()),
        vec![Op::DelDest(udp, "10.0.0.2:53".parse().unwrap())]
    );
    assert!(draining(&desired, &actual, &Policy::default()).is_empty());
}

#[test]
fn foreign_services_are_never_touched() {
    let actual: Actual = [have(
        key("192.168.1.1:80", Protocol::Tcp),
        &[(d("10.0.0.2:80", 1), 0, 0)],
    )]
    .into();
    assert!(diff(&Desired::new(), &actual, &Policy::default()).is_empty());
}

#[test]
fn an_owned_service_that_left_the_table_is_deleted_once_it_has_no_connections() {
    let ranges = ["10.96.0.0/12".parse().unwrap()];
    let policy = Policy {
        owned_ranges: &ranges,
        ..Policy::default()
    };
    let idle: Actual = [have(tcp(), &[(d("10.0.0.2:80", 1), 0, 0)])].into();
    assert_eq!(
        diff(&Desired::new(), &idle, &policy),
        vec![Op::DelService(tcp())]
    );
    let busy: Actual = [have(
        tcp(),
        &[(d("10.0.0.2:80", 1), 2, 0), (d("10.0.0.3:80", 1), 0, 0)],
    )]
    .into();
    assert_eq!(
        diff(&Desired::new(), &busy, &policy),
        vec![
            Op::SetDest(tcp(), d("10.0.0.2:80", 0)),
            Op::DelDest(tcp(), "10.0.0.3:80".parse().unwrap()),
        ]
    );
}

#[test]
fn a_service_created_by_this_process_is_owned_outside_the_ranges() {
    let created: HashSet<_> = [tcp()].into();
    let policy = Policy {
        created: Some(&created),
        ..Policy::default()
    };
    let actual: Actual = [have(tcp(), &[])].into();
    assert_eq!(
        diff(&Desired::new(), &actual, &policy),
        vec![Op::DelService(tcp())]
    );
}

#[test]
fn one_changed_endpoint_among_many_services_is_one_operation() {
    let mut desired = Desired::new();
    let mut actual = Actual::new();
    for i in 0..200u32 {
        let k = key(&format!("10.96.{}.{}:80", i / 250, i % 250), Protocol::Tcp);
        let dests: Vec<_> = (0..10)
            .map(|e| d(&format!("10.1.{i}.{e}:8080"), 1))
            .collect();
        desired.extend([want(k, &dests)]);
        let have_dests: Vec<_> = dests.iter().map(|d| (*d, 1, 0)).collect();
        actual.extend([have(k, &have_dests)]);
    }
    let k = key("10.96.0.7:80", Protocol::Tcp);
    desired
        .get_mut(&k)
        .unwrap()
        .dests
        .values_mut()
        .next()
        .unwrap()
        .weight = 5;
    assert_eq!(diff(&desired, &actual, &Policy::default()).len(), 1);
}

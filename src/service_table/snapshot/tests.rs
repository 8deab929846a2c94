use super::*;
use crate::config::Config;

fn config(text: &str) -> Vec<ServiceConfig> {
    Config::parse(text, "t").unwrap().services
}

fn two_services(weight_b: u32) -> Vec<ServiceConfig> {
    config(&format!(
        r#"
[[services]]
name = "a"
listen = "127.0.0.1:1000"
[[services.endpoints]]
address = "127.0.0.1:2000"
[[services]]
name = "b"
listen = "127.0.0.1:1001"
[[services.endpoints]]
address = "127.0.0.1:2001"
[[services.endpoints]]
address = "127.0.0.1:2002"
weight = {weight_b}
"#
    ))
}

#[test]
fn rebuild_shares_unchanged_services() {
    let s1 = Snapshot::default().rebuild(&two_services(1));
    let s2 = s1.rebuild(&two_services(5));
    assert!(Arc::ptr_eq(
        s1.service("a").unwrap(),
        s2.service("a").unwrap()
    ));
    assert!(!Arc::ptr_eq(
        s1.service("b").unwrap(),
        s2.service("b").unwrap()
    ));
    assert_eq!(s2.service("b").unwrap().endpoints[1].weight, 5);
}

#[test]
fn live_state_survives_a_rebuild() {
    let s1 = Snapshot::default().rebuild(&two_services(1));
    let b1 = s1.service("b").unwrap();
    let _conn = b1.endpoints[1].state.open();
    let s2 = s1.rebuild(&two_services(0));
    let b2 = s2.service("b").unwrap();
    assert_eq!(b2.endpoints[1].state.active(), 1);
    assert!(Arc::ptr_eq(&b1.live, &b2.live));
}

#[test]
fn rebuild_drops_missing_services() {
    let s1 = Snapshot::default().rebuild(&two_services(1));
    let only_a: Vec<_> = two_services(1).into_iter().take(1).collect();
    let s2 = s1.rebuild(&only_a);
    assert_eq!(s2.len(), 1);
    assert!(s2.service("b").is_none());
}

#[test]
fn drained_endpoint_gets_no_new_connections() {
    let s = Snapshot::default().rebuild(&two_services(0));
    let b = s.service("b").unwrap();
    for n in 0..10 {
        assert_eq!(
            b.pick(
                format!("10.0.0.{n}").parse::<std::net::IpAddr>().unwrap(),
                &[]
            ),
            Some(0)
        );
    }
}

#[test]
fn pick_skips_tried_and_falls_back_to_benched() {
    let s = Snapshot::default().rebuild(&two_services(1));
    let b = s.service("b").unwrap();
    let client: std::net::IpAddr = "10.0.0.1".parse().unwrap();
    assert_eq!(b.pick(client, &[0]), Some(1));
    assert_eq!(b.pick(client, &[0, 1]), None);
    b.endpoints[0].state.record_failure(
        std::num::NonZeroU32::new(1),
        std::time::Duration::from_secs(60),
    );
    for _ in 0..4 {
        assert_eq!(b.pick(client, &[]), Some(1));
    }
    assert_eq!(
        b.pick(client, &[1]),
        Some(0),
        "a benched endpoint beats none"
    );
}

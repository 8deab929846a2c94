//! Helpers shared by the scheduler tests.

use crate::service_table::{Endpoint, EndpointState};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Endpoints 10.1.0.1:80, 10.1.0.2:80, ... with the given weights.
pub(crate) fn endpoints(weights: &[u32]) -> Vec<Endpoint> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| endpoint(i as u32 + 1, w))
        .collect()
}

/// One endpoint 10.1.x.y:80 numbered `n` (1-based) with weight `w`.
pub(crate) fn endpoint(n: u32, weight: u32) -> Endpoint {
    let ip = Ipv4Addr::from(0x0a01_0000 + n);
    let address = SocketAddr::new(IpAddr::V4(ip), 80);
    Endpoint::new(address, weight, Arc::new(EndpointState::default()))
}

/// Client address number `n`: spread over 10.0.0.0/8.
pub(crate) fn client(n: u32) -> super::Key {
    super::Key::Client(IpAddr::V4(Ipv4Addr::from(
        0x0a00_0000 + n.wrapping_mul(2_654_435_761) % 0x00ff_ffff,
    )))
}

/// Runs `picks` picks from distinct clients and counts how often each endpoint won.
pub(crate) fn counts(
    picker: &dyn super::Pick,
    eps: &[Endpoint],
    picks: u32,
    usable: impl Fn(usize) -> bool,
) -> Vec<u32> {
    let mut c = vec![0; eps.len()];
    for n in 0..picks {
        if let Some(i) = picker.pick(eps, client(n), &usable) {
            c[i] += 1;
        }
    }
    c
}

/// Proptest strategy: a random set of 1 to 29 distinct endpoints with weights 0..=5 (so some
/// are drained), paired with the same endpoints in a shuffled order.
pub(crate) fn shuffled_endpoints()
-> impl proptest::strategy::Strategy<Value = (Vec<Endpoint>, Vec<Endpoint>)> {
    use proptest::prelude::*;
    prop::collection::btree_map(1u32..5000, 0u32..6, 1..30)
        .prop_map(|m| {
            m.into_iter()
                .map(|(n, w)| endpoint(n, w))
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

/// The first of `clients` clients that `a` (over `a_eps`) and `b` (over `b_eps`) send to
/// different addresses, if any.
pub(crate) fn first_difference(
    (a, a_eps): (&dyn super::Pick, &[Endpoint]),
    (b, b_eps): (&dyn super::Pick, &[Endpoint]),
    clients: u32,
) -> Option<u32> {
    let address = |p: &dyn super::Pick, eps: &[Endpoint], n| {
        p.pick(eps, client(n), &|_| true).map(|i| eps[i].address)
    };
    (0..clients).find(|&n| address(a, a_eps, n) != address(b, b_eps, n))
}

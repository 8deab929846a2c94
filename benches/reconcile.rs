//! The IPVS reconciler at scale: 10,000 services × 10 endpoints, one endpoint's weight
//! changed. Reports the number of netlink operations the diff emits (it must be 1) and times
//! the diff alone, and the desired state built from the same table snapshot.
//! Run with `cargo bench --bench reconcile`.
#![allow(missing_docs)]
#![allow(clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use switchyard::config::{Forwarding, Protocol};
use switchyard::ipvs::reconcile::{self, Actual, ActualService, Desired, DesiredService, Policy};
use switchyard::ipvs::{DestSpec, DestState, ServiceKey, ServiceSpec};

const SERVICES: u32 = 10_000;
const ENDPOINTS: u32 = 10;

fn desired() -> Desired {
    (0..SERVICES)
        .map(|i| {
            let key = ServiceKey {
                protocol: Protocol::Tcp,
                vip: SocketAddr::from((Ipv4Addr::from(0x0a60_0000 + i), 80)),
            };
            let dests = (0..ENDPOINTS)
                .map(|e| {
                    let addr = SocketAddr::from((Ipv4Addr::from(0x0af4_0000 + i * 16 + e), 8080));
                    let d = DestSpec {
                        addr,
                        forwarding: Forwarding::Masq,
                        weight: 1,
                    };
                    (addr, d)
                })
                .collect();
            let spec = ServiceSpec {
                key,
                scheduler: "wrr".into(),
                flags: 0,
                timeout: 0,
            };
            (key, DesiredService { spec, dests })
        })
        .collect()
}

fn actual_of(desired: &Desired) -> Actual {
    desired
        .iter()
        .map(|(k, d)| {
            let dests = d
                .dests
                .iter()
                .map(|(a, spec)| {
                    let state = DestState {
                        spec: *spec,
                        active: 3,
                        inactive: 1,
                    };
                    (*a, state)
                })
                .collect();
            (
                *k,
                ActualService {
                    spec: d.spec.clone(),
                    dests,
                },
            )
        })
        .collect()
}

fn reconcile_bench(c: &mut Criterion) {
    let mut desired = desired();
    let actual = actual_of(&desired);
    let key = *desired.keys().nth(SERVICES as usize / 2).unwrap();
    desired
        .get_mut(&key)
        .unwrap()
        .dests
        .values_mut()
        .next()
        .unwrap()
        .weight = 5;
    let policy = Policy::default();
    let ops = reconcile::diff(&desired, &actual, &policy);
    println!(
        "reconcile: {SERVICES} services x {ENDPOINTS} endpoints, one weight changed -> {} netlink operation(s): {:?}",
        ops.len(),
        ops
    );
    assert_eq!(ops.len(), 1);
    let mut group = c.benchmark_group("reconcile");
    group.sample_size(20);
    group.bench_function(BenchmarkId::new("diff_one_changed", "10k x 10"), |b| {
        b.iter(|| black_box(reconcile::diff(&desired, &actual, &policy)))
    });
    let empty = Actual::new();
    group.bench_function(
        BenchmarkId::new("diff_from_empty_kernel", "10k x 10"),
        |b| b.iter(|| black_box(reconcile::diff(&desired, &empty, &policy).len())),
    );
    group.finish();
}

criterion_group!(benches, reconcile_bench);
criterion_main!(benches);

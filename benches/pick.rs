//! Scheduler benchmarks: building a picker over 10 and 100 endpoints, and one pick.
//!
//! Groups are `build/<scheduler>/<endpoints>` and `pick/<scheduler>/<endpoints>`; a pick uses
//! a new client address each time (so `sh` and `mh` touch different table entries) and accepts
//! every endpoint. Measurement is kept short so the whole run takes about two minutes.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use switchyard::balance::{Scheduler, build};
use switchyard::service_table::{Endpoint, EndpointState};

/// The default Maglev table size.
const MH_TABLE_SIZE: u32 = 65537;

/// `n` endpoints 10.1.0.1:80, 10.1.0.2:80, ... with weights 1, 2, 3, 1, 2, 3, ...
fn endpoints(n: u32) -> Vec<Endpoint> {
    (1..=n)
        .map(|k| {
            let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a01_0000 + k)), 80);
            Endpoint::new(address, 1 + k % 3, Arc::new(EndpointState::default()))
        })
        .collect()
}

/// Benches `build` and `pick` for every scheduler over 10 and 100 endpoints.
fn schedulers(c: &mut Criterion) {
    for scheduler in Scheduler::ALL {
        for n in [10, 100] {
            let eps = endpoints(n);
            let mut group = c.benchmark_group(format!("build/{scheduler}"));
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| build(scheduler, black_box(&eps), MH_TABLE_SIZE));
            });
            group.finish();

            let picker = build(scheduler, &eps, MH_TABLE_SIZE);
            let mut group = c.benchmark_group(format!("pick/{scheduler}"));
            let mut client = 0u32;
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    client = client.wrapping_add(0x9e37_79b9);
                    let ip = IpAddr::V4(Ipv4Addr::from(client));
                    picker.pick(black_box(&eps), black_box(ip.into()), &|_| true)
                });
            });
            group.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = schedulers
}
criterion_main!(benches);

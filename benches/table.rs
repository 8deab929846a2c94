//! Service table at scale: build 10k services × 10 endpoints, replace one service, look one up.
//!
//! Build and lookup are timed separately (pingora-ketama's bench style). Run with
//! `cargo bench --bench table`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;
use switchyard::balance::Scheduler;
use switchyard::config::{EndpointConfig, Protocol, ProxyProtocol, ServiceConfig};
use switchyard::service_table::{Snapshot, TableHandle};

const SERVICES: u32 = 10_000;
const ENDPOINTS: u32 = 10;

fn service(i: u32, weight: u32) -> ServiceConfig {
    let vip = Ipv4Addr::from(0x0a60_0000 + i);
    ServiceConfig {
        name: Arc::from(format!("svc-{i}")),
        listen: Some(SocketAddr::new(IpAddr::V4(vip), 80)),
        protocol: Protocol::Tcp,
        scheduler: Scheduler::Wrr,
        mh_table_size: 65_537,
        connect_timeout: Duration::from_secs(3),
        response_timeout: Duration::from_secs(60),
        upstream_protocol: Default::default(),
        upstream_ca: None,
        upstream_sni: None,
        upstream_verify_names: Vec::new(),
        upstream_verify: true,
        connect_attempts: NonZeroU32::MIN,
        idle_timeout: Duration::from_secs(600),
        max_connections: None,
        max_flows: NonZeroUsize::MIN,
        udp_buffers: Default::default(),
        proxy_protocol: ProxyProtocol::None,
        upgrades: Vec::new(),
        max_failures: None,
        failure_backoff: Duration::from_secs(10),
        endpoints: (0..ENDPOINTS)
            .map(|e| EndpointConfig {
                address: SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::from(0x0af4_0000 + i * 16 + e)),
                    8080,
                ),
                weight: if e == 0 { weight } else { 1 },
            })
            .collect(),
        ipvs: Default::default(),
    }
}

fn table(c: &mut Criterion) {
    let configs: Vec<ServiceConfig> = (0..SERVICES).map(|i| service(i, 1)).collect();
    let mut group = c.benchmark_group("table");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function(BenchmarkId::new("build", "10k x 10"), |b| {
        b.iter(|| black_box(Snapshot::default().rebuild(&configs)))
    });
    let base = Snapshot::default().rebuild(&configs);
    let changed = service(SERVICES / 2, 7);
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new("replace_one", "10k x 10"), |b| {
        b.iter(|| black_box(base.with_service(&changed)))
    });
    let mut reloaded = configs.clone();
    reloaded[SERVICES as usize / 2] = changed.clone();
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("reload_one_changed", "10k x 10"), |b| {
        b.iter(|| black_box(base.rebuild(&reloaded)))
    });
    let handle = TableHandle::new(base);
    let names: Vec<String> = (0..SERVICES).map(|i| format!("svc-{i}")).collect();
    let mut n = 0usize;
    group.sample_size(100);
    group.bench_function(BenchmarkId::new("load_lookup_pick", "10k x 10"), |b| {
        b.iter(|| {
            n = n.wrapping_add(7919);
            let snapshot = handle.load();
            let service = snapshot.service(&names[n % names.len()]);
            black_box(service.and_then(|s| s.pick(IpAddr::V4(Ipv4Addr::from(n as u32)), &[])))
        })
    });
    group.finish();
}

criterion_group!(benches, table);
criterion_main!(benches);

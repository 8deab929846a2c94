//! 1,000 HTTPRoutes: applied at once, then route changes one at a time, each measured from
//! the write to the fake API server to the first request it serves, and in the binary's own
//! publish-latency histogram (`switchyard_kube_publish_latency_seconds`). Prints the figures;
//! asserts only loose bounds (a debug build on a shared machine), the 100 ms p99 is
//! read from the printed histogram.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;

use fake_kube::harness::{metric, poll};
use gateway_support::{get, route, setup, to};
use std::time::{Duration, Instant};

const ROUTES: usize = 1_000;
const CHANGES: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_change_among_1000_httproutes_is_published_quickly() {
    let s = setup(None, "Same").await;
    for i in 0..ROUTES {
        let host = format!("r{i}.example");
        s.fake
            .apply(&route("infra", &format!("r{i}"), &[&host], to("v1")));
    }
    // Applied at once, the routes arrive as 1,000 watch events: they must be built in a few
    // coalesced rounds, not one full build per event (that took a minute here).
    let applied = Instant::now();
    let last = format!("r{}.example", ROUTES - 1);
    let all = poll(Duration::from_secs(20), || async {
        get(s.port, &last, "/", "").await.map(|r| r.0) == Some(200)
    })
    .await;
    assert!(
        all,
        "the 1,000 routes were not served within 20 s; log:\n{}",
        s.proxy.log()
    );
    let first_load = applied.elapsed();
    let before = s.proxy.metrics().await;
    let mut latencies = Vec::new();
    for i in 0..CHANGES {
        let host = format!("new{i}.example");
        let start = Instant::now();
        s.fake
            .apply(&route("infra", &format!("r{i}"), &[&host], to("v2")));
        let ok = poll(Duration::from_secs(10), || async {
            get(s.port, &host, "/", "").await.map(|r| r.0) == Some(200)
        })
        .await;
        assert!(ok, "{host} never served");
        latencies.push(start.elapsed());
    }
    latencies.sort();
    let after = s.proxy.metrics().await;
    let delta = |name: &str| metric(&after, name) - metric(&before, name);
    let count = delta("switchyard_kube_publish_latency_seconds_count");
    let within = delta("switchyard_kube_publish_latency_seconds_bucket{le=\"0.1\"}");
    let sum = delta("switchyard_kube_publish_latency_seconds_sum");
    println!(
        "{ROUTES} HTTPRoutes applied at once: all served after {first_load:?}; {CHANGES} \
         changes: write → served median {:?}, max {:?}; \
         publish latency: {within} of {count} within 100 ms, mean {:.1} ms",
        latencies[CHANGES / 2],
        latencies[CHANGES - 1],
        sum / count.max(1.0) * 1000.0
    );
    assert!(count >= 1.0, "{after}");
    assert!(
        latencies[CHANGES - 1] < Duration::from_secs(5),
        "{latencies:?}"
    );
}

//! The Kubernetes source under change: EndpointSlices scaled up, down and to terminating under
//! steady load move traffic without a failed request and within the publish-latency budget;
//! a Service with only terminating endpoints still serves. The real binary runs against
//! `fake_kube` (see `kube.rs` for the setup).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Runs `clients` request loops against `host` until `stop`; counts failures and hits.
fn load(
    addr: SocketAddr,
    host: &'static str,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let failed = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..clients {
        let (stop, failed, hits) = (stop.clone(), failed.clone(), hits.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match raw_get(addr, host, "/").await {
                    Some((200, body)) => hits.lock().unwrap().push(body),
                    other => {
                        eprintln!("failed request: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    (failed, hits)
}

/// Waits until a request after now reaches `name`; returns how long that took.
async fn until_seen(hits: &std::sync::Mutex<Vec<String>>, name: &str) -> Duration {
    let start = Instant::now();
    let from = hits.lock().unwrap().len();
    let seen = poll(Duration::from_secs(10), || async {
        hits.lock().unwrap()[from..].iter().any(|h| h == name)
    })
    .await;
    assert!(seen, "{name} never reached");
    start.elapsed()
}

/// Requests made after `settle` that reached `name`.
async fn hits_after(hits: &std::sync::Mutex<Vec<String>>, settle: Duration, name: &str) -> usize {
    tokio::time::sleep(settle).await;
    let from = hits.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = hits.lock().unwrap();
    assert!(h.len() > from + 10, "too little traffic");
    h[from..].iter().filter(|x| *x == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_endpoint_slices_under_load_moves_traffic_without_a_failed_request() {
    let fake = FakeKube::start().await;
    let ports = [
        http_backend("b1").await,
        http_backend("b2").await,
        http_backend("b3").await,
    ];
    fake.apply(&class());
    fake.apply(&service("shop", "api"));
    fake.apply(&slice("shop", "api", "api-1", ports[0], READY));
    fake.apply(&ingress("shop", "api", "api.test", "api", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let (failed, hits) = load(proxy.http, "api.test", 4, stop.clone());
    until_seen(&hits, "b1").await;
    let mut latencies = Vec::new();
    fake.apply(&slice("shop", "api", "api-2", ports[1], READY));
    latencies.push(until_seen(&hits, "b2").await);
    fake.apply(&slice("shop", "api", "api-3", ports[2], READY));
    latencies.push(until_seen(&hits, "b3").await);
    fake.delete("EndpointSlice", "shop", "api-1");
    assert_eq!(hits_after(&hits, Duration::from_millis(200), "b1").await, 0);
    // b2 starts terminating: b3 is still ready, so b2 gets no new requests.
    fake.apply(&slice("shop", "api", "api-2", ports[1], TERMINATING));
    assert_eq!(hits_after(&hits, Duration::from_millis(200), "b2").await, 0);
    // Scale back up.
    fake.apply(&slice("shop", "api", "api-1", ports[0], READY));
    latencies.push(until_seen(&hits, "b1").await);
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let total = hits.lock().unwrap().len();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests (of {total})"
    );
    println!(
        "event → first request on the new endpoint: {latencies:?} ({total} requests, 0 failed)"
    );
    let m = proxy.metrics().await;
    let count = metric(&m, "switchyard_kube_publish_latency_seconds_count");
    let within = metric(
        &m,
        "switchyard_kube_publish_latency_seconds_bucket{le=\"0.1\"}",
    );
    let sum = metric(&m, "switchyard_kube_publish_latency_seconds_sum");
    println!(
        "publish latency: {within} of {count} publishes within 100 ms, mean {:.2} ms",
        sum / count * 1000.0
    );
    assert!(count >= 4.0 && within / count >= 0.9, "{m}");
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(1)),
        "{latencies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_only_terminating_endpoints_still_serves() {
    let fake = FakeKube::start().await;
    let port = http_backend("leaving").await;
    fake.apply(&class());
    fake.apply(&service("shop", "old"));
    fake.apply(&slice("shop", "old", "old-1", port, TERMINATING));
    fake.apply(&ingress("shop", "old", "old.test", "old", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "old.test", "/").await.unwrap(),
        (200, "leaving".to_owned())
    );
}

//! Gateway listeners through the fake API server and the real binary: an HTTP listener of a
//! Gateway of our class is opened at run time and closed when the Gateway goes; a port the
//! file already listens on is shared; a port that cannot be bound, and protocols not served
//! yet, are reported (`switchyard_kube_skipped_total{kind="Gateway"}`) without failing the
//! cluster update; Gateways of other classes open nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, admin_get, free_ports, metric, poll, raw_get};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

fn gateway_class(name: &str, controller: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name, "generation": 1},
        "spec": {"controllerName": controller},
    })
}

/// A Gateway of `class` with one listener per (name, protocol, port).
fn gateway(name: &str, class: &str, listeners: &[(&str, &str, u16)]) -> Value {
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|(n, p, port)| json!({"name": n, "protocol": p, "port": port}))
        .collect();
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": name, "namespace": "infra", "generation": 1},
        "spec": {"gatewayClassName": class, "listeners": listeners},
    })
}

async fn cluster() -> FakeKube {
    let fake = FakeKube::start().await;
    fake.apply(&gateway_class(
        "switchyard",
        "switchyard.dev/gateway-controller",
    ));
    fake.apply(&gateway_class("other", "example.net/other"));
    fake
}

/// The port on every address, as the Gateway listener binds it, reached on 127.0.0.1.
fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

async fn answers_404(port: u16) -> bool {
    poll(Duration::from_secs(10), || async {
        raw_get(local(port), "any.example", "/").await.map(|r| r.0) == Some(404)
    })
    .await
}

async fn refused(port: u16) -> bool {
    poll(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(local(port)).await.is_err()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_listener_is_opened_at_run_time_and_closed_with_its_gateway() {
    let fake = cluster().await;
    let [port] = free_ports();
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    assert!(refused(port.port()).await);
    let shared = proxy.http.port();
    fake.apply(&gateway(
        "web",
        "switchyard",
        &[("http", "HTTP", port.port()), ("file", "HTTP", shared)],
    ));
    assert!(answers_404(port.port()).await, "log:\n{}", proxy.log());
    // The file's listener keeps serving its port (shared, not bound twice).
    assert_eq!(raw_get(proxy.http, "x", "/").await.map(|r| r.0), Some(404));
    assert!(!proxy.log().contains("not applied"), "{}", proxy.log());
    fake.delete("Gateway", "infra", "web");
    assert!(refused(port.port()).await, "closed with its Gateway");
    assert_eq!(raw_get(proxy.http, "x", "/").await.map(|r| r.0), Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_of_another_class_opens_nothing() {
    let fake = cluster().await;
    let [port] = free_ports();
    fake.apply(&gateway(
        "theirs",
        "other",
        &[("http", "HTTP", port.port())],
    ));
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        tokio::net::TcpStream::connect(local(port.port()))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_port_and_unserved_protocols_are_reported_not_fatal() {
    let fake = cluster().await;
    let [busy, free, https] = free_ports();
    let _holder = std::net::TcpListener::bind(("0.0.0.0", busy.port())).unwrap();
    fake.apply(&gateway(
        "web",
        "switchyard",
        &[
            ("busy", "HTTP", busy.port()),
            ("free", "HTTP", free.port()),
            ("tls", "TLS", https.port()),
        ],
    ));
    // Lists held until the metrics recorder is up, so the reports are counted.
    fake.hold_lists(true);
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "log:\n{}", proxy.log());
    fake.hold_lists(false);
    proxy.wait_ready().await;
    assert!(answers_404(free.port()).await, "log:\n{}", proxy.log());
    let m = proxy.metrics().await;
    let line =
        |r: &str| format!("switchyard_kube_skipped_total{{kind=\"Gateway\",reason=\"{r}\"}}");
    assert_eq!(metric(&m, &line("port_unavailable")), 1.0, "{m}");
    assert_eq!(metric(&m, &line("unsupported_protocol")), 1.0, "{m}");
    assert!(
        tokio::net::TcpStream::connect(local(https.port()))
            .await
            .is_err()
    );
}

//! What the Gateway API end-to-end tests share: a proxy with a Gateway listener of our class
//! and three Services, HTTPRoute objects, requests with headers, and the skip counters.
#![allow(dead_code, unreachable_pub)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

pub mod conformance;
pub mod grpc;

use crate::fake_kube::FakeKube;
use crate::fake_kube::harness::{Proxy, free_ports, http_backend, metric, poll};
use crate::fake_kube::objects::{READY, service, slice};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const GW: &str = "gateway.networking.k8s.io/v1";

/// A running proxy with a Gateway `infra/gw` whose HTTP listener `http` (on `port`, with
/// `hostname` and `allowedRoutes` `from`) is ours, and Services `infra/v1`, `infra/v2`,
/// `apps/v3` answering their names.
pub struct Setup {
    pub fake: FakeKube,
    pub proxy: Proxy,
    pub port: SocketAddr,
}

pub async fn setup(hostname: Option<&str>, from: &str) -> Setup {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"},
        "spec": {"controllerName": "switchyard.dev/gateway-controller"}}));
    let [port] = free_ports();
    let mut listener = json!({"name": "http", "protocol": "HTTP", "port": port.port(),
        "allowedRoutes": {"namespaces": {"from": from}}});
    if let Some(h) = hostname {
        listener["hostname"] = json!(h);
    }
    fake.apply(&json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": [listener]}}));
    for (ns, name) in [("infra", "v1"), ("infra", "v2"), ("apps", "v3")] {
        let backend = http_backend(name).await;
        fake.apply(&service(ns, name));
        fake.apply(&slice(ns, name, &format!("{name}-a"), backend, READY));
    }
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    Setup { fake, proxy, port }
}

pub fn route(ns: &str, name: &str, hostnames: &[&str], rules: Value) -> Value {
    json!({"apiVersion": GW, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "infra"}],
            "hostnames": hostnames, "rules": rules}})
}

pub fn to(name: &str) -> Value {
    json!([{"backendRefs": [{"name": name, "port": 80}]}])
}

/// GET `target` with `host` and extra header lines: (status, body).
pub async fn get(addr: SocketAddr, host: &str, target: &str, extra: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req =
            format!("GET {target} HTTP/1.1\r\nhost: {host}\r\n{extra}connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

impl Setup {
    /// Waits until `host` `target` answers `status` (and `body`, when given).
    pub async fn expect(&self, host: &str, target: &str, extra: &str, status: u16, body: &str) {
        let ok = poll(Duration::from_secs(10), || async {
            get(self.port, host, target, extra)
                .await
                .is_some_and(|(s, b)| s == status && (body.is_empty() || b == body))
        })
        .await;
        let last = get(self.port, host, target, extra).await;
        assert!(
            ok,
            "{host}{target} {extra:?}: want {status} {body:?}, got {last:?}; log:\n{}",
            self.proxy.log()
        );
    }

    pub async fn skipped(&self, reason: &str) -> f64 {
        let m = self.proxy.metrics().await;
        metric(
            &m,
            &format!("switchyard_kube_skipped_total{{kind=\"HTTPRoute\",reason=\"{reason}\"}}"),
        )
    }
}

//! The admin dashboard's data over real sockets: `/debug/overview` of a running binary with
//! traffic, `/metrics` additions, and what the admin listener refuses.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod dashboard_support;

use common::proc::get;
use dashboard_support::Dashboard;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

fn service<'a>(o: &'a Value, name: &str) -> &'a Value {
    o["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {o:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_services_with_live_series_routes_and_certificates() {
    let d = Dashboard::start().await;
    let o = d.live().await;
    assert_eq!(o["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(o["ready"], true);
    assert_eq!(o["sample_seconds"], 5);

    let shop = service(&o, "shop");
    assert_eq!(shop["endpoints"][0]["state"], "active");
    assert_eq!(shop["endpoints"][0]["weight"], 1);
    let point = shop["series"].as_array().unwrap().last().unwrap();
    assert!(point["rps"].as_f64().unwrap() > 0.0, "{point}");
    assert_eq!(point["errors"], 0.0);
    let p99 = point["p99"].as_f64().unwrap();
    assert!(p99 > 0.0 && p99 <= 30.0, "{point}");
    let gone = service(&o, "gone");
    let point = gone["series"].as_array().unwrap().last().unwrap();
    assert_eq!(
        point["errors"], 1.0,
        "every request to gone is a 502: {point}"
    );
    let echo = service(&o, "echo");
    assert_eq!(echo["protocol"], "tcp");
    assert_eq!(echo["listen"], d.tcp.to_string());
    let cps = echo["series"].as_array().unwrap().last().unwrap()["cps"].as_f64();
    assert!(cps.unwrap() > 0.0, "{echo}");

    let routes = o["http"]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(routes[0]["host"], "shop.test");
    assert_eq!(routes[0]["service"], "shop");
    assert_eq!(routes[0]["source"], serde_json::json!({"kind": "File"}));

    let certs = o["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["name"], "shop.test");
    assert_eq!(
        certs[0]["names"],
        serde_json::json!(["shop.test", "www.shop.test"])
    );
    assert_eq!(certs[0]["source"], d.cert.cert.display().to_string());
    // rcgen's default notAfter: 4096-01-01T00:00:00Z.
    assert_eq!(certs[0]["not_after"], 67_090_118_400_i64);

    assert_eq!(o["ipvs"]["dataplane"], "userspace");
    assert_eq!(o["kubernetes"]["watches"], serde_json::json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_reload_appears_with_its_error_then_a_good_one() {
    let d = Dashboard::start().await;
    let broken = d.text.replace(
        "name = \"shop\"\n",
        "name = \"shop\"\nscheduler = \"nope\"\n",
    );
    std::fs::write(&d.config, &broken).unwrap();
    let reloads = |o: &Value| o["reloads"].as_array().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let o = d.overview().await;
        if let Some(r) = reloads(&o).last() {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no reload seen:\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(failed["what"], "file");
    assert_eq!(failed["ok"], false);
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("services[0].scheduler"), "{error}");
    // Still serving the previous config.
    assert_eq!(d.requests("shop.test", 1).await, [200]);

    std::fs::write(&d.config, format!("{}# fixed\n", d.text)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = d.overview().await;
        let all = reloads(&o);
        if all.len() == 2 {
            assert_eq!(all[1]["ok"], true);
            assert_eq!(all[1]["error"], Value::Null);
            break;
        }
        assert!(Instant::now() < deadline, "no second reload:\n{}", d.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_build_and_each_certificate_expiry() {
    let d = Dashboard::start().await;
    assert_eq!(d.requests("gone.test", 3).await, [502; 3]);
    let (status, text) = get(d.admin, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    let build = format!(
        "switchyard_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build), "{text}");
    let expiry = format!(
        "switchyard_certificate_expiry_timestamp_seconds{{name=\"shop.test\",source=\"{}\"}} 67090118400\n",
        d.cert.cert.display()
    );
    assert!(text.contains(&expiry), "{text}");
    // Passive health benched gone's one endpoint (its address refuses connections).
    assert!(
        text.contains("switchyard_endpoints_benched{service=\"gone\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("switchyard_endpoints_benched{service=\"shop\"} 0\n"),
        "{text}"
    );
}

/// Sends raw `request` to the admin listener, returns status and the whole answer.
async fn raw(admin: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(admin).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_answers_carry_no_key_material_and_only_get_and_head() {
    let d = Dashboard::start().await;
    d.traffic(1).await;
    let key = std::fs::read_to_string(&d.cert.key).unwrap();
    let secret: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_name = d.cert.key.file_name().unwrap().to_str().unwrap().to_owned();
    for path in [
        "/",
        "/metrics",
        "/livez",
        "/readyz",
        "/debug/overview",
        "/debug/table",
        "/debug/ipvs",
    ] {
        let (status, body) = raw(
            d.admin,
            &format!("GET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("PRIVATE KEY"), "{path}");
        assert!(!body.contains(&key_name), "{path} names the key file");
        for line in &secret {
            assert!(!body.contains(line), "{path} carries key material");
        }
    }
    let (status, page) = raw(
        d.admin,
        "GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("content-type: text/html; charset=utf-8"),
        "{page}"
    );
    assert!(
        page.contains("content-security-policy: default-src 'none'"),
        "{page}"
    );
    assert!(
        !page.contains(" src=") && !page.contains("href="),
        "loads nothing else"
    );
    let (status, head) = raw(
        d.admin,
        "HEAD /debug/overview HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");

    for path in [
        "/index.html",
        "/debug",
        "/debug/overview/x",
        "/../etc/passwd",
        "/metrics/",
    ] {
        let (status, _) = raw(
            d.admin,
            &format!("GET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status, 404, "{path}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let (status, answer) = raw(
            d.admin,
            &format!(
                "{method} / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
        )
        .await;
        assert_eq!(status, 405, "{method}");
        assert!(answer.contains("allow: GET, HEAD"), "{answer}");
    }
}

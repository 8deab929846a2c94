//! The dashboard's JSON with the Kubernetes source: the binary against the fake API server
//! (`fake_kube`). Routes name the Ingress they came from, the Secret's certificate names its
//! Secret, the watchers are listed and up, and skipped objects carry their reasons.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_names_each_route_and_certificate_source_and_the_watchers_state() {
    let fake = FakeKube::start().await;
    let port = http_backend("web-a").await;
    let (chain, key, _, _) = issue("shop.test");
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-a", port, READY));
    fake.apply(&secret("shop", "web-tls", &chain, &key));
    fake.apply(&ingress("shop", "web", "shop.test", "web", Some("web-tls")));
    fake.apply(&ingress("shop", "broken", "broken.test", "nope", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    proxy.reload(
        "[[services]]\nname = \"static\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9\"\n\
         [[routes]]\nhost = \"static.test\"\nservice = \"static\"\n",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let o = loop {
        let (_, body) = admin_get(proxy.admin, "/debug/overview").await.unwrap();
        let o: Value = serde_json::from_str(&body).unwrap();
        if o["http"]["routes"].as_array().unwrap().len() == 2 {
            break o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{o:#}\n{}",
            proxy.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    let routes = o["http"]["routes"].as_array().unwrap();
    assert_eq!(routes[0]["host"], "static.test");
    assert_eq!(routes[0]["source"], json!({"kind": "File"}));
    assert_eq!(routes[1]["host"], "shop.test");
    assert_eq!(routes[1]["name"], "shop/web");
    assert_eq!(
        routes[1]["source"],
        json!({"kind": "Ingress", "object": "shop/web"})
    );

    let certs = o["certificates"].as_array().unwrap();
    let shop = certs
        .iter()
        .find(|c| c["source"] == "secret/shop/web-tls")
        .unwrap_or_else(|| panic!("{certs:?}"));
    assert_eq!(shop["name"], "shop.test");
    assert!(shop["not_after"].as_i64().unwrap() > 0);
    assert!(!o.to_string().contains("PRIVATE KEY"));

    let watches = o["kubernetes"]["watches"].as_object().unwrap();
    for kind in ["Service", "EndpointSlice", "Ingress", "Secret"] {
        let w = watches
            .iter()
            .find(|(k, _)| k.as_str() == kind)
            .map(|(_, w)| w)
            .unwrap_or_else(|| panic!("no {kind} watch in {watches:?}"));
        assert_eq!(w["listed"], true, "{kind}");
        assert_eq!(w["up"], true, "{kind}");
        assert!(w["last_event"].as_f64().unwrap() > 0.0, "{kind}");
    }
    let skipped = o["kubernetes"]["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|s| s["kind"] == "Ingress"
            && s["object"] == "shop/broken"
            && s["reason"] == "missing_service"),
        "{skipped:?}"
    );
    let reloads = o["reloads"].as_array().unwrap();
    assert_eq!(reloads.last().unwrap()["ok"], true, "{reloads:?}");

    let m = proxy.metrics().await;
    assert_eq!(
        metric(&m, "switchyard_kube_watch_up{kind=\"Ingress\"}"),
        1.0,
        "{m}"
    );
    let line = "switchyard_certificate_expiry_timestamp_seconds{name=\"shop.test\",source=\"secret/shop/web-tls\"}";
    assert!(metric(&m, line) > 0.0, "{m}");
}

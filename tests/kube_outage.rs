//! The Kubernetes source when the API server misbehaves: expired watches (ERROR 410, HTTP 410,
//! dropped connections) are relisted without changing the table, an outage keeps traffic and
//! readiness, and an API server unreachable at start keeps the proxy unready until it answers.
//! The real binary runs against `fake_kube` (see `kube.rs` for the setup).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_gone_watches_and_an_api_server_outage_keep_the_table_and_traffic() {
    let fake = FakeKube::start().await;
    let (p1, p2) = (http_backend("one").await, http_backend("two").await);
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", p1, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    let ok = || async { raw_get(proxy.http, "web.test", "/").await == Some((200, "one".into())) };
    assert!(ok().await);
    let generation = metric(&proxy.metrics().await, "switchyard_snapshot_generation");

    // ERROR 410 on every open watch: each kind relists; identical objects, no new table.
    let lists = fake.lists("services");
    fake.bookmark();
    fake.compact();
    let relisted = poll(Duration::from_secs(10), || async {
        [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
        ]
        .iter()
        .all(|r| fake.lists(r) > lists)
    })
    .await;
    assert!(relisted, "no relist after 410");
    // Dropped connections, then HTTP 410 on the next watch requests: a fresh list again.
    // (Which kinds get the 410s depends on who reconnects first; any relist will do.)
    let all_lists = || {
        [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
        ]
        .iter()
        .map(|r| fake.lists(r))
        .sum::<u32>()
    };
    let lists = all_lists();
    fake.http_gone(5);
    fake.drop_connections();
    let relisted = poll(Duration::from_secs(15), || async { all_lists() > lists }).await;
    assert!(
        relisted,
        "no relist after an HTTP 410; log:\n{}",
        proxy.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = proxy.metrics().await;
    assert_eq!(
        metric(&m, "switchyard_snapshot_generation"),
        generation,
        "relists of identical objects changed the table"
    );
    assert!(metric(&m, "switchyard_kube_watch_restarts_total{kind=\"Service\"}") >= 1.0);

    // Every watcher gets an event, so each knows it is healthy again (a watcher only learns
    // that from an event); identical content, so still no new table.
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", p1, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    fake.apply(&secret("shop", "unused", "-", "-"));
    let healthy = poll(Duration::from_secs(10), || async {
        let log = proxy.log();
        log.rfind("kubernetes watch failed") <= log.rfind("kubernetes api reachable again")
    })
    .await;
    assert!(healthy, "watchers did not recover; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        metric(&proxy.metrics().await, "switchyard_snapshot_generation"),
        generation,
        "unchanged objects changed the table"
    );

    // The API server goes away: traffic keeps flowing, still ready, one log line.
    let logged = proxy.log().len();
    fake.set_down(true);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(ok().await, "request failed while the api server was down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(admin_get(proxy.admin, "/readyz").await.unwrap().0, 200);
    let log = proxy.log();
    assert_eq!(
        log[logged..].matches("kubernetes watch failed").count(),
        1,
        "{log}"
    );
    // It comes back: a change made meanwhile arrives.
    fake.apply(&slice("shop", "web", "web-1", p2, READY));
    fake.set_down(false);
    let moved = poll(Duration::from_secs(40), || async {
        raw_get(proxy.http, "web.test", "/").await == Some((200, "two".into()))
    })
    .await;
    assert!(
        moved,
        "change not seen after reconnect; log:\n{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_at_start_keeps_the_proxy_unready_until_it_answers() {
    let fake = FakeKube::start().await;
    let port = http_backend("late").await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", port, READY));
    fake.apply(&ingress("shop", "web", "late.test", "web", None));
    fake.set_down(true);
    let proxy = Proxy::start(&fake, &[]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(admin_get(proxy.admin, "/readyz").await.unwrap().0, 503);
    assert_eq!(raw_get(proxy.http, "late.test", "/").await.unwrap().0, 404);
    fake.set_down(false);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "late.test", "/").await.unwrap(),
        (200, "late".to_owned())
    );
    assert!(
        proxy.log().contains("kubernetes api reachable again"),
        "{}",
        proxy.log()
    );
}

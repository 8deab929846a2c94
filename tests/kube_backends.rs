//! The backend annotations of ingress-nginx through the fake API server and the real binary:
//! a `canary` Ingress with `canary-weight` / `canary-weight-total` splits its main Ingress's
//! route, a canary without a main Ingress is skipped, `upstream-hash-by: $http_x_user` pins
//! users to endpoints, `default-backend` answers for a Service without endpoints, a bad
//! `canary-by-header-pattern` is reported, and `canary-by-header` / `canary-by-cookie` decide
//! before the weights.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use fake_kube::harness::*;
use fake_kube::objects::*;
use k8s_openapi::api::networking::v1::Ingress;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn annotated(mut ing: Ingress, pairs: &[(&str, &str)]) -> Ingress {
    ing.metadata.annotations = Some(
        pairs
            .iter()
            .map(|(k, v)| (format!("nginx.ingress.kubernetes.io/{k}"), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    ing
}

/// A GET with an `x-user` field; the status and body.
async fn get_as(addr: SocketAddr, host: &str, user: &str) -> (u16, String) {
    get_with(addr, host, &format!("x-user: {user}\r\n")).await
}

/// A GET with the `fields` lines (each ending in CRLF); the status and body.
async fn get_with(addr: SocketAddr, host: &str, fields: &str) -> (u16, String) {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\n{fields}connection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out.split(' ').nth(1).unwrap().parse().unwrap();
        (status, out.split_once("\r\n\r\n").unwrap().1.to_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_weight_hash_by_and_default_backend_annotations_are_honoured() {
    let fake = FakeKube::start().await;
    // Lists are held until the admin listener is up, so the first translation (which reports
    // the skipped canary) happens once the metrics are being recorded.
    fake.hold_lists(true);
    fake.apply(&class());
    for name in ["web", "canary", "errors"] {
        let port = http_backend(name).await;
        fake.apply(&service("shop", name));
        fake.apply(&slice("shop", name, name, port, READY));
    }
    fake.apply(&service("shop", "users"));
    for name in ["u1", "u2", "u3", "u4"] {
        let port = http_backend(name).await;
        fake.apply(&slice("shop", "users", name, port, READY));
    }
    fake.apply(&service("shop", "dead")); // no EndpointSlice: no endpoints
    fake.apply(&ingress("shop", "main", "shop.test", "web", None));
    let canary = ingress("shop", "main-canary", "shop.test", "canary", None);
    let weights = [
        ("canary", "true"),
        ("canary-weight", "1"),
        ("canary-weight-total", "4"),
    ];
    fake.apply(&annotated(canary, &weights));
    let lonely = ingress("shop", "lonely", "lonely.test", "canary", None);
    fake.apply(&annotated(
        lonely,
        &[("canary", "true"), ("canary-weight", "50")],
    ));
    let users = ingress("shop", "users", "users.test", "users", None);
    let hash = [
        ("upstream-hash-by", "$http_x_user"),
        ("canary-by-header-pattern", "("),
    ];
    fake.apply(&annotated(users, &hash));
    let dead = ingress("shop", "dead", "dead.test", "dead", None);
    fake.apply(&annotated(dead, &[("default-backend", "errors")]));

    let proxy = Proxy::start(&fake, &[]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    fake.hold_lists(false);
    proxy.wait_ready().await;
    let routed = poll(Duration::from_secs(10), || async {
        raw_get(proxy.http, "dead.test", "/").await.map(|r| r.0) == Some(200)
    })
    .await;
    assert!(routed, "routes never appeared; log:\n{}", proxy.log());

    // canary-weight 1 of canary-weight-total 4: a quarter; 1,000 requests, sd 13.7.
    let mut hits: HashMap<String, u32> = HashMap::new();
    for _ in 0..1_000 {
        let (status, body) = raw_get(proxy.http, "shop.test", "/").await.unwrap();
        assert_eq!(status, 200);
        *hits.entry(body).or_default() += 1;
    }
    let canary_hits = hits.get("canary").copied().unwrap_or(0);
    assert_eq!(
        canary_hits + hits.get("web").copied().unwrap_or(0),
        1_000,
        "{hits:?}"
    );
    assert!((180..=320).contains(&canary_hits), "{hits:?}");

    // A canary without a main Ingress serves nothing and is reported.
    assert_eq!(
        raw_get(proxy.http, "lonely.test", "/").await.unwrap().0,
        404
    );

    // upstream-hash-by: each user keeps one endpoint; users spread over them.
    let mut homes: HashMap<u32, HashSet<String>> = HashMap::new();
    for round in 0..5 {
        for user in 0..30 {
            let (status, body) = get_as(proxy.http, "users.test", &format!("user-{user}")).await;
            assert_eq!(status, 200, "round {round}");
            homes.entry(user).or_default().insert(body);
        }
    }
    assert!(
        homes.values().all(|h| h.len() == 1),
        "a user moved: {homes:?}"
    );
    let used: HashSet<&String> = homes.values().flatten().collect();
    assert!(used.len() >= 3, "users did not spread: {homes:?}");

    // default-backend answers for a Service without endpoints.
    assert_eq!(
        raw_get(proxy.http, "dead.test", "/").await.unwrap(),
        (200, "errors".to_owned())
    );

    let m = proxy.metrics().await;
    let skipped = r#"switchyard_kube_skipped_total{kind="Ingress",reason="canary_without_main"}"#;
    assert!(metric(&m, skipped) >= 1.0, "{skipped} missing:\n{m}");
    // The log is written by a background writer: wait for the line.
    let reported = poll(Duration::from_secs(5), || async {
        proxy.log().contains("canary-by-header-pattern=(")
    })
    .await;
    assert!(reported, "bad pattern not reported:\n{}", proxy.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_by_header_and_by_cookie_decide_before_the_weights() {
    let fake = FakeKube::start().await;
    fake.apply(&class());
    for name in ["web", "canary"] {
        let port = http_backend(name).await;
        fake.apply(&service("shop", name));
        fake.apply(&slice("shop", name, name, port, READY));
    }
    fake.apply(&ingress("shop", "main", "shop.test", "web", None));
    let canary = ingress("shop", "main-canary", "shop.test", "canary", None);
    let by = [
        ("canary", "true"),
        ("canary-by-header", "X-Canary"),
        ("canary-by-cookie", "beta"),
    ];
    fake.apply(&annotated(canary, &by));
    let value = ingress("shop", "value", "value.test", "web", None);
    fake.apply(&value);
    let canary = ingress("shop", "value-canary", "value.test", "canary", None);
    let by_value = [
        ("canary", "true"),
        ("canary-by-header", "x-tier"),
        ("canary-by-header-value", "gold"),
    ];
    fake.apply(&annotated(canary, &by_value));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    let routed = poll(Duration::from_secs(10), || async {
        get_with(proxy.http, "shop.test", "x-canary: always\r\n")
            .await
            .1
            == "canary"
    })
    .await;
    assert!(
        routed,
        "canary routes never appeared; log:\n{}",
        proxy.log()
    );

    // canary-weight 0: without a deciding header or cookie, always the main Service.
    let cases = [
        ("", "web"),
        ("x-canary: always\r\n", "canary"),
        ("x-canary: never\r\n", "web"),
        ("x-canary: maybe\r\n", "web"),
        ("cookie: a=1; beta=always\r\n", "canary"),
        ("cookie: beta=never\r\n", "web"),
        ("cookie: xbeta=always\r\n", "web"),
        // The header decides before the cookie; a value it ignores leaves it to the cookie.
        ("x-canary: never\r\ncookie: beta=always\r\n", "web"),
        ("x-canary: maybe\r\ncookie: beta=always\r\n", "canary"),
    ];
    for (fields, want) in cases {
        for _ in 0..5 {
            let got = get_with(proxy.http, "shop.test", fields).await;
            assert_eq!(got, (200, want.to_owned()), "{fields:?}");
        }
    }
    // canary-by-header-value: only that value goes to the canary (`always` is not special).
    let value_cases = [
        ("x-tier: gold\r\n", "canary"),
        ("x-tier: always\r\n", "web"),
        ("x-tier: Gold\r\n", "web"),
        ("", "web"),
    ];
    for (fields, want) in value_cases {
        let got = get_with(proxy.http, "value.test", fields).await;
        assert_eq!(got, (200, want.to_owned()), "{fields:?}");
    }
}

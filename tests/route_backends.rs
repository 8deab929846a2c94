//! Route backends over real sockets: a weighted split across services (a canary), weight 0,
//! a backend missing from the table (500 for its share), `hash_on` a header with Maglev, and
//! the fallback service when the primary has no endpoint.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, config, service};
use http_body_util::Full;
use hyper::Request;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;

async fn start(config: Config) -> (App, SocketAddr) {
    let app = app::start(config).await.unwrap();
    let addr = app.http_addr("web").await.unwrap();
    (app, addr)
}

/// Sends `n` GETs on one keep-alive connection and counts (status, backend name) answers.
async fn tally(addr: SocketAddr, host: &str, n: usize) -> HashMap<(u16, String), usize> {
    let mut c = Client::connect(addr).await;
    let mut seen = HashMap::new();
    let run = async {
        for _ in 0..n {
            let (status, _, body) = c.get(host, "/").await;
            let who = body.split(' ').next().unwrap_or("").trim_end().to_owned();
            *seen.entry((status, who)).or_insert(0) += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests took over 120 s");
    seen
}

#[tokio::test]
async fn a_90_10_split_is_kept_within_three_percent_and_weight_zero_is_never_chosen() {
    let (stable, canary, off) = (
        backend("stable").await,
        backend("canary").await,
        backend("off").await,
    );
    let body = format!(
        "{}{}{}[[routes]]\nhost = \"split.test\"\nname = \"split\"\n\
         backends = [{{ service = \"stable\", weight = 90 }}, {{ service = \"canary\", weight = 10 }}, \
         {{ service = \"off\", weight = 0 }}]\n",
        service("stable", &[stable], ""),
        service("canary", &[canary], ""),
        service("off", &[off], "")
    );
    let (app, addr) = start(config(&body)).await;
    let seen = tally(addr, "split.test", 10_000).await;
    let stable_hits = seen.get(&(200, "stable".into())).copied().unwrap_or(0);
    let canary_hits = seen.get(&(200, "canary".into())).copied().unwrap_or(0);
    assert_eq!(
        stable_hits + canary_hits,
        10_000,
        "weight 0 or a failure: {seen:?}"
    );
    // ±3 % of 10,000 is ±300: ten binomial standard deviations (30).
    assert!((8_700..=9_300).contains(&stable_hits), "{seen:?}");
    // The `service` label is the service chosen, request by request.
    let label = |s: &str| {
        format!(r#"switchyard_http_requests_total{{service="{s}",route="split",code="2xx"}}"#)
    };
    let admin = app.admin_addr();
    let counted = common::eventually_metric(admin, &label("canary"), canary_hits as f64).await;
    assert_eq!(counted, Some(canary_hits as f64));
    let counted = common::eventually_metric(admin, &label("stable"), stable_hits as f64).await;
    assert_eq!(counted, Some(stable_hits as f64));
    let (_, m) = common::admin_get(admin, "/metrics").await;
    assert_eq!(
        common::metric(&m, &label("off")),
        None,
        "weight 0 never counted"
    );
}

#[tokio::test]
async fn a_backend_missing_from_the_table_answers_500_for_its_share() {
    let (a, b) = (backend("a").await, backend("b").await);
    let body = format!(
        "{}{}[[routes]]\nhost = \"half.test\"\nbackends = [{{ service = \"a\" }}, {{ service = \"b\" }}]\n",
        service("a", &[a], ""),
        service("b", &[b], "")
    );
    // A file must name services that exist; other sources (a Kubernetes Service deleted, the
    // Gateway API's dangling references) can name one the table does not hold.
    let mut config = config(&body);
    config.http.routes[0].backends.split[1].service = "gone".into();
    let (_app, addr) = start(config).await;
    let seen = tally(addr, "half.test", 2_000).await;
    let ok = seen.get(&(200, "a".into())).copied().unwrap_or(0);
    let refused = seen.get(&(500, "backend".into())).copied().unwrap_or(0);
    assert_eq!(ok + refused, 2_000, "only 200 from a or our 500: {seen:?}");
    assert!((850..=1_150).contains(&refused), "{seen:?}");
    let mut c = Client::connect(addr).await;
    let body = loop {
        let (status, _, body) = c.get("half.test", "/").await;
        if status == 500 {
            break body;
        }
    };
    assert_eq!(body, "backend not available\n");
}

#[tokio::test]
async fn hash_on_a_header_pins_each_user_to_one_endpoint_of_a_maglev_service() {
    let names = ["e1", "e2", "e3", "e4"];
    let mut endpoints = Vec::new();
    for name in names {
        endpoints.push(backend(name).await);
    }
    let body = format!(
        "{}[[routes]]\nhost = \"users.test\"\nservice = \"users\"\nhash_on = \"header:x-user\"\n",
        service("users", &endpoints, "scheduler = \"mh\"")
    );
    let (_app, addr) = start(config(&body)).await;
    let mut c = Client::connect(addr).await;
    let mut homes: HashMap<String, HashSet<String>> = HashMap::new();
    for round in 0..10 {
        for user in 0..40 {
            let req = Request::get("/")
                .header("host", "users.test")
                .header("x-user", format!("user-{user}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let (status, h, _) = c.send(req).await;
            assert_eq!(status, 200, "round {round}");
            let who = h["x-backend"].to_str().unwrap().to_owned();
            homes.entry(format!("user-{user}")).or_default().insert(who);
        }
    }
    assert!(
        homes.values().all(|h| h.len() == 1),
        "a user moved: {homes:?}"
    );
    let used: HashSet<&String> = homes.values().flatten().collect();
    // 40 users over 4 endpoints all on fewer than 3 would be a broken hash (p < 1e-10).
    assert!(used.len() >= 3, "users did not spread: {homes:?}");
    // Without the header, the client address is hashed: one endpoint for every request.
    let mut without = HashSet::new();
    for _ in 0..20 {
        without.insert(c.get("users.test", "/").await.1["x-backend"].clone());
    }
    assert_eq!(without.len(), 1, "{without:?}");
}

#[tokio::test]
async fn the_fallback_service_answers_when_the_primary_has_no_endpoint() {
    let (drained, fallback) = (backend("drained").await, backend("fallback").await);
    let body = format!(
        "{}[[services]]\nname = \"primary\"\n\
         [[services.endpoints]]\naddress = \"{drained}\"\nweight = 0\n\
         [[routes]]\nhost = \"fb.test\"\nname = \"fb\"\nservice = \"primary\"\nfallback_service = \"fallback\"\n\
         [[routes]]\nhost = \"bare.test\"\nservice = \"primary\"\n",
        service("fallback", &[fallback], ""),
    );
    let (app, addr) = start(config(&body)).await;
    let mut c = Client::connect(addr).await;
    let (status, h, _) = c.get("fb.test", "/").await;
    assert_eq!(
        (status, h["x-backend"].to_str().unwrap()),
        (200, "fallback")
    );
    let (status, _, body) = c.get("bare.test", "/").await;
    assert_eq!((status, body.as_str()), (503, "no endpoint available\n"));
    let label = r#"switchyard_http_requests_total{service="fallback",route="fb",code="2xx"}"#;
    let counted = common::eventually_metric(app.admin_addr(), label, 1.0).await;
    assert_eq!(counted, Some(1.0));
}

/// The split and the hash key are decided in routing, which hyper's requests (HTTP/2 here)
/// go through as the fast path's do.
#[tokio::test]
async fn over_http2_the_split_and_the_hash_key_hold_too() {
    let names = ["e1", "e2", "e3"];
    let mut endpoints = Vec::new();
    for name in names {
        endpoints.push(backend(name).await);
    }
    let other = backend("other").await;
    let body = format!(
        "{}{}[[routes]]\nhost = \"h2.test\"\nhash_on = \"header:x-user\"\n\
         backends = [{{ service = \"users\", weight = 3 }}, {{ service = \"other\", weight = 1 }}]\n",
        service("users", &endpoints, "scheduler = \"mh\""),
        service("other", &[other], "")
    );
    let mut config = config(&body);
    config.http.routes[0].backends.split[1].service = "gone".into();
    let (_app, addr) = start(config).await;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut homes: HashMap<u32, HashSet<String>> = HashMap::new();
    let mut refused = 0;
    for _ in 0..40 {
        for user in 0..20 {
            let req = Request::get("http://h2.test/")
                .header("x-user", format!("user-{user}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            let resp = tokio::time::timeout(Duration::from_secs(5), send.send_request(req))
                .await
                .unwrap()
                .unwrap();
            match resp.status().as_u16() {
                500 => refused += 1,
                200 => {
                    let who = resp.headers()["x-backend"].to_str().unwrap().to_owned();
                    homes.entry(user).or_default().insert(who);
                }
                other => panic!("status {other}"),
            }
        }
    }
    // A quarter of 800 is 200, sd 12.2: ±70 is over five of them.
    assert!((130..=270).contains(&refused), "{refused} of 800 refused");
    assert!(
        homes.values().all(|h| h.len() == 1),
        "a user moved: {homes:?}"
    );
    let used: HashSet<&String> = homes.values().flatten().collect();
    assert!(used.len() >= 2, "users did not spread: {homes:?}");
}

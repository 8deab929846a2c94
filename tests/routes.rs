//! Per-route settings over real sockets: source allow-lists, cookie affinity, per-route
//! metrics, and the access-log line written when a response body is over.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use bytes::Bytes;
use common::http::{Client, backend, get, service, start};
use common::log::captured;
use http_body_util::Full;
use hyper::Request;
use std::time::Duration;

#[tokio::test]
async fn allow_sources_admits_listed_networks_and_forbids_others() {
    let a = backend("a").await;
    let (_app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"open.test\"\nservice = \"a\"\nallow_sources = [\"127.0.0.0/8\", \"::1\"]\n\
         [[routes]]\nhost = \"closed.test\"\nservice = \"a\"\nallow_sources = [\"10.0.0.0/8\"]\n",
        service("a", &[a], "")
    ))
    .await;
    assert_eq!(get(addr, "open.test", "/").await.0, 200);
    let (code, _, body) = get(addr, "closed.test", "/").await;
    assert_eq!((code, body.as_str()), (403, "forbidden\n"));
}

#[tokio::test]
async fn a_sticky_cookie_keeps_a_client_on_its_endpoint_until_it_goes_away() {
    let (a, b) = (backend("a").await, backend("b").await);
    let routes = "[[routes]]\nhost = \"s.test\"\nservice = \"s\"\nsticky_cookie = \"sy\"\n";
    let (app, addr) = start(&format!("{}{routes}", service("s", &[a, b], ""))).await;
    let (code, headers, first) = get(addr, "s.test", "/").await;
    assert_eq!(code, 200);
    let set = headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.starts_with("sy=") && set.contains("Path=/"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let pinned = first.split(' ').next().unwrap().to_owned();

    let mut client = Client::connect(addr).await;
    for _ in 0..6 {
        let req = Request::get("/")
            .header("host", "s.test")
            .header("cookie", format!("other=1; {cookie}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let (_, headers, body) = client.send(req).await;
        assert!(
            body.starts_with(&pinned),
            "{body} should come from {pinned}"
        );
        assert!(
            !headers.contains_key("set-cookie"),
            "cookie kept, not reset"
        );
    }
    // Without the cookie the scheduler spreads requests again.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..4 {
        let (_, _, body) = get(addr, "s.test", "/").await;
        seen.insert(body.split(' ').next().unwrap().to_owned());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");

    // The pinned endpoint leaves the table: the client moves and gets a new cookie.
    let other = if pinned == "a" { b } else { a };
    app.apply(&common::http::config(&format!(
        "{}{routes}",
        service("s", &[other], "")
    )))
    .await
    .unwrap();
    let req = Request::get("/")
        .header("host", "s.test")
        .header("cookie", cookie.clone())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (code, headers, body) = Client::connect(addr).await.send(req).await;
    assert_eq!(code, 200);
    assert!(!body.starts_with(&pinned), "{body}");
    let renewed = headers["set-cookie"].to_str().unwrap();
    assert!(!renewed.starts_with(&cookie), "{renewed}");
}

#[tokio::test]
async fn requests_are_counted_per_route() {
    let a = backend("a").await;
    let (app, addr) = start(&format!(
        "{}[[routes]]\nhost = \"m.test\"\npath = \"/api\"\nservice = \"metered\"\n\
         [[routes]]\nhost = \"m.test\"\npath = \"/web\"\nservice = \"metered\"\nname = \"site\"\n",
        service("metered", &[a], "")
    ))
    .await;
    assert_eq!(get(addr, "m.test", "/api/x").await.0, 200);
    assert_eq!(get(addr, "m.test", "/web").await.0, 200);
    assert_eq!(get(addr, "m.test", "/web/y").await.0, 200);
    for (labels, want) in [
        (r#"service="metered",route="m.test/api",code="2xx""#, 1.0),
        (r#"service="metered",route="site",code="2xx""#, 2.0),
    ] {
        let name = format!("switchyard_http_requests_total{{{labels}}}");
        let got = common::eventually_metric(app.admin_addr(), &name, want).await;
        assert_eq!(got, Some(want), "{name}");
    }
}

#[tokio::test]
async fn the_access_log_line_has_bytes_in_and_out_and_the_endpoint() {
    let log = captured();
    let a = backend("a").await;
    let mut config = common::http::config(&format!(
        "{}[[routes]]\nhost = \"log.test\"\nservice = \"logged\"\n",
        service("logged", &[a], "")
    ));
    // The shared test config turns the access log off.
    config.http.access_log = switchyard::config::AccessLog::Json;
    let app = switchyard::app::start(config).await.unwrap();
    let addr = app.http_addr("web").await.unwrap();
    let req = Request::post("/upload-unique-path")
        .header("host", "log.test")
        .header("x-request-id", "req-42")
        .body(Full::new(Bytes::from_static(b"12345")))
        .unwrap();
    let (code, _, body) = Client::connect(addr).await.send(req).await;
    assert_eq!(code, 200);
    let mut line = None;
    for _ in 0..50 {
        let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
        line = text
            .lines()
            .find(|l| l.contains("/upload-unique-path"))
            .map(str::to_owned);
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = line.expect("an access log line");
    let json: serde_json::Value = serde_json::from_str(&line).unwrap();
    let f = &json["fields"];
    assert_eq!(f["status"], 200, "{line}");
    assert_eq!(f["bytes_in"], 5, "{line}");
    assert_eq!(f["bytes_out"], body.len(), "{line}");
    assert_eq!(f["method"], "POST", "{line}");
    assert_eq!(f["host"], "log.test", "{line}");
    assert_eq!(f["request_id"], "req-42", "{line}");
    assert_eq!(f["upstream"], a.to_string(), "{line}");
    assert_eq!(f["service"], "logged", "{line}");
}

//! TCP proxying through a real app over real sockets.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn proxies_both_ways_and_honours_half_close() {
    let a = tcp_backend("a").await;
    let app = start(&service("half", "tcp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("half").await.unwrap();
    let (name, mut stream) = connect(addr).await;
    assert_eq!(name, "a");
    echo_roundtrip(&mut stream, b"ping").await;
    // Client half-closes; the backend's echo of data sent before the FIN still arrives,
    // and then the backend's own FIN.
    stream.get_mut().write_all(b"last words").await.unwrap();
    stream.get_mut().shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rest, b"last words");
}

#[tokio::test]
async fn retries_the_next_endpoint_when_one_is_dead() {
    let dead = dead_address().await;
    let live = tcp_backend("live").await;
    let svc = service(
        "retry",
        "tcp",
        "rr",
        &[(dead, 1), (live, 1)],
        "max_failures = 0",
    );
    let app = start(&svc).await;
    let addr = app.local_addr("retry").await.unwrap();
    for _ in 0..10 {
        assert_eq!(backend_of(addr).await, "live");
    }
    let (_, metrics) = admin_get(app.admin_addr(), "/metrics").await;
    let refused = metric(
        &metrics,
        r#"switchyard_upstream_connect_errors_total{service="retry",reason="refused"}"#,
    );
    assert!(refused.unwrap_or(0.0) >= 5.0, "{metrics}");
}

#[tokio::test]
async fn a_dead_endpoint_is_benched_and_then_skipped() {
    let dead = dead_address().await;
    let live = tcp_backend("live").await;
    let svc = service(
        "bench",
        "tcp",
        "rr",
        &[(dead, 1), (live, 1)],
        "max_failures = 1\nfailure_backoff = \"1m\"",
    );
    let app = start(&svc).await;
    let addr = app.local_addr("bench").await.unwrap();
    for _ in 0..6 {
        assert_eq!(backend_of(addr).await, "live");
    }
    let (_, table) = admin_get(app.admin_addr(), "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let svc = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "bench")
        .unwrap();
    assert_eq!(svc["endpoints"][0]["benched"], true);
    let (_, metrics) = admin_get(app.admin_addr(), "/metrics").await;
    let refused = metric(
        &metrics,
        r#"switchyard_upstream_connect_errors_total{service="bench",reason="refused"}"#,
    );
    assert_eq!(
        refused,
        Some(1.0),
        "benched after one failure, never tried again: {metrics}"
    );
}

#[tokio::test]
async fn all_endpoints_dead_closes_the_client() {
    let dead = dead_address().await;
    let app = start(&service("alldead", "tcp", "rr", &[(dead, 1)], "")).await;
    let addr = app.local_addr("alldead").await.unwrap();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)));
}

#[tokio::test]
async fn weight_zero_drains_without_cutting_open_connections() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let app = start(&service("drain", "tcp", "rr", &[(a, 1), (b, 1)], "")).await;
    let addr = app.local_addr("drain").await.unwrap();
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(connect(addr).await);
    }
    assert!(open.iter().any(|(n, _)| n == "a"));
    app.apply(&config(&service(
        "drain",
        "tcp",
        "rr",
        &[(a, 0), (b, 1)],
        "",
    )))
    .await
    .unwrap();
    for _ in 0..6 {
        assert_eq!(backend_of(addr).await, "b");
    }
    for (_, stream) in &mut open {
        echo_roundtrip(stream, b"still here").await;
    }
    let (_, table) = admin_get(app.admin_addr(), "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let svc = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "drain")
        .unwrap();
    assert_eq!(svc["endpoints"][0]["weight"], 0);
    assert_eq!(
        svc["endpoints"][0]["active"], 2,
        "the drained endpoint's connections are still counted"
    );
}

#[tokio::test]
async fn removing_an_endpoint_keeps_its_connections_and_avoids_it() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let app = start(&service("remove", "tcp", "rr", &[(a, 1), (b, 1)], "")).await;
    let addr = app.local_addr("remove").await.unwrap();
    let mut on_a = loop {
        let (name, s) = connect(addr).await;
        if name == "a" {
            break s;
        }
    };
    app.apply(&config(&service("remove", "tcp", "rr", &[(b, 1)], "")))
        .await
        .unwrap();
    for _ in 0..6 {
        assert_eq!(backend_of(addr).await, "b");
    }
    echo_roundtrip(&mut on_a, b"after removal").await;
}

#[tokio::test]
async fn removing_a_service_stops_its_listener_but_drains_connections() {
    let a = tcp_backend("a").await;
    let keep = service("keeper", "tcp", "rr", &[(a, 1)], "");
    let both = format!("{keep}{}", service("leaver", "tcp", "rr", &[(a, 1)], ""));
    let app = start(&both).await;
    let addr = app.local_addr("leaver").await.unwrap();
    let (_, mut open) = connect(addr).await;
    app.apply(&config(&keep)).await.unwrap();
    assert!(app.local_addr("leaver").await.is_none());
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
    echo_roundtrip(&mut open, b"still draining").await;
}

#[tokio::test]
async fn adding_a_service_starts_its_listener() {
    let a = tcp_backend("a").await;
    let first = service("first", "tcp", "rr", &[(a, 1)], "");
    let app = start(&first).await;
    assert!(app.local_addr("second").await.is_none());
    app.apply(&config(&format!(
        "{first}{}",
        service("second", "tcp", "rr", &[(a, 1)], "")
    )))
    .await
    .unwrap();
    let addr = app.local_addr("second").await.unwrap();
    assert_eq!(backend_of(addr).await, "a");
}

#[tokio::test]
async fn a_reload_that_cannot_bind_changes_nothing() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let first = service("bindok", "tcp", "rr", &[(a, 1)], "");
    let app = start(&first).await;
    let addr = app.local_addr("bindok").await.unwrap();
    let clash = format!(
        "{}[[services]]\nname = \"clash\"\nlisten = \"{}\"\n[[services.endpoints]]\naddress = \"{a}\"\n",
        service("bindok", "tcp", "rr", &[(b, 1)], ""),
        taken.local_addr().unwrap()
    );
    let err = app.apply(&config(&clash)).await.unwrap_err();
    assert!(err.to_string().contains("service clash"), "{err}");
    assert_eq!(backend_of(addr).await, "a", "old table still serving");
}

#[tokio::test]
async fn max_connections_holds_extra_clients_in_the_backlog() {
    let a = tcp_backend("a").await;
    let app = start(&service(
        "limited",
        "tcp",
        "rr",
        &[(a, 1)],
        "max_connections = 1",
    ))
    .await;
    let addr = app.local_addr("limited").await.unwrap();
    let (_, first) = connect(addr).await;
    // The second client's TCP handshake completes (kernel backlog) but it is not served yet.
    let mut second = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 2];
    let early = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut buf)).await;
    assert!(
        early.is_err(),
        "second client must wait while the first is open"
    );
    drop(first);
    tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut buf))
        .await
        .expect("second client served once the first closed")
        .unwrap();
    assert_eq!(&buf, b"a\n");
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let a = tcp_backend("a").await;
    let app = start(&service(
        "idle",
        "tcp",
        "rr",
        &[(a, 1)],
        "idle_timeout = \"300ms\"",
    ))
    .await;
    let addr = app.local_addr("idle").await.unwrap();
    let (_, mut s) = connect(addr).await;
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "closed by the idle timeout");
}

#[tokio::test]
async fn proxy_protocol_v2_tells_the_endpoint_the_client_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend = listener.local_addr().unwrap();
    let app = start(&service(
        "ppv2",
        "tcp",
        "rr",
        &[(backend, 1)],
        "proxy_protocol = \"v2\"",
    ))
    .await;
    let addr = app.local_addr("ppv2").await.unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(b"payload").await.unwrap();
    let client_addr = client.local_addr().unwrap();
    let (mut upstream, _) = listener.accept().await.unwrap();
    let mut buf = vec![0u8; 28 + 7];
    upstream.read_exact(&mut buf).await.unwrap();
    let header = ppp::v2::Header::try_from(&buf[..28]).unwrap();
    match header.addresses {
        ppp::v2::Addresses::IPv4(a) => {
            assert_eq!(
                std::net::SocketAddr::from((a.source_address, a.source_port)),
                client_addr
            );
            assert_eq!(
                std::net::SocketAddr::from((a.destination_address, a.destination_port)),
                addr
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(&buf[28..], b"payload");
}

#[tokio::test]
async fn schedulers_spread_real_connections() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let c = tcp_backend("c").await;
    let svc = service("wrrsvc", "tcp", "wrr", &[(a, 3), (b, 1), (c, 1)], "");
    let sticky = service("mhsvc", "tcp", "mh", &[(a, 1), (b, 1), (c, 1)], "");
    let app = start(&format!("{svc}{sticky}")).await;
    let addr = app.local_addr("wrrsvc").await.unwrap();
    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..50 {
        *counts.entry(backend_of(addr).await).or_default() += 1;
    }
    assert_eq!((counts["a"], counts["b"], counts["c"]), (30, 10, 10));
    let addr = app.local_addr("mhsvc").await.unwrap();
    let first = backend_of(addr).await;
    for _ in 0..10 {
        assert_eq!(backend_of(addr).await, first, "one client IP, one backend");
    }
}

#[tokio::test]
async fn admin_endpoints_answer_and_metrics_move() {
    let a = tcp_backend("a").await;
    let app = start(&service("observed", "tcp", "rr", &[(a, 1)], "")).await;
    let admin = app.admin_addr();
    assert_eq!(admin_get(admin, "/livez").await.0, 200);
    assert_eq!(admin_get(admin, "/readyz").await.0, 200);
    assert_eq!(admin_get(admin, "/nope").await.0, 404);
    let addr = app.local_addr("observed").await.unwrap();
    let (_, mut s) = connect(addr).await;
    echo_roundtrip(&mut s, b"0123456789").await;
    let (_, metrics) = admin_get(admin, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            r#"switchyard_connections_total{service="observed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"switchyard_connections_active{service="observed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"switchyard_bytes_total{service="observed",direction="in"}"#
        ),
        Some(10.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"switchyard_bytes_total{service="observed",direction="out"}"#
        ),
        Some(12.0)
    );
    assert_eq!(
        metric(
            &metrics,
            r#"switchyard_endpoints{service="observed",state="active"}"#
        ),
        Some(1.0)
    );
    assert!(metrics.contains("switchyard_snapshot_generation"));
    let (status, table) = admin_get(admin, "/debug/table").await;
    assert_eq!(status, 200);
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let svc = table["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "observed")
        .unwrap();
    assert_eq!(svc["active"], 1);
    assert_eq!(svc["endpoints"][0]["active"], 1);
    drop(s);
    app.shutdown(Duration::from_secs(2)).await;
}

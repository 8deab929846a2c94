//! `runtime.workers = 2`: one accept queue per worker (`SO_REUSEPORT`), connections spread
//! over both workers (seen in `switchyard_worker_connections_accepted_total{worker}`), a
//! reload under load refuses nothing, SIGTERM drains connections on both workers, and
//! `max_connections` holds for a listener as a whole.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::proc::{Proxy, eventually, get};
use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard::app;
use switchyard::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const ACCEPTED: &str = "switchyard_worker_connections_accepted_total";

/// Per-worker accepted counts of a proxy process.
async fn accepted(proxy: &Proxy) -> [f64; 2] {
    let w0 = proxy.metric(&format!("{ACCEPTED}{{worker=\"0\"}}")).await;
    let w1 = proxy.metric(&format!("{ACCEPTED}{{worker=\"1\"}}")).await;
    [w0, w1]
}

/// Per-worker accepted counts of an in-process app (the recorder is per process: only
/// deltas mean something).
async fn accepted_in(admin: SocketAddr) -> [f64; 2] {
    let (_, text) = admin_get(admin, "/metrics").await;
    let of = |w: &str| metric(&text, &format!("{ACCEPTED}{{worker=\"{w}\"}}")).unwrap_or(0.0);
    [of("0"), of("1")]
}

/// Service `app`'s 2xx answers and its requests' duration count, summed over its routes.
async fn app_requests(admin: SocketAddr) -> (f64, f64) {
    let (_, text) = admin_get(admin, "/metrics").await;
    let sum = |prefix: &str, and: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix) && l.contains(and))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (
        sum(
            "switchyard_http_requests_total{service=\"app\"",
            "code=\"2xx\"",
        ),
        sum(
            "switchyard_http_request_duration_seconds_count{service=\"app\"",
            "",
        ),
    )
}

/// A config with two workers: an L4 service `l4` to `tcp`, and an HTTP listener `web` routing
/// everything to `app` at `http`; `l4_extra` goes into the L4 service.
fn two_workers(tcp: SocketAddr, http: SocketAddr, l4_extra: &str) -> Config {
    two_workers_with(tcp, http, l4_extra, "")
}

/// [`two_workers`], with `web_extra` in the HTTP listener.
fn two_workers_with(tcp: SocketAddr, http: SocketAddr, l4_extra: &str, web_extra: &str) -> Config {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\
         [runtime]\nworkers = 2\ndrain_timeout = \"2s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n{web_extra}\n\
         [[services]]\nname = \"l4\"\nlisten = \"127.0.0.1:0\"\n{l4_extra}\n\
         [[services.endpoints]]\naddress = \"{tcp}\"\n\
         [[services]]\nname = \"app\"\n[[services.endpoints]]\naddress = \"{http}\"\n\
         [[routes]]\nservice = \"app\"\n"
    );
    Config::parse(&text, "test").unwrap()
}

/// One HTTP/1.1 request on a new connection; the status line and body.
async fn http_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /w HTTP/1.1\r\nhost: a.test\r\nconnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let status = out.lines().next().unwrap_or("").to_owned();
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(format!("{status} | {body}"))
}

#[tokio::test]
async fn l4_connections_land_on_both_workers_and_every_one_is_counted() {
    let a = tcp_backend("a").await;
    let proxy = Proxy::start(a, "workers = 2\nwatch_interval = \"0s\"").await;
    for _ in 0..64 {
        let (name, mut open) = connect(proxy.listen).await;
        assert_eq!(name, "a");
        echo_roundtrip(&mut open, b"ping").await;
    }
    let [w0, w1] = accepted(&proxy).await;
    assert_eq!(w0 + w1, 64.0, "worker 0: {w0}, worker 1: {w1}");
    assert!(w0 >= 1.0 && w1 >= 1.0, "worker 0: {w0}, worker 1: {w1}");
    assert!(proxy.log().contains("data-plane workers started workers=2"));
    // Each worker counts into a part of its own; a scrape sees the sum, exactly: 64
    // connections, each with 4 bytes in ("ping") and 6 out ("a\n", then "ping" back).
    let service = |name: &str| format!("{name}{{service=\"web\"}}");
    let connections = proxy.metric(&service("switchyard_connections_total")).await;
    assert_eq!(connections, 64.0);
    let bytes = |d: &str| format!("switchyard_bytes_total{{service=\"web\",direction=\"{d}\"}}");
    let counted = eventually(Duration::from_secs(5), || async {
        proxy.metric(&bytes("in")).await == 256.0
            && proxy.metric(&bytes("out")).await == 384.0
            && proxy
                .metric(&service("switchyard_connections_active"))
                .await
                == 0.0
    })
    .await;
    let text = get(proxy.admin, "/metrics").await.unwrap_or_default().1;
    assert!(counted, "bytes or open connections miscounted:\n{text}");
}

#[tokio::test]
async fn http_connections_land_on_both_workers() {
    let (tcp, http) = (tcp_backend("t").await, common::http::backend("h").await);
    let app = app::start(two_workers(tcp, http, "")).await.unwrap();
    let web = app.http_addr("web").await.unwrap();
    let before = accepted_in(app.admin_addr()).await;
    let requests = app_requests(app.admin_addr()).await;
    for _ in 0..64 {
        let answer = http_get(web).await.unwrap();
        assert_eq!(answer, "HTTP/1.1 200 OK | h GET /w 0");
    }
    let after = accepted_in(app.admin_addr()).await;
    let (d0, d1) = (after[0] - before[0], after[1] - before[1]);
    // Other tests of this file may accept meanwhile: at least ours are counted.
    assert!(d0 + d1 >= 64.0, "worker 0: +{d0}, worker 1: +{d1}");
    assert!(d0 >= 1.0 && d1 >= 1.0, "worker 0: +{d0}, worker 1: +{d1}");
    // Both workers' requests reach the route's counter and its durations (each worker
    // records into a part of its own, folded in by the scrape).
    let served = eventually(Duration::from_secs(5), || async {
        let now = app_requests(app.admin_addr()).await;
        now.0 - requests.0 >= 64.0 && now.1 - requests.1 >= 64.0
    })
    .await;
    let now = app_requests(app.admin_addr()).await;
    assert!(served, "requests counted: {requests:?} → {now:?}");
    app.shutdown(Duration::from_secs(1)).await;
}

/// Clients that open connections to `l4` and `web` in a loop until `stop`, counting what
/// failed (any connect error, or a connection without its answer).
fn load(
    l4: SocketAddr,
    web: SocketAddr,
    stop: Arc<tokio::sync::Notify>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    tokio::spawn(async move {
        let (mut served, mut failed) = (0, 0);
        let stopped = stop.notified();
        tokio::pin!(stopped);
        // Bounded: at most 5,000 rounds even if nobody says stop.
        for _ in 0..5_000 {
            let round = async {
                let l4_ok = match TcpStream::connect(l4).await {
                    Ok(s) => {
                        let mut line = String::new();
                        let read = BufReader::new(s).read_line(&mut line).await;
                        read.is_ok() && (line == "a\n" || line == "b\n")
                    }
                    Err(_) => false,
                };
                let web_ok = http_get(web)
                    .await
                    .is_ok_and(|a| a.starts_with("HTTP/1.1 200"));
                (l4_ok, web_ok)
            };
            tokio::select! {
                () = &mut stopped => break,
                (l4_ok, web_ok) = round => {
                    served += usize::from(l4_ok) + usize::from(web_ok);
                    failed += usize::from(!l4_ok) + usize::from(!web_ok);
                }
            }
        }
        (served, failed)
    })
}

#[tokio::test]
async fn a_reload_under_load_refuses_no_connection() {
    let (a, b) = (tcp_backend("a").await, tcp_backend("b").await);
    let http = common::http::backend("h").await;
    let app = app::start(two_workers(a, http, "")).await.unwrap();
    let l4 = app.local_addr("l4").await.unwrap();
    let web = app.http_addr("web").await.unwrap();
    let stop = Arc::new(tokio::sync::Notify::new());
    let clients: Vec<_> = (0..4).map(|_| load(l4, web, Arc::clone(&stop))).collect();
    for round in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let backend = if round % 2 == 0 { b } else { a };
        let extra = if round % 3 == 0 {
            "max_connections = 1000"
        } else {
            ""
        };
        app.apply(&two_workers(backend, http, extra)).await.unwrap();
        assert_eq!(app.local_addr("l4").await, Some(l4), "kept listener moved");
        assert_eq!(app.http_addr("web").await, Some(web), "kept listener moved");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop.notify_waiters();
    let (mut served, mut failed) = (0, 0);
    for c in clients {
        let (s, f) = c.await.unwrap();
        (served, failed) = (served + s, failed + f);
    }
    assert_eq!(
        failed,
        0,
        "{failed} of {} connections failed",
        served + failed
    );
    assert!(
        served >= 40,
        "only {served} connections were made under load"
    );
    app.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn sigterm_drains_connections_on_both_workers() {
    let a = tcp_backend("a").await;
    let runtime = "workers = 2\ndrain_timeout = \"5s\"\nwatch_interval = \"0s\"";
    let mut proxy = Proxy::start(a, runtime).await;
    // Opens connections until one is open on each worker (each step's accepted count says
    // which worker took it).
    let mut on: [Option<BufReader<TcpStream>>; 2] = [None, None];
    for _ in 0..40 {
        let before = accepted(&proxy).await;
        let (_, open) = connect(proxy.listen).await;
        let after = accepted(&proxy).await;
        let worker = usize::from(after[1] > before[1]);
        on[worker].get_or_insert(open);
        if on.iter().all(Option::is_some) {
            break;
        }
    }
    let [Some(mut first), Some(mut second)] = on else {
        proxy.fail("40 connections did not reach both workers");
    };
    proxy.signal("TERM").await;
    let admin = proxy.admin;
    let draining = eventually(Duration::from_secs(3), || async move {
        get(admin, "/readyz").await.map(|r| r.0) == Some(503)
    })
    .await;
    assert!(draining, "/readyz did not turn 503 after SIGTERM");
    echo_roundtrip(&mut first, b"worker 0 drains").await;
    echo_roundtrip(&mut second, b"worker 1 drains").await;
    proxy.assert_running("while connections on both workers are open");
    drop(first);
    echo_roundtrip(&mut second, b"still open").await;
    proxy.assert_running("while a connection on one worker is open");
    drop(second);
    let status = proxy.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proxy.log());
    assert!(
        !proxy.log().contains("drain deadline passed"),
        "{}",
        proxy.log()
    );
}

/// Opens `n` connections to `addr` at once and counts those the backend greeted within
/// `within` (the others wait in a backlog or in an accept loop); returns the streams too.
async fn greeted(addr: SocketAddr, n: usize, within: Duration) -> (usize, Vec<TcpStream>) {
    let count = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                let mut buf = [0u8; 2];
                if let Ok(Ok(2)) = tokio::time::timeout(within, s.read_exact(&mut buf)).await {
                    assert_eq!(&buf, b"a\n");
                    count.fetch_add(1, Ordering::SeqCst);
                }
                s
            })
        })
        .collect();
    let mut streams = Vec::new();
    for t in tasks {
        streams.push(t.await.unwrap());
    }
    (count.load(Ordering::SeqCst), streams)
}

#[tokio::test]
async fn max_connections_holds_for_the_listener_across_both_workers() {
    let (a, http) = (tcp_backend("a").await, common::http::backend("h").await);
    let app = app::start(two_workers(a, http, "max_connections = 3"))
        .await
        .unwrap();
    let l4 = app.local_addr("l4").await.unwrap();
    let (served, mut streams) = greeted(l4, 16, Duration::from_millis(700)).await;
    assert_eq!(served, 3, "served at once with max_connections = 3");
    let service = app.table().load().service("l4").cloned().unwrap();
    assert_eq!(service.active(), 3);
    // Closing every connection lets the waiting ones in, never more than 3 at once.
    streams.clear();
    let (again, _streams) = greeted(l4, 6, Duration::from_millis(700)).await;
    assert_eq!(again, 3, "served after the first ones closed");
    assert!(service.active() <= 3, "{} open", service.active());
    app.shutdown(Duration::from_millis(200)).await;
}

/// What [`slow_backend`] saw: requests in all, in flight now, and most in flight at once.
#[derive(Default)]
struct Seen {
    got: AtomicUsize,
    in_flight: AtomicUsize,
    most: AtomicUsize,
}

/// An HTTP/1.1 backend that counts the requests it got and answers each "slow" after `delay`.
async fn slow_backend(delay: Duration) -> (SocketAddr, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Seen::default());
    let seen = Arc::clone(&got);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.got.fetch_add(1, Ordering::SeqCst);
                let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                seen.most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                let answer =
                    b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow";
                let _ = socket.write_all(answer).await;
            });
        }
    });
    (addr, got)
}

#[tokio::test]
async fn shutdown_drains_http_requests_in_flight_on_both_workers() {
    let (slow, got) = slow_backend(Duration::from_millis(800)).await;
    let app = app::start(two_workers(tcp_backend("t").await, slow, ""))
        .await
        .unwrap();
    let (web, admin) = (app.http_addr("web").await.unwrap(), app.admin_addr());
    let before = accepted_in(admin).await;
    let requests: Vec<_> = (0..16).map(|_| tokio::spawn(http_get(web))).collect();
    let arrived = eventually(Duration::from_secs(3), || {
        let got = Arc::clone(&got);
        async move { got.got.load(Ordering::SeqCst) == 16 }
    })
    .await;
    assert!(
        arrived,
        "{} of 16 requests reached the backend",
        got.got.load(Ordering::SeqCst)
    );
    let after = accepted_in(admin).await;
    let (d0, d1) = (after[0] - before[0], after[1] - before[1]);
    assert!(d0 >= 1.0 && d1 >= 1.0, "worker 0: +{d0}, worker 1: +{d1}");
    let started = tokio::time::Instant::now();
    let down = tokio::spawn(app.shutdown(Duration::from_secs(5)));
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap(), "HTTP/1.1 200 OK | slow");
    }
    down.await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "drain took {took:?}: waited for the deadline"
    );
    assert!(
        TcpStream::connect(web).await.is_err(),
        "the listener still accepts after shutdown"
    );
}

#[tokio::test]
async fn http_max_connections_holds_for_the_listener_across_both_workers() {
    let (slow, seen) = slow_backend(Duration::from_millis(300)).await;
    let config = two_workers_with(tcp_backend("t").await, slow, "", "max_connections = 2");
    let app = app::start(config).await.unwrap();
    let web = app.http_addr("web").await.unwrap();
    let requests: Vec<_> = (0..8).map(|_| tokio::spawn(http_get(web))).collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        seen.got.load(Ordering::SeqCst),
        2,
        "requests served at once"
    );
    for r in requests {
        assert_eq!(r.await.unwrap().unwrap(), "HTTP/1.1 200 OK | slow");
    }
    assert_eq!(seen.got.load(Ordering::SeqCst), 8);
    assert_eq!(
        seen.most.load(Ordering::SeqCst),
        2,
        "most requests in flight at once"
    );
    app.shutdown(Duration::from_millis(200)).await;
}

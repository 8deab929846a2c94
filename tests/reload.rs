//! Reloading the config file under traffic: no connection may fail, bad files change nothing.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;
use switchyard::app;
use switchyard::config::Config;

/// Two distinct free ports (both held until both are taken).
fn free_ports() -> (SocketAddr, SocketAddr) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

fn file_text(
    admin: SocketAddr,
    listen: SocketAddr,
    round: usize,
    endpoints: &[(SocketAddr, u32)],
) -> String {
    let mut s = format!(
        "# round {round}\n[admin]\nlisten = \"{admin}\"\n[runtime]\nwatch_interval = \"20ms\"\ndrain_timeout = \"2s\"\n\
         [[services]]\nname = \"reloaded\"\nlisten = \"{listen}\"\nscheduler = \"wrr\"\n"
    );
    for (addr, w) in endpoints {
        s.push_str(&format!(
            "[[services.endpoints]]\naddress = \"{addr}\"\nweight = {w}\n"
        ));
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_reloads_under_traffic_lose_no_connection() {
    let backends = [
        tcp_backend("a").await,
        tcp_backend("b").await,
        tcp_backend("c").await,
    ];
    let (admin, listen) = free_ports();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.toml");
    std::fs::write(&path, file_text(admin, listen, 0, &[(backends[0], 1)])).unwrap();
    let config = Config::load(&path).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::run(config, Some(path.clone()), async {
        let _ = stop_rx.await;
    }));
    wait_ready(admin).await;

    let running = Arc::new(AtomicBool::new(true));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let traffic = {
        let (running, ok, failed) = (running.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            // Bounded: stops when told, and never runs more than 100,000 connections.
            for _ in 0..100_000 {
                if !running.load(Ordering::Relaxed) {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(5), one_connection(listen)).await {
                    Ok(true) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    for round in 1..=50 {
        let text = if round % 5 == 0 {
            // Every fifth file is broken in a different way.
            match round % 3 {
                0 => "this is not toml".to_owned(),
                1 => file_text(admin, listen, round, &[]),
                _ => file_text(admin, listen, round, &[(backends[0], 1)])
                    .replace(&backends[0].to_string(), "10.0.0.1"),
            }
        } else {
            let eps: Vec<(SocketAddr, u32)> = backends
                .iter()
                .enumerate()
                .map(|(i, &b)| (b, ((round + i) % 3) as u32))
                .collect();
            file_text(admin, listen, round, &eps)
        };
        std::fs::write(&path, text).unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // The last good file must be what runs: weights for round 49 are (1, 2, 0).
    running.store(false, Ordering::Relaxed);
    traffic.await.unwrap();
    let (_, table) = admin_get(admin, "/debug/table").await;
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let weights: Vec<u64> = table["services"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, vec![1, 2, 0]);
    let (_, metrics) = admin_get(admin, "/metrics").await;
    let reloads_ok = metric(&metrics, r#"switchyard_reloads_total{result="ok"}"#).unwrap_or(0.0);
    let reloads_failed =
        metric(&metrics, r#"switchyard_reloads_total{result="failed"}"#).unwrap_or(0.0);
    assert!(
        reloads_failed >= 10.0,
        "{reloads_failed} failed reloads counted"
    );
    assert!(reloads_ok >= 30.0, "{reloads_ok} good reloads counted");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} of {} connections failed", ok + failed);
    assert!(ok >= 50, "only {ok} connections ran");
    stop_tx.send(()).unwrap();
    server.await.unwrap().unwrap();
}

async fn one_connection(addr: SocketAddr) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    if reader.read_line(&mut line).await.is_err() || line.is_empty() {
        return false;
    }
    if reader.get_mut().write_all(b"ping").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    reader.read_exact(&mut buf).await.is_ok() && &buf == b"ping"
}

async fn wait_ready(admin: SocketAddr) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(admin).await.is_ok()
            && admin_get(admin, "/readyz").await.0 == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not ready");
}

//! What an idle client connection costs the process: 1,000 plain HTTP/1.1 connections to an
//! app in this process, first silent ones, then ones that each made a keep-alive request and
//! wait for the next, and the growth of the process's RSS per connection, under a generous
//! bound: 1.2 KiB. A connection cost 24.5 KiB silent and 25.8 KiB after a request at first
//! (its task's state, 16 KiB, and an 8 KiB read buffer taken before the first byte), then 1.7
//! and 1.8 KiB with a task of a few hundred bytes (which this bound fails), and 0.46 and 0.48
//! KiB now that an idle one waits without a task (`listener/idle.rs`), in this debug build;
//! see BENCHMARKS.md, "Idle connections", for the release build. Not a timing test: the bound
//! is more than twice the figure, and the clients (plain blocking sockets on a thread of
//! their own) allocate nothing per connection. Linux only (`/proc/self/status`).
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod skip;

use common::http::{backend, service, start};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Connections per phase.
const N: usize = 1000;
/// The bound, in KiB of RSS per connection.
const BOUND_KIB: f64 = 1.2;

/// The process's resident set, in KiB.
fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The allocator the binary uses (`src/main.rs`): RSS then shows what the proxy would hold.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gives back to the OS the memory the allocator holds for reuse but no longer uses, on the
/// runtime's worker (its heap is where the connections live), as the binary does when a worker
/// goes quiet (`main.rs`, `memory`): what a connection frees when it goes idle would otherwise
/// show in RSS until the allocator is busy again.
async fn collect() {
    #[allow(unsafe_code, reason = "mi_collect: a call into mimalloc's C interface")]
    fn mi_collect() {
        unsafe extern "C" {
            fn mi_collect(force: bool);
        }
        // SAFETY: `mi_collect` takes no pointers; it works on the calling thread's heap.
        unsafe { mi_collect(true) }
    }
    tokio::spawn(async { mi_collect() }).await.unwrap();
    mi_collect();
}

/// Reads one response with a `content-length` off `s`.
fn read_response(s: &mut TcpStream) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        if got.len() >= end + 4 + length {
            assert!(head.starts_with("http/1.1 200"), "{head}");
            return;
        }
    }
}

/// Opens `n` connections to `addr`, each sending one request (and reading its answer) if
/// `request`; on a thread of its own, so that the app's runtime serves them meanwhile.
async fn open(addr: SocketAddr, n: usize, request: bool) -> Vec<TcpStream> {
    tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                if request {
                    s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
                    read_response(&mut s);
                }
                s
            })
            .collect()
    })
    .await
    .unwrap()
}

/// RSS growth per connection, in KiB, of `n` connections opened with [`open`] and left idle
/// long enough for the proxy to free what a busy connection holds and to park it (0.5 to 0.75 s).
async fn kib_per_idle_connection(addr: SocketAddr, request: bool) -> (f64, Vec<TcpStream>) {
    collect().await;
    let before = rss_kib().unwrap();
    let conns = open(addr, N, request).await;
    tokio::time::sleep(Duration::from_millis(3000)).await;
    collect().await;
    let after = rss_kib().unwrap();
    (after.saturating_sub(before) as f64 / N as f64, conns)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn an_idle_connection_costs_a_few_kib() {
    if rss_kib().is_none() {
        return skip::skip("an_idle_connection_costs_a_few_kib", "no /proc/self/status");
    }
    // Two descriptors per connection (this process is both ends), for both phases.
    let want = (4 * N + 256) as u64;
    if rlimit::increase_nofile_limit(want).unwrap_or(0) < want {
        return skip::skip(
            "an_idle_connection_costs_a_few_kib",
            "the open-file limit is too low for 4,000 sockets",
        );
    }
    let backend = backend("a").await;
    let (app, _) = start(&format!(
        "[[listeners]]\nname = \"slow\"\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"60s\"\n\
         {}[[routes]]\nservice = \"b\"\n",
        service("b", &[backend], "")
    ))
    .await;
    let addr = app.http_addr("slow").await.unwrap();
    // Warm up: what the first requests allocate once is not the connections' cost.
    drop(open(addr, 20, true).await);

    let (silent, _silent) = kib_per_idle_connection(addr, false).await;
    let (used, _used) = kib_per_idle_connection(addr, true).await;
    println!("idle connections: {silent:.2} KiB each silent, {used:.2} KiB after a request");
    assert!(
        silent < BOUND_KIB,
        "a silent connection costs {silent:.2} KiB of RSS"
    );
    assert!(
        used < BOUND_KIB,
        "an idle keep-alive connection costs {used:.2} KiB of RSS"
    );
}

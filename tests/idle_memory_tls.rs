//! What an idle TLS client connection costs the proxy's heap: 200 TLS 1.3 connections, each
//! of which made a keep-alive request and waits for the next, and the heap bytes the app's
//! runtime thread still holds for them, in this debug build:
//!
//! - HTTP/1.1, under 6.5 KiB: 8.7 KiB each on main at 0a5e54d (tokio-rustls, rustls'
//!   zero-filled 4 KiB record buffer held for the connection's life), 4.8 KiB with the TLS
//!   stream of our own (`src/tls/stream.rs`);
//! - HTTP/2, under 12 KiB: 40.8 KiB each with h2 0.4.21 from crates.io (a 16 KiB write
//!   buffer, an 8 KiB read buffer and a 4 KiB HPACK scratch buffer held for the connection's
//!   life, and the storage of its last stream), 9.2 KiB with the patched h2 of `vendor/h2`.
//!
//! Both also check that once the connections close, the heap they held is freed (within
//! 32 KiB for all 200: a few bytes per connection kept would show).
//!
//! Heap, not RSS: the clients live in this process
//! too (a blocking rustls client each, on a thread of their own), so the allocations are
//! counted on the proxy's thread only. Not a timing test; the release figure (RSS) is in
//! BENCHMARKS.md, "Idle connections".
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod skip;

use common::h2::{END_HEADERS, END_STREAM, HEADERS, PREFACE, SETTINGS, frame, get};
use common::https::{backend, config_text, start};
use common::tls::{HTTP1, Pki, certificates, client_config};
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections opened.
const N: usize = 200;
/// One measurement at a time: the counter is the whole process's.
static MEASURING: Mutex<()> = Mutex::new(());

/// mimalloc, as in the binary, counting the bytes live that the runtime's threads allocated.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    /// Set on the app's runtime threads: only their allocations are counted.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count(delta: isize) {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

#[allow(unsafe_code, reason = "a global allocator forwarding to mimalloc")]
// SAFETY: every call forwards to mimalloc with the caller's arguments; counting touches no
// memory of the allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's layout, passed on.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's layout, passed on.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: the caller's block and layout, passed on.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: the caller's block, layout and size, passed on.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Opens a TLS connection, sends one keep-alive request (HTTP/2 when the config offers only
/// h2), reads its answer, and keeps only the socket (the client's TLS state is dropped; the
/// proxy cannot tell).
fn open(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> TcpStream {
    let h2 = config.alpn_protocols == [b"h2".to_vec()];
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("a.test").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::clone(config), name).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    if h2 {
        let mut out = PREFACE.to_vec();
        out.extend(frame(SETTINGS, 0, 0, &[]));
        out.extend(frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &get("https", "a.test", "/"),
        ));
        tls.write_all(&out).unwrap();
    } else {
        tls.write_all(b"GET / HTTP/1.1\r\nhost: a.test\r\n\r\n")
            .unwrap();
    }
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    // The backend answers "a GET /" (7 bytes) after the head.
    while !got.ends_with(b"a GET /") {
        let n = tls.read(&mut chunk).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    if h2 {
        // The server's SETTINGS came before the answer: acknowledge them, as a client does.
        tls.write_all(&frame(SETTINGS, 1, 0, &[])).unwrap();
    } else {
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
    }
    sock
}

#[test]
fn an_idle_tls_connection_holds_no_record_buffer() {
    let kib = kib_per_idle_connection("an_idle_tls_connection_holds_no_record_buffer", HTTP1);
    if let Some(kib) = kib {
        println!("idle TLS HTTP/1.1 connections: {kib:.2} KiB of heap each");
        assert!(kib < 6.5, "an idle TLS connection holds {kib:.2} KiB");
    }
}

#[test]
fn an_idle_h2_connection_holds_no_codec_buffers() {
    let kib = kib_per_idle_connection("an_idle_h2_connection_holds_no_codec_buffers", b"h2");
    if let Some(kib) = kib {
        println!("idle TLS HTTP/2 connections: {kib:.2} KiB of heap each");
        assert!(kib < 12.0, "an idle HTTP/2 connection holds {kib:.2} KiB");
    }
}

/// The heap each of `N` idle connections offering `alpn` holds, in KiB; `None` when the
/// test cannot run here (said as a skip of `test`).
fn kib_per_idle_connection(test: &str, alpn: &[u8]) -> Option<f64> {
    let want = (2 * N + 256) as u64;
    if rlimit::increase_nofile_limit(want).unwrap_or(0) < want {
        skip::skip(test, "the open-file limit is too low for 656 sockets");
        return None;
    }
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(|| COUNTED.set(true))
        .build()
        .unwrap();
    let pki = Pki::new();
    let cert = pki.issue("a", &["a.test"]);
    let (app, addr) = runtime.block_on(async {
        let body = format!(
            "{}[[services]]\nname = \"a\"\n[[services.endpoints]]\naddress = \"{}\"\n\
             [[routes]]\nhost = \"a.test\"\nservice = \"a\"\n",
            certificates(&[(&cert, true)]),
            backend("a").await
        );
        start(&config_text(&body)).await
    });
    let config = Arc::new(client_config(pki.roots(), &[alpn], None));
    // Warm up: what the first connections allocate once is not the connections' cost.
    let warm: Vec<_> = (0..10).map(|_| open(addr, &config)).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(3000));
    let before = LIVE.load(Ordering::Relaxed);
    let conns: Vec<_> = (0..N).map(|_| open(addr, &config)).collect();
    // Long enough for a connection's busy spell to end (0.25 to 0.5 s).
    std::thread::sleep(Duration::from_millis(3000));
    let after = LIVE.load(Ordering::Relaxed);
    drop(conns);
    // Once they close, what they held is freed: nothing is kept per connection that was.
    std::thread::sleep(Duration::from_millis(3000));
    let kept = LIVE.load(Ordering::Relaxed) - before;
    println!("heap still held after the connections closed: {kept} bytes");
    assert!(
        kept < 32 * 1024,
        "{kept} bytes still held after {N} connections closed"
    );
    drop(app);
    // The runtime's threads stop here, and the next measurement starts from its own count.
    drop(runtime);
    Some((after - before) as f64 / N as f64 / 1024.0)
}

//! Bulk TCP proxying, where a direction moves on through a pipe with `splice(2)`: every byte
//! arrives, in order, both ways, with half-close, a slow reader, and an endpoint that resets
//! in the middle. The app runs in this process, so its pipes show in `/proc/self/fd`; the
//! tests run one at a time so that they count only their own.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::proc::eventually;
use common::{admin_get, metric, service, start};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One test at a time: the pipe count is the whole process's.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `i`-th byte of a stream seeded with `seed`: a pattern whose every offset differs from
/// its neighbours', so a lost, repeated or reordered chunk shows.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + i / 251) as u8).wrapping_add(seed))
        .collect()
}

/// How the endpoint answers once the client's stream has ended.
#[derive(Clone, Copy)]
enum Reply {
    /// `len` bytes of `pattern(2, _)`, then a FIN.
    Whole(usize),
    /// `len` bytes, then a reset (linger 0) instead of a FIN.
    Reset(usize),
}

/// An endpoint that reads a connection to its end, checks it is `pattern(1, want)`, then
/// replies as told. Each connection's check result comes back on the returned channel.
async fn endpoint(want: usize, reply: Reply) -> (SocketAddr, tokio::sync::mpsc::Receiver<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                s.read_to_end(&mut got).await.unwrap();
                let _ = tx.send(got == pattern(1, want)).await;
                match reply {
                    Reply::Whole(len) => {
                        s.write_all(&pattern(2, len)).await.unwrap();
                        s.shutdown().await.unwrap();
                    }
                    Reply::Reset(len) => {
                        let _ = s.write_all(&pattern(2, len)).await;
                        s.set_zero_linger().unwrap();
                    }
                }
            });
        }
    });
    (addr, rx)
}

/// Pipes open in this process.
fn pipes() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

const UP: usize = 6 << 20;
const DOWN: usize = 10 << 20;

#[tokio::test]
async fn bulk_arrives_whole_both_ways_and_honours_half_close() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (a, mut checked) = endpoint(UP, Reply::Whole(DOWN)).await;
    let app = start(&service("bulk", "tcp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("bulk").await.unwrap();
    let before = pipes();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&pattern(1, UP)).await.unwrap();
    // Half-close: the endpoint sees the end of the upload, then answers on the open half.
    client.shutdown().await.unwrap();
    assert!(
        checked.recv().await.unwrap(),
        "the endpoint got other bytes"
    );
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), client.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got == pattern(2, DOWN),
        "the client got {} other bytes",
        got.len()
    );
    let (_, metrics) = admin_get(app.admin_addr(), "/metrics").await;
    let bytes = |way: &str| {
        let name = format!("switchyard_bytes_total{{service=\"bulk\",direction=\"{way}\"}}");
        metric(&metrics, &name)
    };
    assert_eq!(bytes("in"), Some(UP as f64));
    assert_eq!(bytes("out"), Some(DOWN as f64));
    // Both directions' pipes are closed with the connection.
    assert!(
        eventually(Duration::from_secs(5), || async { pipes() == before }).await,
        "pipes left open"
    );
}

#[tokio::test]
async fn a_slow_reader_gets_every_byte_through_a_pipe() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (a, mut checked) = endpoint(0, Reply::Whole(DOWN)).await;
    let app = start(&service("slow", "tcp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("slow").await.unwrap();
    let before = pipes();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.shutdown().await.unwrap();
    assert!(checked.recv().await.unwrap());
    let mut got = vec![0u8; 512 * 1024];
    client.read_exact(&mut got).await.unwrap();
    // The download is bulk: it moves through a pipe now, held up by this reader.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        pipes() > before,
        "the bulk direction did not turn to splice"
    );
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let n = client.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        got == pattern(2, DOWN),
        "the client got {} other bytes",
        got.len()
    );
}

#[tokio::test]
async fn an_endpoint_reset_mid_transfer_ends_the_client_connection() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (a, mut checked) = endpoint(0, Reply::Reset(4 << 20)).await;
    let app = start(&service("reset", "tcp", "rr", &[(a, 1)], "")).await;
    let addr = app.local_addr("reset").await.unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.shutdown().await.unwrap();
    assert!(checked.recv().await.unwrap());
    // Whatever came before the reset is a prefix of what was sent; then the connection ends
    // (EOF or reset), and does not hang.
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match client.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the client connection outlived its endpoint");
    assert!(got.len() <= 4 << 20);
    assert!(got == pattern(2, 4 << 20)[..got.len()], "bytes changed");
}

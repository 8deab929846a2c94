//! Copying bytes both ways between client and endpoint.
//!
//! Why not `tokio::io::copy_bidirectional`: it has no idle timeout and no per-chunk byte
//! counting. This is the same loop with both: each direction reads into its own buffer and
//! writes it out; at EOF it shuts down the write side of the other socket (sends FIN) and
//! stops, while the other direction keeps going (TCP half-close, which protocols like
//! `rsync`, `nc -q` and HTTP/1.0 bodies rely on). An error in either direction ends both.
//! Buffers start at 16 KiB and double, up to 256 KiB, while reads keep filling them, so bulk
//! transfers need fewer syscalls and idle connections stay small.

use bytes::BytesMut;
use metrics::Counter;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const START_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 256 * 1024;

/// How a proxied connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Both sides closed their write halves.
    Closed,
    /// No byte moved either way for the idle timeout.
    Idle,
}

/// Bytes moved, per direction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Client → endpoint.
    pub sent: u64,
    /// Endpoint → client.
    pub received: u64,
}

/// Copies `client` ⇄ `upstream` until both directions are closed, one fails, or nothing
/// moves for `idle`. Byte counts go to the given counters as they move.
pub async fn bidirectional(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
    counters: (&Counter, &Counter),
) -> io::Result<(Ended, Totals)> {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = one_way(client_read, upstream_write, &last, start, counters.0);
    let down = one_way(upstream_read, client_write, &last, start, counters.1);
    tokio::select! {
        result = async { tokio::try_join!(up, down) } => {
            let (sent, received) = result?;
            Ok((Ended::Closed, Totals { sent, received }))
        }
        () = idle_timer(&last, start, idle) => Ok((Ended::Idle, Totals::default())),
    }
}

async fn one_way<R, W>(
    mut from: R,
    mut to: W,
    last: &AtomicU64,
    start: Instant,
    counter: &Counter,
) -> io::Result<u64>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // BytesMut: reads go into spare capacity, so a fresh buffer is never zero-filled.
    let mut buf = BytesMut::with_capacity(START_BUF);
    let mut total = 0u64;
    loop {
        buf.clear();
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            to.shutdown().await?;
            return Ok(total);
        }
        to.write_all(&buf).await?;
        total += n as u64;
        counter.increment(n as u64);
        last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        let capacity = buf.capacity();
        if n == capacity && capacity < MAX_BUF {
            buf = BytesMut::with_capacity(capacity * 2);
        }
    }
}

/// Resolves once `idle` has passed since the last recorded activity.
async fn idle_timer(last: &AtomicU64, start: Instant, idle: Duration) {
    let mut deadline = start + idle;
    loop {
        tokio::time::sleep_until(deadline).await;
        let active_at = start + Duration::from_millis(last.load(Ordering::Relaxed));
        let next = active_at + idle;
        if next <= Instant::now() {
            return;
        }
        deadline = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn half_close_keeps_the_other_direction_open() {
        // client_end <-> (proxy_client ⇄ proxy_upstream) <-> server_end
        let (mut client_end, mut proxy_client) = pair().await;
        let (mut proxy_upstream, mut server_end) = pair().await;
        let noop = Counter::noop();
        let proxy = tokio::spawn(async move {
            bidirectional(
                &mut proxy_client,
                &mut proxy_upstream,
                Duration::from_secs(5),
                (&noop, &noop),
            )
            .await
        });
        client_end.write_all(b"request").await.unwrap();
        client_end.shutdown().await.unwrap();
        let mut got = Vec::new();
        server_end.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"request");
        // the server answers after the client's FIN arrived
        server_end.write_all(b"late reply").await.unwrap();
        server_end.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client_end.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"late reply");
        let (ended, totals) = proxy.await.unwrap().unwrap();
        assert_eq!(ended, Ended::Closed);
        assert_eq!(
            totals,
            Totals {
                sent: 7,
                received: 10
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_connections_are_closed_at_the_deadline() {
        let (_client_end, mut proxy_client) = pair().await;
        let (mut proxy_upstream, _server_end) = pair().await;
        let noop = Counter::noop();
        let begun = Instant::now();
        let (ended, _) = bidirectional(
            &mut proxy_client,
            &mut proxy_upstream,
            Duration::from_secs(30),
            (&noop, &noop),
        )
        .await
        .unwrap();
        assert_eq!(ended, Ended::Idle);
        assert!(begun.elapsed() >= Duration::from_secs(30));
    }
}

//! Copying bytes both ways between client and endpoint.
//!
//! Why not `tokio::io::copy_bidirectional`: it has no idle timeout and no per-chunk byte
//! counting. This is the same loop with both: each direction reads into its own buffer and
//! writes it out; at EOF it shuts down the write side of the other socket (sends FIN) and
//! stops, while the other direction keeps going (TCP half-close, which protocols like
//! `rsync`, `nc -q` and HTTP/1.0 bodies rely on); the direction that ends last leaves its FIN
//! to the `close` that follows. An error in either direction ends both.
//! Buffers start at 16 KiB and double while reads keep filling them, so bulk transfers need
//! fewer syscalls and idle connections stay small. Once a read fills a buffer of
//! [`SPLICE_FROM`], the direction is bulk and moves on through a pipe with `splice(2)`
//! ([`splice`]), without copying its bytes through user space.

use bytes::BytesMut;
use metrics::Counter;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::time::Instant;

mod splice;

const START_BUF: usize = 16 * 1024;
/// A direction whose read fills a buffer this large turns to `splice` (when a pipe can be
/// had; otherwise it keeps copying with this buffer).
const SPLICE_FROM: usize = 64 * 1024;
/// The most one chunk moves (the pipe's size when splicing).
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
/// moves for `idle`. Byte counts go to the given counters as they move. The caller closes
/// both sockets when it returns: the FIN of the direction that ended last goes with that
/// close.
pub async fn bidirectional(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
    counters: (&Counter, &Counter),
) -> io::Result<(Ended, Totals)> {
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let one_ended = AtomicBool::new(false);
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = one_way(
        client_read,
        upstream_write,
        Flow::new(counters.0, &last, start, &one_ended),
    );
    let down = one_way(
        upstream_read,
        client_write,
        Flow::new(counters.1, &last, start, &one_ended),
    );
    tokio::select! {
        result = async { tokio::try_join!(up, down) } => {
            let (sent, received) = result?;
            Ok((Ended::Closed, Totals { sent, received }))
        }
        () = idle_timer(&last, start, idle) => Ok((Ended::Idle, Totals::default())),
    }
}

/// What a direction has moved, and where each chunk is counted.
struct Flow<'a> {
    total: u64,
    counter: &'a Counter,
    /// Milliseconds from `start` to the last chunk of either direction.
    last: &'a AtomicU64,
    start: Instant,
    /// Whether either direction has ended.
    one_ended: &'a AtomicBool,
}

impl<'a> Flow<'a> {
    fn new(
        counter: &'a Counter,
        last: &'a AtomicU64,
        start: Instant,
        one_ended: &'a AtomicBool,
    ) -> Self {
        Flow {
            total: 0,
            counter,
            last,
            start,
            one_ended,
        }
    }

    /// This direction's source ended: sends the FIN on `to`, unless the other direction has
    /// ended already. Then both sockets are done and the caller's `close` sends that FIN
    /// (nothing is left unread on `to`, whose own FIN came), one system call fewer per
    /// connection.
    async fn ended(&self, to: &mut WriteHalf<'_>) -> io::Result<()> {
        if self.one_ended.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        to.shutdown().await
    }

    fn moved(&mut self, n: usize) {
        self.total += n as u64;
        self.counter.increment(n as u64);
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Moves `from` → `to` until `from` ends (then [`Flow::ended`]) or either fails; returns
/// the bytes moved.
async fn one_way(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut flow: Flow<'_>,
) -> io::Result<u64> {
    // BytesMut: reads go into spare capacity, so a fresh buffer is never zero-filled.
    let mut buf = BytesMut::with_capacity(START_BUF);
    let mut may_splice = true;
    loop {
        buf.clear();
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            flow.ended(&mut to).await?;
            return Ok(flow.total);
        }
        to.write_all(&buf).await?;
        flow.moved(n);
        let capacity = buf.capacity();
        if n < capacity {
            continue;
        }
        if may_splice && capacity >= SPLICE_FROM {
            if let Some(pipe) = splice::Pipe::new() {
                drop(buf);
                pipe.relay(from.as_ref(), &mut to, &mut flow).await?;
                return Ok(flow.total);
            }
            may_splice = false;
        }
        if capacity < MAX_BUF {
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

    #[tokio::test]
    async fn the_last_fin_goes_with_the_close() {
        let (mut client_end, mut proxy_client) = pair().await;
        let (mut proxy_upstream, mut server_end) = pair().await;
        let proxy = tokio::spawn(async move {
            let noop = Counter::noop();
            let idle = Duration::from_secs(5);
            let result =
                bidirectional(&mut proxy_client, &mut proxy_upstream, idle, (&noop, &noop))
                    .await
                    .map(|(ended, _)| ended);
            (result.ok(), proxy_client, proxy_upstream)
        });
        // The endpoint ends first: its FIN is passed on at once.
        server_end.write_all(b"bye").await.unwrap();
        server_end.shutdown().await.unwrap();
        let mut got = Vec::new();
        client_end.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        // Then the client ends, and the copy is over...
        client_end.shutdown().await.unwrap();
        let (ended, proxy_client, proxy_upstream) = proxy.await.unwrap();
        assert_eq!(ended, Some(Ended::Closed));
        // ...but the endpoint gets that FIN only with the close.
        let mut byte = [0u8; 1];
        let early = tokio::time::timeout(Duration::from_millis(200), server_end.read(&mut byte));
        assert!(early.await.is_err(), "a FIN came before the close");
        drop(proxy_upstream);
        assert_eq!(server_end.read(&mut byte).await.unwrap(), 0);
        drop(proxy_client);
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

//! The watchdog on paused time, fed through [`Watched`] from in-memory streams.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const HEADER: Duration = Duration::from_millis(300);
const IDLE: Duration = Duration::from_secs(2);

/// The client preface and an empty SETTINGS frame.
const OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

/// A client writing to a connection whose server side reads through the watch's stream.
struct Client {
    to_server: DuplexStream,
    server: Watched<DuplexStream>,
}

impl Client {
    fn new(watch: &Watch) -> Client {
        let (to_server, server) = tokio::io::duplex(1024);
        Client {
            to_server,
            server: watch.stream(server),
        }
    }

    /// Sends `bytes`, and has the server read them.
    async fn send(&mut self, bytes: &[u8]) {
        self.to_server.write_all(bytes).await.unwrap();
        let mut read = vec![0; bytes.len()];
        self.server.read_exact(&mut read).await.unwrap();
        assert_eq!(read, bytes);
    }
}

/// A watch whose client has sent `bytes`.
async fn sent(bytes: &[u8]) -> (Watch, Client) {
    let watch = Watch::new();
    let mut client = Client::new(&watch);
    client.send(bytes).await;
    (watch, client)
}

/// How long after now the watchdog expires, and why; `None` if not within a minute.
async fn expires(dog: &mut Watchdog) -> Option<(Duration, Expired)> {
    let start = Instant::now();
    let why = tokio::time::timeout(Duration::from_secs(60), dog.expired())
        .await
        .ok()?;
    Some((start.elapsed(), why))
}

#[tokio::test(start_paused = true)]
async fn a_client_that_sends_nothing_stalls_out_at_the_header_deadline() {
    let watch = Watch::new();
    let mut dog = watch.watchdog(HEADER, IDLE);
    assert_eq!(expires(&mut dog).await, Some((HEADER, Expired::Stalled)));
}

#[tokio::test(start_paused = true)]
async fn a_preface_without_settings_stalls_out() {
    let (watch, _client) = sent(&OPENING[..24]).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    assert_eq!(expires(&mut dog).await, Some((HEADER, Expired::Stalled)));
}

#[tokio::test(start_paused = true)]
async fn an_opened_connection_with_no_request_goes_idle_after_the_idle_timeout() {
    let (watch, _client) = sent(OPENING).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    assert_eq!(expires(&mut dog).await, Some((IDLE, Expired::Idle)));
}

#[tokio::test(start_paused = true)]
async fn a_request_in_flight_keeps_the_connection_and_idle_time_counts_from_its_end() {
    let (watch, _client) = sent(OPENING).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    let request = watch.request();
    let long = IDLE * 5;
    let held = tokio::time::timeout(long, dog.expired()).await;
    assert!(held.is_err(), "expired with a request in flight: {held:?}");
    drop(request);
    assert_eq!(expires(&mut dog).await, Some((IDLE, Expired::Idle)));
}

#[tokio::test(start_paused = true)]
async fn a_header_block_that_does_not_end_stalls_out_though_bytes_keep_coming() {
    let (watch, mut client) = sent(OPENING).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    // A HEADERS frame without END_HEADERS on stream 1.
    client.send(b"\0\0\x01\x01\0\0\0\0\x01\x82").await;
    let start = Instant::now();
    let trickle = async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            // One CONTINUATION of one byte, without END_HEADERS.
            client.send(b"\0\0\x01\x09\0\0\0\0\x01\x84").await;
        }
    };
    let why = tokio::select! {
        why = dog.expired() => why,
        () = trickle => panic!("the watchdog let ten seconds of trickle through"),
    };
    assert_eq!((start.elapsed(), why), (HEADER, Expired::Stalled));
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_is_not_http2_is_never_closed_by_the_watchdog() {
    let (watch, _client) = sent(b"GET / HTTP/1.1\r\n").await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    assert_eq!(expires(&mut dog).await, None);
}

#[tokio::test(start_paused = true)]
async fn after_a_goaway_an_idle_connection_closes_after_the_header_deadline() {
    let (watch, _client) = sent(OPENING).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    dog.after_goaway(None);
    assert_eq!(expires(&mut dog).await, Some((HEADER, Expired::Idle)));
}

#[tokio::test(start_paused = true)]
async fn after_a_stall_the_connection_gets_one_turn_before_it_is_closed() {
    let watch = Watch::new();
    let mut dog = watch.watchdog(HEADER, IDLE);
    assert_eq!(expires(&mut dog).await, Some((HEADER, Expired::Stalled)));
    dog.after_goaway(Some(Expired::Stalled));
    let (count, waker) = crate::wake_count::WakeCount::waker();
    let mut cx = Context::from_waker(&waker);
    assert_eq!(dog.poll_expired(&mut cx), Poll::Pending);
    assert_eq!(count.get(), 1, "it asks to be polled again");
    assert_eq!(dog.poll_expired(&mut cx), Poll::Ready(Expired::Stalled));
}

#[tokio::test(start_paused = true)]
async fn the_watchdog_polled_again_before_anything_is_due_stays_pending_without_wakeups() {
    let (watch, _client) = sent(OPENING).await;
    let mut dog = watch.watchdog(HEADER, IDLE);
    let (count, waker) = crate::wake_count::WakeCount::waker();
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        assert_eq!(dog.poll_expired(&mut cx), Poll::Pending);
    }
    assert_eq!(count.get(), 0);
}

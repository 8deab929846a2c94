//! The idle set over real sockets: a parked connection that becomes readable is handed back,
//! one whose deadline passes is closed, and a stop closes them all; each gives its slot back.

use super::*;
use crate::router::http::listener::Open;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

fn listener_config() -> Arc<ListenerConfig> {
    let text = "[[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\n";
    let config = crate::config::Config::parse(text, "test.toml").unwrap();
    Arc::new(config.http.listeners[0].clone())
}

/// A connected pair: the server's side, ready to park, and the client's.
async fn pair(open: &Arc<Open>, until: Instant) -> (Parked, tokio::net::TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    let parked = Parked {
        peers: Peers {
            client: peer,
            local: server.local_addr().unwrap(),
        },
        stream: server.into_std().unwrap(),
        until,
        config: listener_config(),
        slot: Slot::take(open, metrics::Gauge::noop()),
    };
    (parked, client)
}

/// A set, its stop, and a listener's open-connection count.
fn fixture() -> (Arc<IdleSet>, CancellationToken, Arc<Open>) {
    let set = IdleSet::new(metrics::Gauge::noop()).unwrap();
    (
        Arc::new(set),
        CancellationToken::new(),
        Arc::new(Open::default()),
    )
}

/// Asserts that the proxy side of `client` was closed with nothing written.
async fn closed_silently(client: &mut tokio::net::TcpStream) {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(client, &mut rest),
    )
    .await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    assert!(rest.is_empty());
}

/// Runs `set` until `stop`, sending what it resumes to the returned channel.
fn run(set: &Arc<IdleSet>, stop: &CancellationToken) -> mpsc::UnboundedReceiver<Parked> {
    let (tx, rx) = mpsc::unbounded_channel();
    let (set, stop) = (Arc::clone(set), stop.clone());
    tokio::spawn(async move {
        set.run(&stop, |p| drop(tx.send(p))).await;
    });
    rx
}

#[tokio::test]
async fn a_readable_connection_is_handed_back_with_its_slot() {
    let (set, stop, open) = fixture();
    let mut resumed = run(&set, &stop);
    let later = Instant::now() + Duration::from_secs(60);
    let (parked, mut client) = pair(&open, later).await;
    let (_quiet, _quiet_client) = pair(&open, later).await;
    set.park(parked);
    set.park(_quiet);
    assert_eq!(set.len(), 2);
    client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(5), resumed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.until, later);
    assert_eq!(set.len(), 1, "only the readable one left the set");
    // Its bytes are still there for the task that takes it.
    let mut stream = back.stream;
    stream.set_nonblocking(false).unwrap();
    let mut got = [0u8; 16];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"GET / HTTP/1.1\r\n");
    assert_eq!(open.count.load(Ordering::Acquire), 2);
    drop(back.slot);
    assert_eq!(open.count.load(Ordering::Acquire), 1);
    stop.cancel();
}

#[tokio::test]
async fn a_client_that_closes_is_handed_back_to_be_closed() {
    let (set, stop, open) = fixture();
    let mut resumed = run(&set, &stop);
    let (parked, client) = pair(&open, Instant::now() + Duration::from_secs(60)).await;
    set.park(parked);
    drop(client);
    let back = tokio::time::timeout(Duration::from_secs(5), resumed.recv())
        .await
        .unwrap()
        .unwrap();
    let mut stream = back.stream;
    stream.set_nonblocking(false).unwrap();
    assert_eq!(stream.read(&mut [0u8; 8]).unwrap(), 0);
    stop.cancel();
}

#[tokio::test]
async fn a_connection_is_closed_at_its_deadline_and_gives_its_slot_back() {
    let (set, stop, open) = fixture();
    let mut resumed = run(&set, &stop);
    let (late, _late_client) = pair(&open, Instant::now() + Duration::from_secs(60)).await;
    set.park(late);
    // Parked after one with a later deadline: the set's task wakes for it.
    let (soon, mut client) = pair(&open, Instant::now() + Duration::from_millis(300)).await;
    set.park(soon);
    closed_silently(&mut client).await;
    assert_eq!(set.len(), 1);
    assert_eq!(open.count.load(Ordering::Acquire), 1);
    assert!(
        resumed.try_recv().is_err(),
        "a closed connection was handed back"
    );
    stop.cancel();
}

#[tokio::test]
async fn a_stop_closes_every_parked_connection_and_parks_no_more() {
    let (set, stop, open) = fixture();
    let (tx, _rx) = mpsc::unbounded_channel();
    let task = {
        let (set, stop) = (Arc::clone(&set), stop.clone());
        tokio::spawn(async move { set.run(&stop, |p| drop(tx.send(p))).await })
    };
    let later = Instant::now() + Duration::from_secs(60);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (parked, client) = pair(&open, later).await;
        set.park(parked);
        clients.push(client);
    }
    stop.cancel();
    task.await.unwrap();
    assert_eq!(set.len(), 0);
    assert_eq!(open.count.load(Ordering::Acquire), 0);
    for mut c in clients {
        closed_silently(&mut c).await;
    }
    // After the stop, a connection that goes idle is closed, not parked.
    let (parked, mut client) = pair(&open, later).await;
    set.park(parked);
    assert_eq!(set.len(), 0);
    assert_eq!(open.count.load(Ordering::Acquire), 0);
    closed_silently(&mut client).await;
}

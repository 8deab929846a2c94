//! The stream against clients that make its bookkeeping work: records and the handshake
//! dribbled a byte at a time, a reader slower than a large answer, a half-close after
//! `close_notify`, key updates, a corrupted record.

use super::{pair, pattern, server};
use crate::tls::testserver::{HTTP1, client_config};
use rustls::{ClientConnection, SupportedProtocolVersion};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `bytes` one per segment, letting the server run between them.
async fn dribble(tcp: &mut TcpStream, bytes: &[u8]) {
    for byte in bytes {
        tcp.write_all(std::slice::from_ref(byte)).await.unwrap();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
}

/// Reads what the server sent into `conn`, once; false at the end of the stream.
async fn receive(tcp: &mut TcpStream, conn: &mut ClientConnection) -> bool {
    let mut buf = [0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    conn.read_tls(&mut &buf[..n]).unwrap();
    conn.process_new_packets().unwrap();
    n > 0
}

/// A rustls client driven by hand, its handshake sent a byte at a time: the ClientHello
/// (read by [`crate::tls::hello`]) and then the client's Finished (read by the handshake).
async fn dribbling_client(
    addr: std::net::SocketAddr,
    pki: &crate::tls::testutil::Pki,
) -> (TcpStream, ClientConnection) {
    let config = Arc::new(client_config(pki, &[&rustls::version::TLS13], &[HTTP1]));
    let name = rustls::pki_types::ServerName::try_from("api.example.com").unwrap();
    let mut conn = ClientConnection::new(config, name).unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    while conn.is_handshaking() || conn.wants_write() {
        if conn.wants_write() {
            let mut tls = Vec::new();
            conn.write_tls(&mut tls).unwrap();
            dribble(&mut tcp, &tls).await;
        } else {
            assert!(receive(&mut tcp, &mut conn).await, "server closed");
        }
    }
    (tcp, conn)
}

#[tokio::test]
async fn a_handshake_and_a_record_sent_byte_by_byte_are_read_whole() {
    let (pki, addr, server) = server().await;
    let (mut tcp, mut conn) = dribbling_client(addr, &pki).await;
    let mut server = server.await.unwrap();
    conn.writer()
        .write_all(b"GET /dribbled HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut tls = Vec::new();
    conn.write_tls(&mut tls).unwrap();
    let reading = tokio::spawn(async move {
        let mut got = [0u8; 26];
        server.read_exact(&mut got).await.unwrap();
        (server, got)
    });
    dribble(&mut tcp, &tls).await;
    let (mut server, got) = reading.await.unwrap();
    assert_eq!(&got, b"GET /dribbled HTTP/1.1\r\n\r\n");
    assert_eq!(server.incoming.capacity(), 0, "no cut record is left");
    server.write_all(b"HTTP/1.1 204 \r\n\r\n").await.unwrap();
    server.flush().await.unwrap();
    let mut answer = Vec::new();
    while answer.len() < 17 {
        assert!(receive(&mut tcp, &mut conn).await);
        let mut chunk = [0u8; 64];
        match conn.reader().read(&mut chunk) {
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::WouldBlock),
        }
    }
    assert_eq!(answer, b"HTTP/1.1 204 \r\n\r\n");
}

#[tokio::test]
async fn an_answer_larger_than_the_socket_buffers_waits_for_a_slow_reader_and_arrives_whole() {
    let (mut client, mut server) = pair(&[&rustls::version::TLS13]).await;
    let sent = pattern(8 * 1024 * 1024);
    let answer = sent.clone();
    let writer = tokio::spawn(async move {
        server.write_all(&answer).await.unwrap();
        server.shutdown().await.unwrap();
        server
    });
    // The server's writes block (WouldBlock with sealed bytes kept) until the client reads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!writer.is_finished(), "8 MiB fit in the socket buffers");
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert!(got == sent, "the answer differs");
    let server = writer.await.unwrap();
    assert_eq!(server.out.capacity(), 0, "nothing kept once sent");
}

async fn half_close(versions: &[&'static SupportedProtocolVersion]) {
    let (mut client, mut server) = pair(versions).await;
    client.write_all(b"request").await.unwrap();
    // close_notify, then the TCP half-close.
    client.shutdown().await.unwrap();
    let mut request = Vec::new();
    server.read_to_end(&mut request).await.unwrap();
    assert_eq!(request, b"request");
    let answer = pattern(100_000);
    server.write_all(&answer).await.unwrap();
    server.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert!(got == answer, "the answer differs");
}

#[tokio::test]
async fn a_client_that_half_closes_after_close_notify_still_gets_the_answer_over_tls13() {
    half_close(&[&rustls::version::TLS13]).await;
}

#[tokio::test]
async fn a_client_that_half_closes_after_close_notify_still_gets_the_answer_over_tls12() {
    half_close(&[&rustls::version::TLS12]).await;
}

#[tokio::test]
async fn key_updates_the_client_asks_for_are_answered_and_data_flows_on() {
    let (mut client, mut server) = pair(&[&rustls::version::TLS13]).await;
    for round in 0..3u8 {
        // A KeyUpdate asking for ours: rustls answers with its own, which must go out before
        // the records encrypted under the new keys.
        client.get_mut().1.refresh_traffic_keys().unwrap();
        client.write_all(&[round; 3]).await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 3];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [round; 3]);
        server.write_all(&[round + 10; 2]).await.unwrap();
        server.flush().await.unwrap();
        let mut answer = [0u8; 2];
        client.read_exact(&mut answer).await.unwrap();
        assert_eq!(answer, [round + 10; 2]);
    }
}

#[tokio::test]
async fn a_corrupted_record_is_an_error_and_the_client_gets_an_alert() {
    let (pki, addr, server) = server().await;
    let (mut tcp, mut conn) = dribbling_client(addr, &pki).await;
    let mut server = server.await.unwrap();
    conn.writer().write_all(b"hello").unwrap();
    let mut tls = Vec::new();
    conn.write_tls(&mut tls).unwrap();
    let last = tls.len() - 1;
    tls[last] ^= 1;
    tcp.write_all(&tls).await.unwrap();
    let mut got = [0u8; 5];
    let error = server.read(&mut got).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    // The session tickets come first, then the alert.
    let mut alert = None;
    for _ in 0..10 {
        let mut buf = [0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf));
        let n = read.await.expect("an alert or the end").unwrap();
        conn.read_tls(&mut &buf[..n]).unwrap();
        if let Err(error) = conn.process_new_packets() {
            alert = Some(error);
            break;
        }
        assert!(n > 0, "closed without an alert");
    }
    assert_eq!(
        alert,
        Some(rustls::Error::AlertReceived(
            rustls::AlertDescription::BadRecordMac
        ))
    );
}

#[tokio::test]
async fn a_key_update_read_while_a_split_writer_waits_does_not_strand_the_writer() {
    let (mut client, server) = pair(&[&rustls::version::TLS13]).await;
    let (mut rd, mut wr) = tokio::io::split(server);
    let sent = pattern(8 * 1024 * 1024);
    let answer = sent.clone();
    // The writer fills the socket and waits for it to drain.
    let writer = tokio::spawn(async move {
        wr.write_all(&answer).await.unwrap();
        wr.flush().await.unwrap();
    });
    let reader = tokio::spawn(async move {
        let mut got = [0u8; 1];
        rd.read_exact(&mut got).await.unwrap();
        got
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Its answer (the server's KeyUpdate) cannot be sent now: the reader must leave the
    // writer's wake-up alone.
    client.get_mut().1.refresh_traffic_keys().unwrap();
    client.write_all(b"k").await.unwrap();
    client.flush().await.unwrap();
    assert_eq!(&reader.await.unwrap(), b"k");
    let mut got = vec![0u8; sent.len()];
    tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut got))
        .await
        .expect("the writer was woken")
        .unwrap();
    assert!(got == sent, "the answer differs");
    writer.await.unwrap();
}

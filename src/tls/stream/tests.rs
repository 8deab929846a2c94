//! The unbuffered stream over real sockets, against tokio-rustls' client: data across many
//! records both ways, small readers, close_notify both ways, and no buffer kept while idle.

mod hostile;

use super::TlsStream;
use crate::tls::testserver::{H2, HTTP1, client_config, connect, sites};
use crate::tls::testutil::Pki;
use crate::tls::{Accepted, accept, server_config};
use arc_swap::ArcSwap;
use rustls::SupportedProtocolVersion;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A listener whose first connection goes through [`accept`]; and the PKI it trusts.
async fn server() -> (
    Pki,
    std::net::SocketAddr,
    tokio::task::JoinHandle<Box<TlsStream>>,
) {
    let pki = Pki::new();
    let (_sites, store) = sites(&pki);
    let store = Arc::new(ArcSwap::from_pointee(store));
    let config = server_config(Arc::clone(&store), &[H2, HTTP1]).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        match accept(
            &acceptor,
            &store,
            tcp,
            Duration::from_secs(5),
            |_| None::<()>,
        )
        .await
        {
            Ok(Accepted::Terminated { stream, .. }) => stream,
            other => panic!("not terminated: {other:?}"),
        }
    });
    (pki, addr, server)
}

/// A client and the server side of one TLS connection (versions as given).
async fn pair(
    versions: &[&'static SupportedProtocolVersion],
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Box<TlsStream>,
) {
    let (pki, addr, server) = server().await;
    let client_config = Arc::new(client_config(&pki, versions, &[HTTP1]));
    let client = connect(addr, &client_config, "api.example.com")
        .await
        .unwrap();
    (client, server.await.unwrap())
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Echoes what it reads, through a reader buffer much smaller than a record.
async fn echo(mut server: Box<TlsStream>) -> Box<TlsStream> {
    let mut buf = [0u8; 1000];
    loop {
        let n = server.read(&mut buf).await.unwrap();
        if n == 0 {
            return server;
        }
        server.write_all(&buf[..n]).await.unwrap();
        server.flush().await.unwrap();
    }
}

async fn round_trip(versions: &[&'static SupportedProtocolVersion]) {
    let (client, server) = pair(versions).await;
    let (mut rd, mut wr) = tokio::io::split(client);
    let sent = pattern(300 * 1024);
    let echoed = tokio::spawn(echo(server));
    let to_send = sent.clone();
    let writer = tokio::spawn(async move {
        for chunk in to_send.chunks(20_000) {
            wr.write_all(chunk).await.unwrap();
        }
        wr.flush().await.unwrap();
        wr
    });
    let mut got = vec![0u8; sent.len()];
    rd.read_exact(&mut got).await.unwrap();
    assert!(got == sent, "echoed bytes differ");
    let mut wr = writer.await.unwrap();
    // The client's close_notify ends the server's stream: the echo loop returns.
    wr.shutdown().await.unwrap();
    let server = tokio::time::timeout(Duration::from_secs(5), echoed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server.incoming.capacity(), 0);
    assert_eq!(server.plain.capacity(), 0);
    assert_eq!(server.out.capacity(), 0);
}

#[tokio::test]
async fn data_across_many_records_comes_back_whole_over_tls13() {
    round_trip(&[&rustls::version::TLS13]).await;
}

#[tokio::test]
async fn data_across_many_records_comes_back_whole_over_tls12() {
    round_trip(&[&rustls::version::TLS12]).await;
}

#[tokio::test]
async fn an_idle_stream_holds_no_buffer_and_shutdown_sends_close_notify() {
    let (mut client, mut server) = pair(&[&rustls::version::TLS13]).await;
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    client.flush().await.unwrap();
    let mut head = [0u8; 18];
    server.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"GET / HTTP/1.1\r\n\r\n");
    server
        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        .await
        .unwrap();
    server.flush().await.unwrap();
    assert_eq!(
        (
            server.incoming.capacity(),
            server.plain.capacity(),
            server.out.capacity()
        ),
        (0, 0, 0)
    );
    server.shutdown().await.unwrap();
    let mut answer = Vec::new();
    // A clean end (Ok), not UnexpectedEof: the client got our close_notify.
    client.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer, b"HTTP/1.1 204 No Content\r\n\r\n");
}

#[tokio::test]
async fn data_that_comes_with_the_clients_finished_is_read_without_waiting_for_more() {
    let (pki, addr, server) = server().await;
    let config = Arc::new(client_config(&pki, &[&rustls::version::TLS13], &[HTTP1]));
    // A blocking rustls client that writes its request before the handshake is over: rustls
    // sends it in the same write as its Finished, so the server's handshake reads both.
    let client = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let name = rustls::pki_types::ServerName::try_from("api.example.com").unwrap();
        let mut conn = rustls::ClientConnection::new(config, name).unwrap();
        conn.writer().write_all(b"hello").unwrap();
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while conn.is_handshaking() || conn.wants_write() {
            conn.complete_io(&mut sock).unwrap();
        }
        let mut answer = [0u8; 3];
        rustls::Stream::new(&mut conn, &mut sock)
            .read_exact(&mut answer)
            .unwrap();
        answer
    });
    let mut server = server.await.unwrap();
    let mut got = [0u8; 5];
    tokio::time::timeout(Duration::from_secs(5), server.read_exact(&mut got))
        .await
        .expect("the request that came with the handshake is read at once")
        .unwrap();
    assert_eq!(&got, b"hello");
    server.write_all(b"bye").await.unwrap();
    server.flush().await.unwrap();
    assert_eq!(&client.join().unwrap(), b"bye");
}

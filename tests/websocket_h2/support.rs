//! For the WebSocket-over-HTTP/2 tests: a WebSocket backend written by hand (it checks the
//! handshake, answers with the accept of the key it got, and echoes frames), an HTTP/2 client
//! that opens WebSockets with extended CONNECT (hyper, over TLS or h2c), and frames.
#![allow(unreachable_pub, dead_code)]

use crate::common::tls::{Issued, within};
use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The accept a backend answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// The one RFC 6455 gives for the key it got.
    Right,
    /// Another one.
    Wrong,
}

/// A WebSocket backend, the request heads it got and how many of its WebSockets ended.
pub struct Backend {
    pub addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    ended: Arc<AtomicUsize>,
}

impl Backend {
    /// The request heads received so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }

    /// Waits until `want` WebSockets' connections (or streams) from the proxy have ended;
    /// how many have.
    pub async fn ended(&self, want: usize) -> usize {
        within("websockets ended at the endpoint", async {
            while self.ended.load(Ordering::SeqCst) < want {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        self.ended.load(Ordering::SeqCst)
    }
}

/// The `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
pub fn accept_for(key: &str) -> String {
    let mut context = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.as_bytes());
    context.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    STANDARD.encode(context.finish())
}

/// The value of the first field `name` (lower case) in a head.
pub fn field<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// Starts a backend: a `GET` with `Upgrade: websocket`, version 13 and a key gets a `101`
/// (with `Sec-WebSocket-Protocol: chat` when asked for); anything else a `426`. Once switched
/// it echoes each frame the client sends (masked) as a server frame (unmasked).
pub async fn backend(accept: Accept) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let ended = Arc::new(AtomicUsize::new(0));
    let (seen, done) = (Arc::clone(&heads), Arc::clone(&ended));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
            tokio::spawn(async move {
                if serve(socket, accept, seen).await {
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    Backend { addr, heads, ended }
}

/// Serves one connection; whether it switched (its WebSocket has ended when this returns).
async fn serve(mut socket: TcpStream, accept: Accept, seen: Arc<Mutex<Vec<String>>>) -> bool {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
            return false;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(head.clone());
    let key = field(&head, "sec-websocket-key").filter(|_| {
        head.starts_with("GET ")
            && field(&head, "upgrade") == Some("websocket")
            && field(&head, "sec-websocket-version") == Some("13")
    });
    let Some(key) = key else {
        let refused = b"HTTP/1.1 426 Upgrade Required\r\nsec-websocket-version: 13\r\n\
                        content-length: 9\r\n\r\nnot a ws\n";
        let _ = socket.write_all(refused).await;
        return false;
    };
    let accept = match accept {
        Accept::Right => accept_for(key),
        Accept::Wrong => accept_for("another key"),
    };
    let protocol = match field(&head, "sec-websocket-protocol") {
        Some(p) if p.split(',').any(|p| p.trim() == "chat") => "sec-websocket-protocol: chat\r\n",
        _ => "",
    };
    let switched = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\
         sec-websocket-accept: {accept}\r\n{protocol}\r\n"
    );
    if socket.write_all(switched.as_bytes()).await.is_err() {
        return true;
    }
    while let Some((opcode, payload)) = read_client_frame(&mut socket).await {
        let echoed = socket.write_all(&server_frame(opcode, &payload)).await;
        if echoed.is_err() || opcode == 0x8 {
            break;
        }
    }
    true
}

/// Starts an `h2c` backend that takes WebSockets as extended CONNECTs (RFC 8441): one with
/// `:protocol websocket` gets a `200` (with `Sec-WebSocket-Protocol: chat`) and its frames
/// echoed; anything else a `426`. Each request is kept as "METHOD PATH protocol=P" and its
/// fields, one a line.
pub async fn h2c_backend() -> Backend {
    h2_backend(None).await
}

/// The same over TLS with ALPN h2 (an `h2` service's endpoint), with the certificate and key
/// in `issued`.
pub async fn h2_tls_backend(issued: &Issued) -> Backend {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(&issued.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    h2_backend(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
}

/// [`h2c_backend`], over TLS when `tls` is given.
async fn h2_backend(tls: Option<tokio_rustls::TlsAcceptor>) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let ended = Arc::new(AtomicUsize::new(0));
    let (seen, done) = (Arc::clone(&heads), Arc::clone(&ended));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (seen, done) = (Arc::clone(&seen), Arc::clone(&done));
            let service = service_fn(move |req| {
                let answer = h2c_answer(req, &seen, &done);
                async move { Ok::<_, Infallible>(answer) }
            });
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder.enable_connect_protocol();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _ = match tls {
                    None => {
                        builder
                            .serve_connection(TokioIo::new(socket), service)
                            .await
                    }
                    Some(tls) => {
                        let Ok(stream) = tls.accept(socket).await else {
                            return;
                        };
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
            });
        }
    });
    Backend { addr, heads, ended }
}

fn h2c_answer(
    mut req: Request<Incoming>,
    seen: &Mutex<Vec<String>>,
    ended: &Arc<AtomicUsize>,
) -> Response<Full<Bytes>> {
    let protocol = req
        .extensions()
        .get::<hyper::ext::Protocol>()
        .map(|p| p.as_str().to_owned());
    let mut head = format!(
        "{} {} protocol={}\r\n",
        req.method(),
        req.uri().path_and_query().map_or("", |p| p.as_str()),
        protocol.as_deref().unwrap_or("-")
    );
    for (name, value) in req.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("?")));
    }
    seen.lock().unwrap().push(head);
    if req.method() != Method::CONNECT || protocol.as_deref() != Some("websocket") {
        let mut refused = Response::new(Full::new(Bytes::from_static(b"not a ws\n")));
        *refused.status_mut() = StatusCode::UPGRADE_REQUIRED;
        return refused;
    }
    let on = hyper::upgrade::on(&mut req);
    let ended = Arc::clone(ended);
    tokio::spawn(async move {
        let Ok(upgraded) = on.await else { return };
        let mut io = TokioIo::new(upgraded);
        while let Some((opcode, payload)) = read_client_frame(&mut io).await {
            if io.write_all(&server_frame(opcode, &payload)).await.is_err() || opcode == 0x8 {
                break;
            }
        }
        let _ = io.shutdown().await;
        ended.fetch_add(1, Ordering::SeqCst);
    });
    let mut ok = Response::new(Full::new(Bytes::new()));
    ok.headers_mut().insert(
        "sec-websocket-protocol",
        http::HeaderValue::from_static("chat"),
    );
    ok
}

/// Reads one masked client frame (payloads under 126 bytes): its opcode and unmasked payload.
async fn read_client_frame<S: AsyncRead + Unpin>(io: &mut S) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    io.read_exact(&mut head).await.ok()?;
    let len = usize::from(head[1] & 0x7f);
    assert!(head[1] & 0x80 != 0 && len < 126, "a masked small frame");
    let mut mask = [0u8; 4];
    io.read_exact(&mut mask).await.ok()?;
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.ok()?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Some((head[0] & 0x0f, payload))
}

/// A final server frame (unmasked).
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode, u8::try_from(payload.len()).unwrap()];
    f.extend_from_slice(payload);
    f
}

/// A final masked client text frame.
pub fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x81, 0x80 | u8::try_from(payload.len()).unwrap()];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Sends `text` as a client frame on a tunnel and checks the exact bytes of the echo.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(io: &mut S, text: &[u8]) {
    io.write_all(&client_frame(text)).await.unwrap();
    io.flush().await.unwrap();
    let want = server_frame(0x1, text);
    let mut got = vec![0u8; want.len()];
    within("echo", io.read_exact(&mut got)).await.unwrap();
    assert_eq!(got, want);
}

/// An HTTP/2 client connection (hyper) over `io`, once the server's SETTINGS allowed
/// extended CONNECT.
pub async fn h2_client<S>(io: S) -> SendRequest<Full<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = within(
        "h2 handshake",
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)),
    )
    .await
    .unwrap();
    // Driven here until the server's SETTINGS allow extended CONNECT (h2 applies them once
    // it has queued their ACK, which may not wake the connection again), then in a task.
    let mut conn = Box::pin(conn);
    within("SETTINGS_ENABLE_CONNECT_PROTOCOL", async {
        while !conn.is_extended_connect_protocol_enabled() {
            let polled = tokio::time::timeout(Duration::from_millis(10), conn.as_mut()).await;
            assert!(polled.is_err(), "the connection ended: {polled:?}");
        }
    })
    .await;
    tokio::spawn(conn);
    send
}

/// What an extended CONNECT got: the tunnel and the `200`'s fields, or a refusal.
pub enum Opened {
    Tunnel(TokioIo<Upgraded>, http::HeaderMap),
    Refused(StatusCode, String),
}

impl Opened {
    pub fn tunnel(self) -> (TokioIo<Upgraded>, http::HeaderMap) {
        match self {
            Opened::Tunnel(io, headers) => (io, headers),
            Opened::Refused(status, body) => panic!("refused: {status} {body}"),
        }
    }

    pub fn refused(self) -> (StatusCode, String) {
        match self {
            Opened::Tunnel(_, headers) => panic!("a tunnel opened: {headers:?}"),
            Opened::Refused(status, body) => (status, body),
        }
    }
}

/// Tries to open a WebSocket to `url` on a connection that may be going away: its status, or
/// the error the client got (a GOAWAY'd connection takes no new stream).
pub async fn try_open(
    send: &mut SendRequest<Full<Bytes>>,
    url: &str,
) -> Result<StatusCode, hyper::Error> {
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(url)
        .header("sec-websocket-version", "13")
        .extension(hyper::ext::Protocol::from_static("websocket"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    within("a new stream", async {
        send.ready().await?;
        Ok(send.send_request(req).await?.status())
    })
    .await
}

/// Sends an extended CONNECT for `protocol` to `url` (asking for subprotocol `chat`).
pub async fn open(
    send: &mut SendRequest<Full<Bytes>>,
    url: &str,
    protocol: &'static str,
) -> Opened {
    let req = Request::builder()
        .method(Method::CONNECT)
        .uri(url)
        .header("sec-websocket-version", "13")
        .header("sec-websocket-protocol", "chat, superchat")
        .extension(hyper::ext::Protocol::from_static(protocol))
        .body(Full::new(Bytes::new()))
        .unwrap();
    within("h2 ready", send.ready()).await.unwrap();
    let resp = within("extended CONNECT", send.send_request(req))
        .await
        .unwrap();
    let status = resp.status();
    if status != StatusCode::OK {
        let body = within("refusal body", resp.into_body().collect())
            .await
            .unwrap()
            .to_bytes();
        return Opened::Refused(status, String::from_utf8_lossy(&body).into_owned());
    }
    let headers = resp.headers().clone();
    let upgraded = within("upgrade", hyper::upgrade::on(resp)).await.unwrap();
    Opened::Tunnel(TokioIo::new(upgraded), headers)
}

/// A masked client close frame (no payload).
pub fn client_frame_close() -> Vec<u8> {
    vec![0x88, 0x80, 0x37, 0xfa, 0x21, 0x3d]
}

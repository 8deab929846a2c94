//! For the TLS edge tests (default certificate, SNI passthrough): a client that takes any
//! certificate and shows what it got, a backend that terminates TLS itself and echoes, and a
//! writer that cuts what it sends into small TCP segments.

use super::tls::{Issued, WAIT, within};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ServerConfig};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use switchyard::upstream::unverified::Unverified;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::client::TlsStream;

/// A client config that takes any certificate, offering `alpn`; `sni` false sends none.
pub fn any_cert_client(alpn: &[&[u8]], sni: bool) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        // Any certificate (the default one is self-signed): the test looks at it instead.
        .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_sni = sni;
    config.resumption = rustls::client::Resumption::disabled();
    config
}

/// Connects over TLS with `config` and `sni`; the leaf the server showed comes with it.
pub async fn connect_tls(
    addr: SocketAddr,
    config: ClientConfig,
    sni: &str,
) -> (TlsStream<TcpStream>, CertificateDer<'static>) {
    let tcp = within("tcp connect", TcpStream::connect(addr))
        .await
        .unwrap();
    connect_over(tcp, config, sni).await
}

/// TLS over any stream (a [`Segmented`] one, say).
pub async fn connect_over<S>(
    io: S,
    config: ClientConfig,
    sni: &str,
) -> (TlsStream<S>, CertificateDer<'static>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let tls = within("tls handshake", connector.connect(name, io))
        .await
        .unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, leaf)
}

/// True when the DER certificate's subject holds this common name (the bytes of the
/// UTF8String are in the DER as they are).
pub fn has_common_name(leaf: &CertificateDer<'_>, name: &str) -> bool {
    leaf.as_ref()
        .windows(name.len())
        .any(|w| w == name.as_bytes())
}

/// A backend that terminates TLS with `issued` itself and answers each line with
/// "NAME: line" until EOF.
pub async fn tls_echo_backend(name: &'static str, issued: &Issued) -> SocketAddr {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&issued.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&issued.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = tls.read(&mut buf).await {
                    let reply = format!("{name}: {}", String::from_utf8_lossy(&buf[..n]));
                    if tls.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = tls.flush().await;
                }
            });
        }
    });
    addr
}

/// Sends `line` and reads the backend's answer.
pub async fn echo<S: AsyncRead + AsyncWrite + Unpin>(tls: &mut S, line: &str) -> String {
    tls.write_all(line.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, tls.read(&mut buf))
        .await
        .expect("echo timed out")
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// A TCP stream whose writes go out at most `chunk` bytes at a time, a pause apart, so a
/// ClientHello reaches the server in many TCP segments (Nagle is off).
pub struct Segmented {
    inner: TcpStream,
    chunk: usize,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Segmented {
    pub async fn connect(addr: SocketAddr, chunk: usize) -> Segmented {
        let inner = TcpStream::connect(addr).await.unwrap();
        inner.set_nodelay(true).unwrap();
        Segmented {
            inner,
            chunk,
            pause: None,
        }
    }
}

impl AsyncRead for Segmented {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Segmented {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(pause) = self.pause.as_mut() {
            ready!(pause.as_mut().poll(cx));
            self.pause = None;
        }
        let n = buf.len().min(self.chunk);
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..n]))?;
        self.pause = Some(Box::pin(tokio::time::sleep(Duration::from_millis(2))));
        Poll::Ready(Ok(written))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The first bytes a rustls client sends for `sni`: its ClientHello record.
pub fn client_hello_bytes(sni: &str) -> Vec<u8> {
    let config = Arc::new(any_cert_client(&[], true));
    let name = ServerName::try_from(sni.to_owned()).unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

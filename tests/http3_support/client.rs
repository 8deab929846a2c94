//! An HTTP/3 client for the tests: quinn + h3 over rustls (aws-lc-rs), trusting the test CA,
//! on its own UDP socket on 127.0.0.1:0.
#![allow(dead_code, unreachable_pub, missing_docs)]

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, Request, StatusCode};
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;
use std::sync::Arc;

/// One HTTP/3 connection.
pub struct H3 {
    pub endpoint: quinn::Endpoint,
    pub quic: quinn::Connection,
    pub send: h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    pub closed: tokio::task::JoinHandle<h3::error::ConnectionError>,
}

/// What came back for a request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A quinn client config trusting `roots`, ALPN `h3`.
/// With `verify_as`, the leaf is checked against that name instead of the SNI.
pub fn client_config(roots: rustls::RootCertStore, verify_as: Option<&str>) -> quinn::ClientConfig {
    let mut tls = crate::common::tls::client_config(roots, &[b"h3"], verify_as);
    tls.enable_early_data = false;
    let quic = QuicClientConfig::try_from(tls).unwrap();
    quinn::ClientConfig::new(Arc::new(quic))
}

impl H3 {
    /// Connects to `addr` with `sni`, trusting `roots`.
    pub async fn connect(
        addr: SocketAddr,
        roots: rustls::RootCertStore,
        sni: &str,
    ) -> Result<H3, String> {
        Self::connect_as(addr, roots, sni, None).await
    }

    /// Connects to `addr` with `sni`, trusting `roots`, checking the leaf for `verify_as`.
    pub async fn connect_as(
        addr: SocketAddr,
        roots: rustls::RootCertStore,
        sni: &str,
        verify_as: Option<&str>,
    ) -> Result<H3, String> {
        Self::connect_with(addr, client_config(roots, verify_as), sni).await
    }

    /// Connects to `addr` with `sni` and the quinn client config `config`.
    pub async fn connect_with(
        addr: SocketAddr,
        config: quinn::ClientConfig,
        sni: &str,
    ) -> Result<H3, String> {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let connecting = endpoint.connect(addr, sni).map_err(|e| e.to_string())?;
        let quic = connecting.await.map_err(|e| e.to_string())?;
        let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic.clone()))
            .await
            .map_err(|e| e.to_string())?;
        let closed =
            tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
        Ok(H3 {
            endpoint,
            quic,
            send,
            closed,
        })
    }

    /// The leaf certificate the server sent.
    pub fn leaf(&self) -> CertificateDer<'static> {
        let identity = self.quic.peer_identity().unwrap();
        let chain = identity.downcast::<Vec<CertificateDer<'static>>>().unwrap();
        chain[0].clone()
    }

    /// A GET of `https://host/path`.
    pub async fn get(&mut self, host: &str, path: &str) -> Result<Reply, String> {
        let req = Request::get(format!("https://{host}{path}"))
            .body(())
            .unwrap();
        self.send(req, Bytes::new(), None).await
    }

    /// Sends `req` with `body` (in 64 KiB DATA frames) and `trailers` while it reads the
    /// answer (an echo could not stream back otherwise), and returns the whole answer.
    pub async fn send(
        &mut self,
        req: Request<()>,
        body: Bytes,
        trailers: Option<HeaderMap>,
    ) -> Result<Reply, String> {
        let e = |e: h3::error::StreamError| e.to_string();
        let stream = self.send.send_request(req).await.map_err(e)?;
        let (mut up, mut down) = stream.split();
        let upload = async move {
            let mut rest = body;
            while !rest.is_empty() {
                let chunk = rest.split_to(rest.len().min(64 * 1024));
                up.send_data(chunk).await.map_err(e)?;
            }
            match trailers {
                Some(t) => up.send_trailers(t).await.map_err(e),
                None => up.finish().await.map_err(e),
            }
        };
        let download = async move {
            let response = down.recv_response().await.map_err(e)?;
            let mut body = BytesMut::new();
            while let Some(mut chunk) = down.recv_data().await.map_err(e)? {
                body.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
            }
            let trailers = down.recv_trailers().await.map_err(e)?;
            Ok::<_, String>(Reply {
                status: response.status(),
                headers: response.headers().clone(),
                body: body.freeze(),
                trailers,
            })
        };
        let (sent, reply) = tokio::join!(upload, download);
        let reply = reply?;
        // An answer that came before the whole body went up (a 404, say) is still the answer.
        if let Err(error) = sent
            && reply.status.is_success()
        {
            return Err(error);
        }
        Ok(reply)
    }
}

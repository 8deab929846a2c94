//! gRPC-shaped traffic for the GRPCRoute tests: an h2c-only backend answering its name, and a
//! gRPC-shaped POST over h2c with prior knowledge.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// An h2c-only backend answering its name, the HTTP version it was spoken to in and the
/// `x-added` header it got.
pub async fn h2c_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let added = req.headers().get("x-added").cloned();
                    let mut resp = Response::new(Full::new(Bytes::from(name)));
                    let h = resp.headers_mut();
                    h.insert("content-type", "application/grpc".parse().unwrap());
                    h.insert(
                        "x-seen-version",
                        format!("{:?}", req.version()).parse().unwrap(),
                    );
                    if let Some(v) = added {
                        h.insert("x-added", v);
                    }
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// A gRPC-shaped POST of `path` to `authority` over h2c: (status, body, x-seen-version, x-added).
pub async fn call(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    header: Option<(&str, &str)>,
) -> Option<(u16, String, String, String)> {
    let fut = async {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(conn);
        let mut req = Request::post(format!("http://{authority}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some((k, v)) = header {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from_static(b"\0\0\0\0\0")))
            .unwrap();
        let resp = send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let get = |n: &str| {
            resp.headers()
                .get(n)
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default()
        };
        let (version, added) = (get("x-seen-version"), get("x-added"));
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((
            status,
            String::from_utf8_lossy(&body).into_owned(),
            version,
            added,
        ))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

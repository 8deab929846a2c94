//! HTTP helpers: a backend that reports what it saw, config text, a keep-alive client.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::net::{TcpListener, TcpStream};

/// An HTTP/1.1 backend answering "NAME METHOD PATH BODYLEN" and echoing what it saw in
/// `x-seen-*` headers.
pub async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let len = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes().len())
                        .unwrap_or(0);
                    let seen = |h: &str| {
                        parts
                            .headers
                            .get(h)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned()
                    };
                    let resp = Response::builder()
                        .header("x-backend", name)
                        .header("x-seen-host", seen("host"))
                        .header("x-seen-xff", seen("x-forwarded-for"))
                        .header("x-seen-proto", seen("x-forwarded-proto"))
                        .header("x-seen-request-id", seen("x-request-id"))
                        .header("x-seen-connection", seen("connection"))
                        .body(Full::new(Bytes::from(format!(
                            "{name} {} {} {len}",
                            parts.method, parts.uri
                        ))))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    addr
}

pub fn service(name: &str, endpoints: &[SocketAddr], extra: &str) -> String {
    let mut s = format!("[[services]]\nname = \"{name}\"\n{extra}\n");
    for e in endpoints {
        s.push_str(&format!("[[services.endpoints]]\naddress = \"{e}\"\n"));
    }
    s
}

pub fn config(body: &str) -> Config {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"2s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"500ms\"\nmax_header_bytes = 8192\n{body}"
    );
    Config::parse(&text, "test").unwrap()
}

pub async fn start(body: &str) -> (App, SocketAddr) {
    let app = app::start(config(body)).await.unwrap();
    let addr = app.http_addr("web").await.unwrap();
    (app, addr)
}

/// A keep-alive HTTP/1.1 client connection.
pub struct Client(pub hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client(send)
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> (u16, http::HeaderMap, String) {
        let resp = tokio::time::timeout(Duration::from_secs(5), self.0.send_request(req))
            .await
            .unwrap()
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn get(&mut self, host: &str, path: &str) -> (u16, http::HeaderMap, String) {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(req).await
    }
}

pub async fn get(addr: SocketAddr, host: &str, path: &str) -> (u16, http::HeaderMap, String) {
    Client::connect(addr).await.get(host, path).await
}

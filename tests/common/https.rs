//! The HTTPS side of the router for the integration tests: HTTP/1.1 backends that echo what
//! they saw, the standard services, routes and certificates, the app with one TLS listener,
//! and the answers clients get (with [`assert_routed`] for the forwarding headers).

use super::tls::{Issued, Pki, certificates, within};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::net::TcpListener;

// ---------------------------------------------------------------------------------------------
// Backends and the app

/// An HTTP/1.1 backend answering "NAME METHOD URI" and echoing what it saw in `x-seen-*`.
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
                    let _ = body.collect().await;
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
                        .body(Full::new(Bytes::from(format!(
                            "{name} {} {}",
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

/// Services `a`, `b`, `api`, `c` (HTTP-only, one backend each) and their routes:
/// `a.test` → a, `a.test/api` → api, `b.test` → b, `c.test` → c.
pub async fn services_and_routes() -> String {
    let mut s = String::new();
    for name in ["a", "b", "api", "c"] {
        let addr = backend(name).await;
        s.push_str(&format!(
            "[[services]]\nname = \"{name}\"\n[[services.endpoints]]\naddress = \"{addr}\"\n"
        ));
    }
    s.push_str(
        "[[routes]]\nhost = \"a.test\"\nservice = \"a\"\n\
         [[routes]]\nhost = \"a.test\"\npath = \"/api\"\nservice = \"api\"\n\
         [[routes]]\nhost = \"b.test\"\nservice = \"b\"\n\
         [[routes]]\nhost = \"c.test\"\nservice = \"c\"\n",
    );
    s
}

/// A whole config: admin on an ephemeral port, one TLS listener `tls`, `body` after it.
pub fn config_text(body: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"1s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhandshake_timeout = \"2s\"\n\
         {body}"
    )
}

pub fn parse(text: &str) -> Config {
    Config::parse(text, "test").unwrap()
}

pub async fn start(text: &str) -> (App, SocketAddr) {
    let app = within("start", app::start(parse(text))).await.unwrap();
    let addr = app.http_addr("tls").await.unwrap();
    (app, addr)
}

// ---------------------------------------------------------------------------------------------
// Answers

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

pub async fn answer(
    what: &str,
    fut: impl Future<Output = hyper::Result<Response<hyper::body::Incoming>>>,
) -> Answer {
    let resp = within(what, fut).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = within(what, resp.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct H1(pub hyper::client::conn::http1::SendRequest<Full<Bytes>>);

impl H1 {
    pub async fn get(&mut self, host: &str, path: &str) -> Answer {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        within("h1 ready", self.0.ready()).await.unwrap();
        answer("h1 request", self.0.send_request(req)).await
    }
}

/// An HTTP/2 connection.
#[derive(Clone)]
pub struct H2c(pub hyper::client::conn::http2::SendRequest<Full<Bytes>>);

impl H2c {
    pub async fn get(&mut self, host: &str, path: &str) -> Answer {
        let req = Request::get(format!("https://{host}{path}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        within("h2 ready", self.0.ready()).await.unwrap();
        answer("h2 request", self.0.send_request(req)).await
    }
}

// ---------------------------------------------------------------------------------------------
// The standard setup

/// The standard certificates: `a.test`, `b.test`, `*.wild.test`, and a default for
/// `default.test`.
pub struct Certs {
    pub pki: Pki,
    pub a: Issued,
    pub b: Issued,
    pub wild: Issued,
    pub default: Issued,
}

impl Certs {
    pub fn new() -> Certs {
        let pki = Pki::new();
        let a = pki.issue("a", &["a.test"]);
        let b = pki.issue("b", &["b.test"]);
        let wild = pki.issue("wild", &["*.wild.test"]);
        let default = pki.issue("default", &["default.test"]);
        Certs {
            pki,
            a,
            b,
            wild,
            default,
        }
    }

    pub fn toml(&self) -> String {
        certificates(&[
            (&self.a, false),
            (&self.b, false),
            (&self.wild, false),
            (&self.default, true),
        ])
    }
}

/// Starts the app with the standard certificates, services and routes.
pub async fn start_standard() -> (App, SocketAddr, Certs) {
    let certs = Certs::new();
    let text = config_text(&format!("{}{}", certs.toml(), services_and_routes().await));
    let (app, addr) = start(&text).await;
    (app, addr, certs)
}

/// Checks an answer came from `backend` with the forwarding headers of an HTTPS request.
pub fn assert_routed(a: &Answer, backend: &str, host: &str, path: &str) {
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("x-backend"), backend, "{a:?}");
    assert_eq!(a.body, format!("{backend} GET {path}"), "{a:?}");
    assert_eq!(a.header("x-seen-host"), host, "{a:?}");
    assert_eq!(a.header("x-seen-proto"), "https", "{a:?}");
    assert_eq!(a.header("x-seen-xff"), "127.0.0.1", "{a:?}");
    let id = a.header("x-seen-request-id");
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "generated request id: {a:?}"
    );
}

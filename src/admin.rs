//! The admin listener: `/` (the dashboard page), `/debug/overview` (its JSON), `/metrics`,
//! `/livez`, `/readyz`, `/debug/table`, `/debug/ipvs`.
//!
//! It is a separate listener (127.0.0.1 by default) so that probes and scrapes never compete
//! with proxied traffic and are never exposed by accident. `/readyz` is 200 once the first
//! table is published and every listener is bound, and turns 503 as soon as shutdown begins,
//! so a load balancer stops sending new clients while open connections drain.
//!
//! The page ([`PAGE`]) is one embedded file of HTML, CSS and script: no CDN, no build step,
//! so it works on an air-gapped host and in the binary as shipped. It polls
//! `/debug/overview` every two seconds (polling, not Server-Sent Events: nothing is held
//! open, and a closed tab costs the proxy nothing at all). Everything the JSON says is read
//! off the data path: the table snapshot, the sampler's rings ([`sampler`]), the certificate
//! board ([`certs`]), the control plane's recent events ([`crate::telemetry::recent`]) and
//! the IPVS status. It never carries key material: certificates are described by their
//! public leaf only. Only GET and HEAD are answered; the page sends no other method.

pub mod certs;
pub mod overview;
pub mod promtext;
pub mod sampler;
mod table;

pub use table::{EndpointView, ServiceView, TableView, table_view};

use crate::service_table::TableHandle;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The dashboard page.
pub const PAGE: &str = include_str!("admin/dashboard.html");

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The live table.
    pub table: Arc<TableHandle>,
    /// Whether `/readyz` says ready.
    pub ready: Arc<AtomicBool>,
    /// Renders `/metrics`.
    pub prometheus: PrometheusHandle,
    /// Kernel IPVS state for `/debug/ipvs`.
    pub ipvs: Arc<std::sync::Mutex<crate::ipvs::IpvsStatus>>,
    /// The certificates loaded now.
    pub certs: certs::CertBoard,
    /// Routes and hosts of the running config.
    pub routes: overview::RouteBoard,
    /// Per-service series.
    pub rings: sampler::SharedRings,
    /// When the process started (Unix seconds).
    pub started: f64,
}

/// Serves admin requests on `listener` until `stop` fires; samples for the page meanwhile.
pub async fn run(listener: TcpListener, state: AdminState, stop: CancellationToken) {
    tokio::spawn(sampler::run(
        state.prometheus.clone(),
        Arc::clone(&state.table),
        Arc::clone(&state.rings),
        stop.clone(),
    ));
    let state = Arc::new(state);
    loop {
        let (socket, _) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(respond(&state, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service);
            if let Err(error) = conn.await {
                tracing::debug!(%error, "admin connection error");
            }
        });
    }
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match req.uri().path() {
        "/" => page(),
        "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" if state.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/metrics" => {
            let mut body = crate::telemetry::metrics::render(&state.prometheus);
            let certs = state.certs.load();
            body.push_str(&crate::telemetry::metrics::render_certificates(
                certs
                    .iter()
                    .map(|c| (c.name.as_str(), c.source.as_str(), c.not_after)),
            ));
            let table = state.table.load();
            body.push_str(&crate::telemetry::metrics::render_benched(
                table.services().map(|s| {
                    let benched = s.endpoints.iter().filter(|e| e.weight > 0 && e.state.is_benched());
                    (&*s.config.name, benched.count())
                }),
            ));
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/debug/overview" => json(&overview::build(state)),
        "/debug/table" => json(&table_view(&state.table.load())),
        "/debug/ipvs" => json(&*state.ipvs.lock().unwrap_or_else(|p| p.into_inner())),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /, /metrics, /livez, /readyz, /debug/overview, /debug/table, /debug/ipvs\n"
                .into(),
        ),
    }
}

fn page() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let headers = resp.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // The page loads nothing from elsewhere; say so, so an injected name cannot either.
    headers.insert(
        hyper::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        ),
    );
    resp
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn json(value: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            let headers = resp.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

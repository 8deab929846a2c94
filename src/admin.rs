//! The admin listener: `/metrics`, `/livez`, `/readyz`, `/debug/table`.
//!
//! It is a separate listener (127.0.0.1 by default) so that probes and scrapes never compete
//! with proxied traffic and are never exposed by accident. `/readyz` is 200 once the first
//! table is published and every listener is bound, and turns 503 as soon as shutdown begins,
//! so a load balancer stops sending new clients while open connections drain.

use crate::service_table::{Service, Snapshot, TableHandle};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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
}

/// Serves admin requests on `listener` until `stop` fires.
pub async fn run(listener: TcpListener, state: AdminState, stop: CancellationToken) {
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
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" if state.ready.load(Ordering::Relaxed) => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/metrics" => {
            let mut resp = text(StatusCode::OK, state.prometheus.render());
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/debug/table" => json(&table_view(&state.table.load())),
        "/debug/ipvs" => json(&*state.ipvs.lock().unwrap_or_else(|p| p.into_inner())),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /livez, /readyz, /debug/table, /debug/ipvs\n".into(),
        ),
    }
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
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
        Err(error) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{error}\n")),
    }
}

/// `/debug/table` body.
#[derive(Debug, Serialize)]
pub struct TableView {
    /// Snapshot generation.
    pub generation: u64,
    /// Services sorted by name.
    pub services: Vec<ServiceView>,
}

/// One service in `/debug/table`.
#[derive(Debug, Serialize)]
pub struct ServiceView {
    /// Name.
    pub name: String,
    /// Configured L4 listen address (absent for HTTP-only services).
    pub listen: Option<SocketAddr>,
    /// `tcp` or `udp`.
    pub protocol: crate::config::Protocol,
    /// Scheduler name.
    pub scheduler: crate::balance::Scheduler,
    /// Open connections (UDP: flows).
    pub active: usize,
    /// Endpoints in config order.
    pub endpoints: Vec<EndpointView>,
}

/// One endpoint in `/debug/table`.
#[derive(Debug, Serialize)]
pub struct EndpointView {
    /// Address.
    pub address: SocketAddr,
    /// Weight (0: draining).
    pub weight: u32,
    /// Open connections.
    pub active: u32,
    /// Consecutive connect failures.
    pub failures: u32,
    /// Benched by passive health right now.
    pub benched: bool,
}

/// The JSON view of a snapshot.
pub fn table_view(snapshot: &Snapshot) -> TableView {
    let mut services: Vec<ServiceView> = snapshot.services().map(|s| service_view(s)).collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    TableView {
        generation: snapshot.generation,
        services,
    }
}

fn service_view(s: &Service) -> ServiceView {
    ServiceView {
        name: s.config.name.to_string(),
        listen: s.config.listen,
        protocol: s.config.protocol,
        scheduler: s.config.scheduler,
        active: s.active(),
        endpoints: s
            .endpoints
            .iter()
            .map(|e| EndpointView {
                address: e.address,
                weight: e.weight,
                active: e.state.active(),
                failures: e.state.failures(),
                benched: e.state.is_benched(),
            })
            .collect(),
    }
}

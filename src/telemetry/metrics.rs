//! Every metric Switchyard exports, in one place (DESIGN.md §4.9).
//!
//! Names follow Prometheus conventions and labels stay bounded: `service` and `route` (from the
//! config), `reason`, `direction`, `state`, `result` — never a client address. Hot-path
//! metrics are registered once per service into [`ServiceMetrics`] handles (per route into
//! [`HttpMetrics`]), so a connection costs an atomic add, not a registry lookup. The recorder is `metrics-exporter-prometheus`, rendered by the
//! admin listener at `/metrics`.
//!
//! The recorder keeps every histogram sample until it is folded into its buckets, which a
//! scrape does, or the upkeep that `PrometheusBuilder::install` would start. We build the
//! recorder ourselves (the admin listener serves it), so [`start_upkeep`] runs that upkeep:
//! without it memory grows by each request's sample until the next scrape, without bound
//! when nobody scrapes.

use crate::service_table::{Endpoint, Snapshot};
use metrics::{Counter, Gauge, counter, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Connections accepted, per service (UDP: flows created).
pub const CONNECTIONS_TOTAL: &str = "switchyard_connections_total";
/// Connections open now, per service (UDP: live flows).
pub const CONNECTIONS_ACTIVE: &str = "switchyard_connections_active";
/// Bytes proxied, per service and `direction` (`in`: client → endpoint, `out`: back).
pub const BYTES_TOTAL: &str = "switchyard_bytes_total";
/// Failed upstream connects, per service and `reason`.
pub const UPSTREAM_CONNECT_ERRORS_TOTAL: &str = "switchyard_upstream_connect_errors_total";
/// Endpoints per service and `state` (`active`: weight > 0, `draining`: weight 0).
pub const ENDPOINTS: &str = "switchyard_endpoints";
/// Endpoints benched by passive health, per service.
pub const ENDPOINT_BENCHED_TOTAL: &str = "switchyard_endpoint_benched_total";
/// Errors from `accept()`, per service (L4) or `listener` (HTTP).
pub const ACCEPT_ERRORS_TOTAL: &str = "switchyard_accept_errors_total";
/// UDP datagrams dropped, per service and `reason`: ours (`flow_limit`, `no_endpoint`,
/// `upstream_busy`, …) and `kernel_overflow`, those the kernel dropped at a full receive
/// queue of the service's or a flow's socket (SO_RXQ_OVFL).
pub const UDP_DROPPED_TOTAL: &str = "switchyard_udp_datagrams_dropped_total";
/// Generation of the published table snapshot.
pub const SNAPSHOT_GENERATION: &str = "switchyard_snapshot_generation";
/// Services in the published snapshot.
pub const SERVICES: &str = "switchyard_services";
/// HTTP requests answered, per `service` and `route` (`-` when unrouted) and `code` class.
pub const HTTP_REQUESTS_TOTAL: &str = "switchyard_http_requests_total";
/// HTTP request duration (until the response body ended), per `service` and `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "switchyard_http_request_duration_seconds";
/// HTTP upstream failures, per `service` and `reason` (`connect`, `timeout`, `request`, and
/// `request_body`: the client's body failed while it was sent).
pub const HTTP_UPSTREAM_ERRORS_TOTAL: &str = "switchyard_http_upstream_errors_total";
/// HTTP requests refused by a route's limits (429), per `route` and `reason` (`rate`: over
/// the rate limit, `connections`: too many of the client's requests in flight).
pub const HTTP_LIMITED_TOTAL: &str = "switchyard_http_limited_total";
/// Mirrored request copies, per `route` and `result` (`sent`, `dropped`: no slot free,
/// `failed`).
pub const HTTP_MIRRORED_TOTAL: &str = "switchyard_http_mirrored_total";
/// Retries, per `route` and `result` (`sent`, `budget_exhausted`: wanted but not allowed).
pub const HTTP_RETRIES_TOTAL: &str = "switchyard_http_retries_total";
/// Open HTTP connections, per `listener`.
pub const HTTP_CONNECTIONS_ACTIVE: &str = "switchyard_http_connections_active";
/// Of those, plain HTTP/1.1 ones waiting for a request without a task, per `listener`.
pub const HTTP_CONNECTIONS_IDLE: &str = "switchyard_http_connections_idle";
/// Config reloads by `result` (`ok` or `failed`).
pub const RELOADS_TOTAL: &str = "switchyard_reloads_total";

/// Request duration buckets, in seconds (1 ms to 30 s).
const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Explicit buckets make a real Prometheus histogram (the exporter's default for
            // histograms without buckets is a summary, which cannot be aggregated).
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
                    &DURATION_BUCKETS,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(KUBE_PUBLISH_LATENCY_SECONDS.to_owned()),
                        &PUBLISH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(IPVS_SYNC_DURATION_SECONDS.to_owned()),
                        &DURATION_BUCKETS,
                    )
                });
            let recorder = match builder {
                Ok(b) => b.build_recorder(),
                Err(_) => PrometheusBuilder::new().build_recorder(),
            };
            let handle = recorder.handle();
            start_upkeep(handle.clone(), UPKEEP_INTERVAL);
            // Another recorder may already be installed (a test harness); then ours stays
            // private and `/metrics` shows only what was registered through it.
            let _ignored = metrics::set_global_recorder(recorder);
            build_info();
            handle
        })
        .clone()
}

/// The recorder's text with every worker's part folded in first: what `/metrics` serves and
/// the dashboard's sampler reads.
pub fn render(handle: &PrometheusHandle) -> String {
    fold();
    handle.render()
}

/// How often histogram samples are folded into their buckets: a second's samples (about 16
/// bytes each as the recorder holds them) at most are kept, and folding them is a short job
/// for the upkeep thread.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Starts a thread that runs the recorder's upkeep every `every`, for the life of the
/// process (the recorder lives as long). Off the runtime's threads, so that folding a busy
/// second's samples never holds up a request.
pub fn start_upkeep(handle: PrometheusHandle, every: Duration) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                fold();
                handle.run_upkeep();
                // The upkeep frees the sample blocks it folded through crossbeam's epoch
                // collector, which holds them in this thread's bag until 64 such frees pile
                // up: after a burst, blocks scattered over the request path's pages would
                // keep those pages resident (megabytes after 10,000 requests) until the next
                // burst. Flushing hands them to the collector, which frees them once no
                // thread can still read them (a later flush, within seconds).
                crossbeam_epoch::pin().flush();
            }
        });
    if let Err(error) = started {
        tracing::warn!(%error, "no metrics upkeep thread: histogram samples wait for a scrape");
    }
}

/// Metric handles of one service, registered once and kept across snapshots. The four the
/// data path writes per connection or chunk write this worker's part ([`shards`]).
#[derive(Debug)]
pub struct ServiceMetrics {
    name: Arc<str>,
    /// Accepted connections (UDP: new flows).
    pub accepted: Counter,
    /// Open connections (UDP: live flows).
    pub active: Gauge,
    /// Bytes from clients to endpoints.
    pub bytes_in: Counter,
    /// Bytes from endpoints to clients.
    pub bytes_out: Counter,
    endpoints_active: Gauge,
    endpoints_draining: Gauge,
}

impl ServiceMetrics {
    /// Registers the handles for service `name`.
    pub fn new(name: &Arc<str>) -> Self {
        let svc = name.to_string();
        let (accepted, bytes_in, bytes_out, active) = shards::service_handles(ServiceTargets {
            accepted: counter!(CONNECTIONS_TOTAL, "service" => svc.clone()),
            active: gauge!(CONNECTIONS_ACTIVE, "service" => svc.clone()),
            bytes_in: counter!(BYTES_TOTAL, "service" => svc.clone(), "direction" => "in"),
            bytes_out: counter!(BYTES_TOTAL, "service" => svc.clone(), "direction" => "out"),
        });
        Self {
            name: Arc::clone(name),
            accepted,
            active,
            bytes_in,
            bytes_out,
            endpoints_active: gauge!(ENDPOINTS, "service" => svc.clone(), "state" => "active"),
            endpoints_draining: gauge!(ENDPOINTS, "service" => svc, "state" => "draining"),
        }
    }

    /// Updates the endpoint gauges from a freshly built endpoint list.
    pub fn set_endpoints(&self, endpoints: &[Endpoint]) {
        let active = endpoints.iter().filter(|e| e.weight > 0).count();
        self.endpoints_active.set(active as f64);
        self.endpoints_draining
            .set((endpoints.len() - active) as f64);
    }

    /// Counts a failed upstream connect.
    pub fn connect_error(&self, reason: &'static str) {
        counter!(UPSTREAM_CONNECT_ERRORS_TOTAL, "service" => self.name.to_string(), "reason" => reason)
            .increment(1);
    }

    /// Counts an endpoint benched by passive health.
    pub fn benched(&self) {
        counter!(ENDPOINT_BENCHED_TOTAL, "service" => self.name.to_string()).increment(1);
    }

    /// Counts a failed HTTP exchange with an endpoint.
    pub fn http_upstream_error(&self, reason: &'static str) {
        counter!(HTTP_UPSTREAM_ERRORS_TOTAL, "service" => self.name.to_string(), "reason" => reason)
            .increment(1);
    }

    /// Counts an `accept()` error.
    pub fn accept_error(&self) {
        counter!(ACCEPT_ERRORS_TOTAL, "service" => self.name.to_string()).increment(1);
    }

    /// Counts a dropped UDP datagram.
    pub fn udp_dropped(&self, reason: &'static str) {
        self.udp_dropped_n(reason, 1);
    }

    /// Counts `n` dropped UDP datagrams (`kernel_overflow`: the kernel's count at our sockets).
    pub fn udp_dropped_n(&self, reason: &'static str, n: u64) {
        counter!(UDP_DROPPED_TOTAL, "service" => self.name.to_string(), "reason" => reason)
            .increment(n);
    }

    /// Zeroes the gauges of a service that left the table.
    pub fn clear(&self) {
        self.endpoints_active.set(0.0);
        self.endpoints_draining.set(0.0);
    }
}

/// Records a newly published snapshot.
pub fn snapshot_published(snapshot: &Snapshot) {
    gauge!(SNAPSHOT_GENERATION).set(snapshot.generation as f64);
    gauge!(SERVICES).set(snapshot.len() as f64);
}

/// HTTP request metrics of one route (or of unrouted requests), registered once so a
/// request costs two atomic updates on this worker's part ([`shards`]), not registry lookups.
#[derive(Debug)]
pub struct HttpMetrics(Arc<RouteShards>);

impl HttpMetrics {
    /// Registers the handles for `route` of `service` (`-` for requests that matched none).
    pub fn new(service: &str, route: &str) -> Self {
        let (svc, route) = (service.to_owned(), route.to_owned());
        let by_class = ["1xx", "2xx", "3xx", "4xx", "5xx"].map(|code| {
            counter!(HTTP_REQUESTS_TOTAL, "service" => svc.clone(), "route" => route.clone(),
                "code" => code)
        });
        let duration =
            metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "service" => svc, "route" => route);
        Self(RouteShards::new(by_class, duration))
    }

    /// The handles for requests that reached no service (404, 400, redirects).
    pub fn unrouted() -> Arc<HttpMetrics> {
        static UNROUTED: OnceLock<Arc<HttpMetrics>> = OnceLock::new();
        Arc::clone(UNROUTED.get_or_init(|| Arc::new(HttpMetrics::new("-", "-"))))
    }

    /// Records one answered request.
    pub fn record(&self, status: http::StatusCode, elapsed: std::time::Duration) {
        let class = usize::from((status.as_u16() / 100).clamp(1, 5)) - 1;
        self.0.record(class, elapsed.as_secs_f64());
    }
}

/// The handle counting requests of `route` refused for `reason` (`rate`, `connections`).
pub fn http_limited(route: &str, reason: &'static str) -> Counter {
    counter!(HTTP_LIMITED_TOTAL, "route" => route.to_owned(), "reason" => reason)
}

/// Connections accepted (HTTP and L4 TCP), per data-plane `worker` (`0` with one worker).
pub const WORKER_ACCEPTED_TOTAL: &str = "switchyard_worker_connections_accepted_total";

/// The accepted-connections counter of the worker running this thread (taken once per loop).
pub fn worker_accepted() -> Counter {
    counter!(WORKER_ACCEPTED_TOTAL, "worker" => crate::app::workers::current().to_string())
}

/// Counts an `accept()` error on an HTTP listener.
pub fn http_accept_error(listener: &str) {
    counter!(ACCEPT_ERRORS_TOTAL, "listener" => listener.to_owned()).increment(1);
}

/// TLS handshakes that got the default certificate (no certificate matched the SNI, or none
/// was sent), by `listener`.
pub const TLS_DEFAULT_CERTIFICATE_TOTAL: &str = "switchyard_tls_default_certificate_total";
/// TLS connections passed through by SNI, by `listener`, `service` and `result` (`ok`,
/// `no_upstream`, `no_service`).
pub const TLS_PASSTHROUGH_TOTAL: &str = "switchyard_tls_passthrough_connections_total";

/// Counts a handshake on `listener` that fell back to the default certificate.
pub fn tls_default_certificate(listener: &str) {
    counter!(TLS_DEFAULT_CERTIFICATE_TOTAL, "listener" => listener.to_owned()).increment(1);
}

/// Counts a connection on `listener` passed through to `service`.
pub fn tls_passthrough(listener: &str, service: &str, result: &'static str) {
    counter!(TLS_PASSTHROUGH_TOTAL, "listener" => listener.to_owned(),
        "service" => service.to_owned(), "result" => result)
    .increment(1);
}

/// Counts a reload attempt.
pub fn reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(RELOADS_TOTAL, "result" => result).increment(1);
}

mod control;
mod operator;
mod shards;
pub use control::*;
pub use operator::*;
pub use shards::fold;
use shards::{RouteShards, ServiceTargets};

//! Metrics of the control plane: the Kubernetes source (`discovery`) and the kernel IPVS data
//! plane (`src/ipvs/`).
//!
//! Kept beside [`super`] (whose file holds the data path's metrics) and re-exported from it, so
//! every name is still reached as `telemetry::metrics::NAME`.

use metrics::{counter, gauge};

// Kubernetes source (`discovery`)

/// Objects held per `kind` (`Service`, `EndpointSlice`, `Ingress`, `IngressClass`, `Secret`).
pub const KUBE_OBJECTS: &str = "switchyard_kube_objects";
/// Watch restarts (errors, relists, reconnects) per `kind`.
pub const KUBE_WATCH_RESTARTS_TOTAL: &str = "switchyard_kube_watch_restarts_total";
/// Time from the first unpublished watch event to the table carrying it.
pub const KUBE_PUBLISH_LATENCY_SECONDS: &str = "switchyard_kube_publish_latency_seconds";
/// Objects (or parts of them) skipped, per `kind` and `reason`.
pub const KUBE_SKIPPED_TOTAL: &str = "switchyard_kube_skipped_total";
/// Unsupported `nginx.ingress.kubernetes.io/*` annotations seen (once per Ingress and name).
pub const KUBE_UNSUPPORTED_ANNOTATIONS_TOTAL: &str =
    "switchyard_kube_unsupported_annotations_total";
/// Ingress status writes by `result` (`ok`, `failed`).
pub const KUBE_STATUS_WRITES_TOTAL: &str = "switchyard_kube_status_writes_total";

/// Publish latency buckets, in seconds (1 ms to 5 s).
pub(super) const PUBLISH_BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Sets the number of objects held of one kind.
pub fn kube_objects(kind: &'static str, count: usize) {
    gauge!(KUBE_OBJECTS, "kind" => kind).set(count as f64);
}

/// Counts a watch restart of one kind.
pub fn kube_watch_restart(kind: &'static str) {
    counter!(KUBE_WATCH_RESTARTS_TOTAL, "kind" => kind).increment(1);
}

/// Records the event → publish latency of one publish.
pub fn kube_publish_latency(elapsed: std::time::Duration) {
    metrics::histogram!(KUBE_PUBLISH_LATENCY_SECONDS).record(elapsed.as_secs_f64());
}

/// Counts a skipped object (or route, or certificate) by kind and reason.
pub fn kube_skipped(kind: &'static str, reason: &'static str) {
    counter!(KUBE_SKIPPED_TOTAL, "kind" => kind, "reason" => reason).increment(1);
}

/// Counts an unsupported annotation (the name is in the log line: annotation names are
/// user-chosen, so they are no label).
pub fn kube_unsupported_annotation() {
    counter!(KUBE_UNSUPPORTED_ANNOTATIONS_TOTAL).increment(1);
}

/// Counts an Ingress status write.
pub fn kube_status_write(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(KUBE_STATUS_WRITES_TOTAL, "result" => result).increment(1);
}

// ---- Kernel IPVS data plane (src/ipvs/) ----

/// 1 when the kernel IPVS data plane is in use, 0 when services run in user space.
pub const IPVS_AVAILABLE: &str = "switchyard_ipvs_available";
/// Virtual services Switchyard has programmed in the kernel.
pub const IPVS_SERVICES: &str = "switchyard_ipvs_services";
/// Destinations of those services, by `state` (`active`, `draining`).
pub const IPVS_DESTINATIONS: &str = "switchyard_ipvs_destinations";
/// Duration of one sync (dump, diff, apply, VIPs).
pub const IPVS_SYNC_DURATION_SECONDS: &str = "switchyard_ipvs_sync_duration_seconds";
/// Syncs by `result` (`ok`, `failed`).
pub const IPVS_SYNCS_TOTAL: &str = "switchyard_ipvs_syncs_total";
/// Netlink write operations applied, by `kind` (`add_service`, `set_dest`, …).
pub const IPVS_OPERATIONS_TOTAL: &str = "switchyard_ipvs_operations_total";
/// Failed IPVS or link operations, by `errno` (`EEXIST`, `ENOENT`, `timeout`, …).
pub const IPVS_ERRORS_TOTAL: &str = "switchyard_ipvs_errors_total";

/// Records whether the kernel data plane is in use.
pub fn ipvs_available(on: bool) {
    gauge!(IPVS_AVAILABLE).set(if on { 1.0 } else { 0.0 });
}

/// Records the outcome of one IPVS sync.
pub fn ipvs_sync(
    ok: bool,
    elapsed: std::time::Duration,
    services: usize,
    active: usize,
    draining: usize,
) {
    let result = if ok { "ok" } else { "failed" };
    counter!(IPVS_SYNCS_TOTAL, "result" => result).increment(1);
    metrics::histogram!(IPVS_SYNC_DURATION_SECONDS).record(elapsed.as_secs_f64());
    gauge!(IPVS_SERVICES).set(services as f64);
    gauge!(IPVS_DESTINATIONS, "state" => "active").set(active as f64);
    gauge!(IPVS_DESTINATIONS, "state" => "draining").set(draining as f64);
}

/// Counts one applied IPVS operation.
pub fn ipvs_operation(kind: &'static str) {
    counter!(IPVS_OPERATIONS_TOTAL, "kind" => kind).increment(1);
}

/// Counts one failed IPVS or link operation.
pub fn ipvs_error(errno: &'static str) {
    counter!(IPVS_ERRORS_TOTAL, "errno" => errno).increment(1);
}

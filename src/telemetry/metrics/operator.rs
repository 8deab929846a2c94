//! Metrics for the operator's view (issue 21): build, certificates, watcher health.
//!
//! Kept beside [`super`] (whose file is near the size limit) and re-exported from it, so every
//! name is still reached as `telemetry::metrics::NAME`.
//!
//! The certificate expiry gauge is not registered with the recorder: the admin listener
//! appends it to `/metrics` from the certificates loaded right now ([`render_certificates`]).
//! A recorder gauge would keep the series of a certificate taken out of the config at its
//! last value for the life of the process, and an alert on "expires within 14 days" would
//! then fire for a certificate nobody serves.

use metrics::gauge;
use std::fmt::Write;

/// Always 1, labelled with the `version` of the running binary.
pub const BUILD_INFO: &str = "switchyard_build_info";
/// notAfter of each loaded certificate (Unix seconds), by `name` (its first DNS name or
/// common name) and `source` (file path, or `secret/namespace/name`).
pub const CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS: &str =
    "switchyard_certificate_expiry_timestamp_seconds";
/// 1 while the Kubernetes watcher of `kind` is healthy, 0 while it fails and retries (the
/// table then misses that kind's changes).
pub const KUBE_WATCH_UP: &str = "switchyard_kube_watch_up";
/// When the watcher of `kind` last received an event (Unix seconds).
pub const KUBE_LAST_EVENT_TIMESTAMP_SECONDS: &str = "switchyard_kube_last_event_timestamp_seconds";

/// Sets [`BUILD_INFO`].
pub fn build_info() {
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

/// Records the health of the watcher of `kind`.
pub fn kube_watch_up(kind: &'static str, up: bool) {
    gauge!(KUBE_WATCH_UP, "kind" => kind).set(if up { 1.0 } else { 0.0 });
}

/// Records that the watcher of `kind` received an event at `unix` seconds.
pub fn kube_last_event(kind: &'static str, unix: f64) {
    gauge!(KUBE_LAST_EVENT_TIMESTAMP_SECONDS, "kind" => kind).set(unix);
}

/// Endpoints with weight > 0 that passive health has benched right now, by `service`
/// (every service of the table, 0 included). Rendered at scrape time from the table, like
/// the certificate expiry: a bench ends by time passing, not by an event a gauge could follow.
pub const ENDPOINTS_BENCHED: &str = "switchyard_endpoints_benched";

/// The [`CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS`] family in the Prometheus text format, one
/// sample per `(name, source, not_after)`; empty when there is no certificate.
pub fn render_certificates<'a>(certs: impl IntoIterator<Item = (&'a str, &'a str, i64)>) -> String {
    render_gauge(
        CERTIFICATE_EXPIRY_TIMESTAMP_SECONDS,
        "notAfter of each loaded certificate",
        certs
            .into_iter()
            .map(|(name, source, t)| (vec![("name", name), ("source", source)], t as f64)),
    )
}

/// The [`ENDPOINTS_BENCHED`] family, one sample per `(service, benched)`.
pub fn render_benched<'a>(services: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    render_gauge(
        ENDPOINTS_BENCHED,
        "endpoints with weight > 0 benched by passive health now",
        services
            .into_iter()
            .map(|(service, n)| (vec![("service", service)], n as f64)),
    )
}

/// A gauge family in the text format; empty without samples.
fn render_gauge<'a>(
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, f64)>,
) -> String {
    let mut out = String::new();
    for (labels, value) in samples {
        if out.is_empty() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
    }
    out
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_expiry_renders_one_escaped_sample_per_certificate() {
        let text = render_certificates([("a.test", "/etc/a\"b.crt", 1_900_000_000)]);
        assert_eq!(
            text,
            "# HELP switchyard_certificate_expiry_timestamp_seconds notAfter of each loaded certificate\n\
             # TYPE switchyard_certificate_expiry_timestamp_seconds gauge\n\
             switchyard_certificate_expiry_timestamp_seconds{name=\"a.test\",source=\"/etc/a\\\"b.crt\"} 1900000000\n"
        );
        assert_eq!(render_certificates([]), "");
        assert!(
            render_benched([("web", 2)])
                .ends_with("\nswitchyard_endpoints_benched{service=\"web\"} 2\n")
        );
    }
}

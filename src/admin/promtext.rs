//! Reads back the few families the page charts from the recorder's Prometheus text.
//!
//! The recorder's handles are write-only (a `metrics::Counter` cannot be read), and holding a
//! second set of counters would make the request path pay twice. So the sampler reads what
//! `/metrics` would answer: it renders the text and sums, per `service`, the requests, the
//! 5xx answers, the accepted connections and the request duration buckets (over routes).
//! Lines of other families are skipped after a prefix compare, so the cost is a render and a
//! scan of the text (see [`super::sampler`] for the figures).

use crate::telemetry::metrics::{
    CONNECTIONS_TOTAL, HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL,
};
use std::collections::BTreeMap;

/// One service's counters, summed over its routes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// HTTP requests answered.
    pub requests: f64,
    /// Of which 5xx.
    pub errors: f64,
    /// Connections accepted (L4; UDP flows).
    pub connections: f64,
    /// Cumulative request duration buckets: (upper bound in seconds, count), ascending, the
    /// last one `+Inf`.
    pub buckets: Vec<(f64, f64)>,
}

/// Sums the charted families of `text` per service (`-`, unrouted requests, left out).
pub fn totals(text: &str) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    let bucket = format!("{HTTP_REQUEST_DURATION_SECONDS}_bucket{{");
    let requests = format!("{HTTP_REQUESTS_TOTAL}{{");
    let connections = format!("{CONNECTIONS_TOTAL}{{");
    for line in text.lines() {
        let family = if line.starts_with(&bucket) {
            Family::Bucket
        } else if line.starts_with(&requests) {
            Family::Requests
        } else if line.starts_with(&connections) {
            Family::Connections
        } else {
            continue;
        };
        let Some((labels, value)) = sample(line) else {
            continue;
        };
        let Some(service) = label(labels, "service").filter(|s| s != "-") else {
            continue;
        };
        let t = out.entry(service).or_default();
        match family {
            Family::Requests => {
                t.requests += value;
                if label(labels, "code").as_deref() == Some("5xx") {
                    t.errors += value;
                }
            }
            Family::Connections => t.connections += value,
            Family::Bucket => {
                let Some(le) = label(labels, "le").and_then(|le| parse_value(&le)) else {
                    continue;
                };
                match t.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, count)) => *count += value,
                    None => {
                        t.buckets.push((le, value));
                        t.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                    }
                }
            }
        }
    }
    out
}

enum Family {
    Requests,
    Connections,
    Bucket,
}

/// `name{labels} value` → (labels, value).
fn sample(line: &str) -> Option<(&str, f64)> {
    let open = line.find('{')?;
    let close = line.rfind('}')?;
    let labels = line.get(open + 1..close)?;
    let value = line.get(close + 1..)?.split_whitespace().next()?;
    Some((labels, parse_value(value)?))
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        _ => text.parse().ok(),
    }
}

/// The value of label `name` in `a="x",b="y"` (escapes undone).
fn label(labels: &str, name: &str) -> Option<String> {
    let mut rest = labels;
    loop {
        let (key, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break i,
                c => value.push(c),
            }
        };
        if key.trim_start_matches(',') == name {
            return Some(value);
        }
        rest = after.get(end + 1..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE switchyard_http_requests_total counter
switchyard_http_requests_total{service=\"web\",route=\"a\",code=\"2xx\"} 10
switchyard_http_requests_total{service=\"web\",route=\"b\",code=\"2xx\"} 5
switchyard_http_requests_total{service=\"web\",route=\"b\",code=\"5xx\"} 3
switchyard_http_requests_total{service=\"-\",route=\"-\",code=\"4xx\"} 7
switchyard_http_requests_total_other{service=\"web\"} 100
switchyard_connections_total{service=\"q\\\"uote\"} 4
switchyard_http_request_duration_seconds_bucket{service=\"web\",route=\"a\",le=\"0.1\"} 8
switchyard_http_request_duration_seconds_bucket{service=\"web\",route=\"a\",le=\"+Inf\"} 10
switchyard_http_request_duration_seconds_bucket{service=\"web\",route=\"b\",le=\"0.1\"} 1
switchyard_http_request_duration_seconds_bucket{service=\"web\",route=\"b\",le=\"+Inf\"} 8
switchyard_http_request_duration_seconds_sum{service=\"web\",route=\"a\"} 0.5
";

    #[test]
    fn totals_sum_each_service_over_its_routes() {
        let t = totals(TEXT);
        assert_eq!(t.keys().collect::<Vec<_>>(), ["q\"uote", "web"]);
        let web = &t["web"];
        assert_eq!(
            (web.requests, web.errors, web.connections),
            (18.0, 3.0, 0.0)
        );
        assert_eq!(web.buckets, [(0.1, 9.0), (f64::INFINITY, 18.0)]);
        assert_eq!(t["q\"uote"].connections, 4.0);
    }

    #[test]
    fn labels_are_found_by_name_whatever_their_order() {
        assert_eq!(
            label("a=\"1\",b=\"x,y=\\\"z\"", "b").as_deref(),
            Some("x,y=\"z")
        );
        assert_eq!(label("a=\"1\",b=\"2\"", "c"), None);
        assert_eq!(sample("x{a=\"1\"} 2.5"), Some(("a=\"1\"", 2.5)));
        assert_eq!(sample("x{a=\"1\"} nope"), None);
    }
}

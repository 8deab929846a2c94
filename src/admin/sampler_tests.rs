use super::*;
use std::fmt::Write;

fn text(services: usize, requests: u64, errors: u64, fast: u64) -> String {
    let mut out = String::new();
    for s in 0..services {
        let _ = writeln!(
            out,
            "switchyard_http_requests_total{{service=\"svc{s}\",route=\"r\",code=\"2xx\"}} {}\n\
             switchyard_http_requests_total{{service=\"svc{s}\",route=\"r\",code=\"5xx\"}} {errors}\n\
             switchyard_connections_total{{service=\"svc{s}\"}} {requests}",
            requests - errors
        );
        for le in [
            "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
        ] {
            let _ = writeln!(
                out,
                "switchyard_http_request_duration_seconds_bucket{{service=\"svc{s}\",route=\"r\",le=\"{le}\"}} {fast}"
            );
        }
        let _ = writeln!(
            out,
            "switchyard_http_request_duration_seconds_bucket{{service=\"svc{s}\",route=\"r\",le=\"+Inf\"}} {requests}"
        );
    }
    out
}

fn live(n: usize) -> HashSet<String> {
    (0..n).map(|s| format!("svc{s}")).collect()
}

#[test]
fn a_point_is_the_change_between_two_samples() {
    let mut rings = Rings::default();
    rings.sample(&text(1, 100, 0, 100), 1000.0, &live(1));
    assert!(rings.series("svc0").is_empty(), "one sample is no interval");
    rings.sample(&text(1, 200, 10, 150), 1005.0, &live(1));
    let p = rings.series("svc0")[0];
    assert_eq!(p.t, 1005.0);
    assert_eq!(p.rps, 20.0);
    assert_eq!(p.cps, 20.0);
    assert_eq!(p.errors, Some(0.1));
    // 50 of the 100 new requests took under 1 ms, 50 over 0.5 s: the median is at the edge
    // of the first bucket, p99 is the largest finite bound.
    assert_eq!(p.p50, Some(0.001));
    assert_eq!(p.p99, Some(0.5));
}

#[test]
fn quantiles_interpolate_inside_their_bucket() {
    let b = [(0.1, 0.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
    assert!((quantile(0.5, &b).unwrap() - 0.15).abs() < 1e-9);
    assert!((quantile(0.99, &b).unwrap() - 0.199).abs() < 1e-9);
    assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
    assert_eq!(quantile(0.5, &[]), None);
}

#[test]
fn services_that_left_the_table_are_dropped_and_counter_resets_count_zero() {
    let mut rings = Rings::default();
    rings.sample(&text(2, 100, 0, 100), 1.0, &live(2));
    rings.sample(&text(2, 50, 0, 50), 2.0, &live(1));
    assert_eq!(rings.series("svc0")[0].rps, 0.0);
    assert_eq!(rings.series("svc0")[0].errors, None);
    assert!(rings.series("svc1").is_empty());
}

#[test]
fn rings_stay_within_their_bound() {
    let mut rings = Rings::default();
    let n = 200;
    for i in 0..(SAMPLES_KEPT + 10) {
        let i = i as u64;
        rings.sample(&text(n, 100 * i, i, 50 * i), i as f64, &live(n));
    }
    assert_eq!(rings.series("svc7").len(), SAMPLES_KEPT);
    let bytes = rings.bytes();
    println!("rings: {n} services x {SAMPLES_KEPT} points = {bytes} bytes");
    assert!(bytes < 700_000, "{bytes}");
    assert_eq!(std::mem::size_of::<Point>(), 40);
}

#[test]
/// Prints the cost of a round (the README's figure); a benchmark, so no bound on the time.
fn sampling_200_services_keeps_every_round() {
    let mut rings = Rings::default();
    let n = 200;
    let (a, b) = (text(n, 1000, 5, 900), text(n, 2000, 9, 1800));
    let started = std::time::Instant::now();
    let rounds = 20;
    for i in 0..rounds {
        rings.sample(if i % 2 == 0 { &a } else { &b }, i as f64, &live(n));
    }
    let each = started.elapsed() / rounds;
    println!(
        "sample of {n} services ({} KiB of text, parse and update): {each:?}",
        a.len() / 1024
    );
    assert_eq!(rings.series("svc7").len(), rounds as usize - 1);
}

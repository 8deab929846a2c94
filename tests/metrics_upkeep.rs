//! The Prometheus recorder keeps histogram samples until its upkeep folds them into buckets;
//! Switchyard runs that upkeep itself. Memory is measured the only way it shows: the
//! process's anonymous RSS while samples are recorded, with and without the upkeep thread
//! (the run without it shows the test can tell the two apart). Its own test binary, so no
//! other test's allocations move the figure.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod skip;

use metrics::{Histogram, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use std::time::Duration;
use switchyard::telemetry::metrics::start_upkeep;

/// Samples recorded per run: 16 MiB of values (the recorder holds about twice that).
const SAMPLES: usize = 2 << 20;

fn rss_anon_bytes() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn recorder() -> PrometheusRecorder {
    PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder()
}

fn histogram(recorder: &PrometheusRecorder) -> Histogram {
    let key = metrics::Key::from_name("switchyard_test_duration_seconds");
    let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    recorder.register_histogram(&key, &meta)
}

/// Records the samples in slices with pauses between (as requests come), and returns how
/// far anonymous RSS rose above where it started.
fn peak_growth(histogram: &Histogram) -> usize {
    let start = rss_anon_bytes().unwrap();
    let mut peak = start;
    for _ in 0..32 {
        for i in 0..SAMPLES / 32 {
            histogram.record(i as f64 * 1e-6);
        }
        std::thread::sleep(Duration::from_millis(40));
        peak = peak.max(rss_anon_bytes().unwrap());
    }
    peak - start
}

#[test]
fn histogram_samples_do_not_pile_up_between_scrapes() {
    if rss_anon_bytes().is_none() {
        return skip::skip(
            "histogram_samples_do_not_pile_up_between_scrapes",
            "no /proc/self/status RssAnon on this system",
        );
    }
    let kept = recorder();
    start_upkeep(kept.handle(), Duration::from_millis(20));
    let with_upkeep = peak_growth(&histogram(&kept));

    let unkept = recorder();
    let without = peak_growth(&histogram(&unkept));

    let all = SAMPLES * 8;
    eprintln!(
        "anonymous RSS growth for {all} bytes of samples: {with_upkeep} with upkeep, {without} without"
    );
    assert!(
        without >= all / 2,
        "without upkeep the samples should pile up: {without} bytes for {all}"
    );
    assert!(
        with_upkeep <= all / 4,
        "with upkeep {with_upkeep} bytes stayed (without: {without})"
    );
}

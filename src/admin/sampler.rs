//! Per-service rates, error ratio and latency quantiles over the last minutes, for the page.
//!
//! A task renders the recorder's text every [`SAMPLE_EVERY`] and turns the change of each
//! service's counters since the previous sample into one [`Point`]: requests and connections
//! per second, the 5xx share, and p50/p99 interpolated inside the duration buckets that
//! filled in that interval (as PromQL's `histogram_quantile` over `rate` does). The request
//! path records nothing more for this: it is the same counters `/metrics` serves.
//!
//! Bounded: [`SAMPLES_KEPT`] points (five minutes) per service, and at most [`MAX_SERVICES`]
//! services (the first by name; services that left the table are dropped). A point is 40
//! bytes (a ring's capacity rounds 60 up to 64) and a service's last totals about 300, so the
//! rings hold at most about 2.9 MB; with 200 services 0.58 MB, measured by
//! `rings_stay_within_their_bound`. The last sample's
//! own cost (render, parse, update) is kept in [`Rings::last_cost_us`] and shown on the page;
//! `sampling_200_services_is_cheap` prints it for 200 services.

use super::promtext::{self, Totals};
use crate::service_table::TableHandle;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the sampler runs.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Points kept per service (5 minutes at [`SAMPLE_EVERY`]).
pub const SAMPLES_KEPT: usize = 60;
/// Services followed at most.
pub const MAX_SERVICES: usize = 1000;

/// One interval of one service.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    /// End of the interval (Unix seconds).
    pub t: f64,
    /// HTTP requests per second.
    pub rps: f32,
    /// Connections accepted per second (L4).
    pub cps: f32,
    /// Share of 5xx answers (absent without requests).
    pub errors: Option<f32>,
    /// Median request duration, seconds.
    pub p50: Option<f32>,
    /// 99th percentile, seconds.
    pub p99: Option<f32>,
}

/// The series of every followed service.
#[derive(Debug, Default)]
pub struct Rings {
    last: BTreeMap<String, (f64, Totals)>,
    series: BTreeMap<String, VecDeque<Point>>,
    /// Microseconds the last sample took.
    pub last_cost_us: u64,
}

/// Shared between the sampler (writer) and the admin (reader).
pub type SharedRings = Arc<Mutex<Rings>>;

impl Rings {
    /// Folds one rendering taken at `now` (Unix seconds) into the rings; only services in
    /// `live` are kept.
    pub fn sample(&mut self, text: &str, now: f64, live: &HashSet<String>) {
        let totals = promtext::totals(text);
        self.last.retain(|name, _| live.contains(name));
        self.series.retain(|name, _| live.contains(name));
        for (name, t) in totals {
            if !live.contains(&name) {
                continue;
            }
            if !self.last.contains_key(&name) && self.last.len() >= MAX_SERVICES {
                continue;
            }
            if let Some((then, before)) = self.last.get(&name)
                && now > *then
            {
                let point = point(before, &t, now - then, now);
                let ring = self.series.entry(name.clone()).or_default();
                if ring.len() == SAMPLES_KEPT {
                    ring.pop_front();
                }
                ring.push_back(point);
            }
            self.last.insert(name, (now, t));
        }
    }

    /// The points of `service`, oldest first.
    pub fn series(&self, service: &str) -> Vec<Point> {
        self.series
            .get(service)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Bytes held (an upper estimate), for the bound's check.
    pub fn bytes(&self) -> usize {
        let points: usize = self.series.values().map(VecDeque::capacity).sum();
        let totals: usize = self
            .last
            .iter()
            .map(|(k, (_, t))| k.len() + 48 + t.buckets.capacity() * 16)
            .sum();
        points * std::mem::size_of::<Point>() + totals + self.series.len() * 48
    }
}

/// The change from `a` to `b` over `dt` seconds. A counter that went down (the service was
/// removed and came back) counts as zero.
fn point(a: &Totals, b: &Totals, dt: f64, now: f64) -> Point {
    let d = |x: f64, y: f64| (y - x).max(0.0);
    let requests = d(a.requests, b.requests);
    let buckets: Vec<(f64, f64)> = b
        .buckets
        .iter()
        .map(|&(le, n)| {
            let before = a
                .buckets
                .iter()
                .find(|(l, _)| *l == le)
                .map_or(0.0, |x| x.1);
            (le, d(before, n))
        })
        .collect();
    Point {
        t: now,
        rps: (requests / dt) as f32,
        cps: (d(a.connections, b.connections) / dt) as f32,
        errors: (requests > 0.0).then(|| (d(a.errors, b.errors) / requests) as f32),
        p50: quantile(0.5, &buckets).map(|v| v as f32),
        p99: quantile(0.99, &buckets).map(|v| v as f32),
    }
}

/// The `q` quantile of cumulative `buckets` (ascending, ending at `+Inf`), interpolated
/// linearly inside its bucket; `None` when empty. A rank in the `+Inf` bucket answers the
/// largest finite bound, as `histogram_quantile` does.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            if count <= below {
                return Some(le);
            }
            return Some(lower + (le - lower) * (rank - below) / (count - below));
        }
        (lower, below) = (le, count);
    }
    Some(lower)
}

/// Samples every [`SAMPLE_EVERY`] until `stop`.
pub async fn run(
    prometheus: PrometheusHandle,
    table: Arc<TableHandle>,
    rings: SharedRings,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(SAMPLE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let text = crate::telemetry::metrics::render(&prometheus);
        let live: HashSet<String> = table
            .load()
            .services()
            .map(|s| s.config.name.to_string())
            .collect();
        let mut rings = rings.lock().unwrap_or_else(PoisonError::into_inner);
        rings.sample(&text, crate::telemetry::recent::now(), &live);
        rings.last_cost_us = started.elapsed().as_micros() as u64;
    }
}

#[cfg(test)]
#[path = "sampler_tests.rs"]
mod tests;

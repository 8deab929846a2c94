//! Per-worker parts of the metrics the data path writes on every request, connection and
//! copied chunk: a route's request counters and durations, a service's connection and byte
//! counts.
//!
//! The Prometheus recorder keeps one atomic per counter and one sample queue per histogram.
//! Every worker serving the same route or service would write those same cache lines on each
//! request, and every write moves the line to the writing core (issue 20: nothing on the
//! request path writes a line that other workers also write). Here each worker writes a part
//! of its own instead, all of one route's (or service's) figures on one line of their own, and
//! [`fold`] adds the parts into the recorder's handles. It runs before every render
//! (`/metrics`, the dashboard's sampler, through [`super::render`]) and once a second on the
//! upkeep thread, so a scrape sees everything recorded before it, as when the data path wrote
//! the recorder's handles itself. A route or service that a reload drops folds what is left as
//! it drops.
//!
//! The price is memory: 128 bytes (crossbeam's padding) per worker per route and per service,
//! e.g. 2 MiB for 1,000 routes on 16 workers.

use crossbeam_utils::CachePadded;
use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram};
use metrics_util::storage::AtomicBucket;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// One part per data-plane worker, each on cache lines of its own.
#[derive(Debug)]
struct Parts<T>(Box<[CachePadded<T>]>);

impl<T: Default> Parts<T> {
    /// Parts for the workers running now (one outside a worker pool).
    fn new() -> Self {
        Self::with_workers(crate::app::workers::count())
    }

    fn with_workers(workers: usize) -> Self {
        Parts(
            (0..workers.max(1))
                .map(|_| CachePadded::default())
                .collect(),
        )
    }
}

impl<T> Parts<T> {
    /// This worker's part. A thread outside the pool, or a worker of a pool started after
    /// these parts, writes worker 0's: the parts are atomics, so sharing one is only slower.
    fn mine(&self) -> &T {
        let index = crate::app::workers::current();
        self.0.get(index).unwrap_or(&self.0[0])
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|part| &**part)
    }

    fn sum(&self, field: impl Fn(&T) -> &AtomicU64) -> u64 {
        self.iter().map(|part| field(part).load(Relaxed)).sum()
    }
}

/// A set of parts that can add itself into the recorder's handles.
trait Fold: Send + Sync {
    fn fold(&self);
}

/// Every set of parts alive (weakly: dropping one folds it and frees it).
fn registry() -> &'static Mutex<Vec<Weak<dyn Fold>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Weak<dyn Fold>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn register<T: Fold + 'static>(parts: &Arc<T>) {
    let weak: Weak<dyn Fold> = Arc::downgrade(parts) as Weak<dyn Fold>;
    registry()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(weak);
}

/// Adds every worker's parts into the recorder's handles (see the module docs).
pub fn fold() {
    let live: Vec<Arc<dyn Fold>> = {
        let mut all = registry().lock().unwrap_or_else(PoisonError::into_inner);
        all.retain(|weak| weak.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    // Folded without the registry's lock: the last `Arc` of a set may be the one held here,
    // and its drop folds again.
    for parts in live {
        parts.fold();
    }
    // Histogram samples folded here were freed through crossbeam's epoch collector, which
    // holds them in this thread's bag until 64 frees pile up; hand them on now.
    crossbeam_epoch::pin().flush();
}

/// Adds the growth of `totals` since the last fold to `targets`.
fn add_growth<const N: usize>(done: &Mutex<[u64; N]>, totals: [u64; N], targets: [&Counter; N]) {
    let mut done = done.lock().unwrap_or_else(PoisonError::into_inner);
    for ((done, total), target) in done.iter_mut().zip(totals).zip(targets) {
        if total > *done {
            target.increment(total - *done);
            *done = total;
        }
    }
}

/// One worker's figures of a route.
#[derive(Debug)]
struct RoutePart {
    /// Requests answered by status class (1xx to 5xx).
    by_class: [AtomicU64; 5],
    /// Durations (seconds) not folded yet.
    durations: AtomicBucket<f64>,
}

impl Default for RoutePart {
    fn default() -> Self {
        RoutePart {
            by_class: Default::default(),
            durations: AtomicBucket::new(),
        }
    }
}

/// A route's request metrics, written per worker.
#[derive(Debug)]
pub(super) struct RouteShards {
    parts: Parts<RoutePart>,
    by_class: [Counter; 5],
    duration: Histogram,
    folded: Mutex<[u64; 5]>,
}

impl RouteShards {
    /// Parts over the recorder's handles `by_class` and `duration`.
    pub(super) fn new(by_class: [Counter; 5], duration: Histogram) -> Arc<Self> {
        Self::with_parts(by_class, duration, Parts::new())
    }

    fn with_parts(
        by_class: [Counter; 5],
        duration: Histogram,
        parts: Parts<RoutePart>,
    ) -> Arc<Self> {
        let shards = Arc::new(RouteShards {
            parts,
            by_class,
            duration,
            folded: Mutex::default(),
        });
        register(&shards);
        shards
    }

    /// Records one request of status class `class` (0 for 1xx … 4 for 5xx).
    pub(super) fn record(&self, class: usize, seconds: f64) {
        let part = self.parts.mine();
        if let Some(count) = part.by_class.get(class) {
            count.fetch_add(1, Relaxed);
        }
        part.durations.push(seconds);
    }
}

impl Fold for RouteShards {
    fn fold(&self) {
        let totals = std::array::from_fn(|class| self.parts.sum(|p| &p.by_class[class]));
        add_growth(&self.folded, totals, self.by_class.each_ref());
        for part in self.parts.iter() {
            part.durations.clear_with(|samples| {
                for &seconds in samples {
                    self.duration.record(seconds);
                }
            });
        }
    }
}

impl Drop for RouteShards {
    fn drop(&mut self) {
        self.fold();
    }
}

/// One worker's figures of a service.
#[derive(Debug, Default)]
struct ServicePart {
    accepted: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Opened minus closed on this worker (negative where another thread closed them).
    active: AtomicI64,
}

/// The recorder's handles of a service's per-connection metrics.
#[derive(Debug)]
pub(super) struct ServiceTargets {
    pub accepted: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub active: Gauge,
}

/// A service's per-connection metrics, written per worker.
#[derive(Debug)]
struct ServiceShards {
    parts: Parts<ServicePart>,
    targets: ServiceTargets,
    folded: Mutex<[u64; 3]>,
    /// The open connections this set has added to the gauge so far. The gauge gets changes,
    /// not values: a service removed and added again while its old connections drain has
    /// two sets, and the gauge shows the sum of both.
    active_folded: Mutex<i64>,
}

impl Fold for ServiceShards {
    fn fold(&self) {
        let totals = [
            self.parts.sum(|p| &p.accepted),
            self.parts.sum(|p| &p.bytes_in),
            self.parts.sum(|p| &p.bytes_out),
        ];
        let t = &self.targets;
        add_growth(
            &self.folded,
            totals,
            [&t.accepted, &t.bytes_in, &t.bytes_out],
        );
        let mut shown = self
            .active_folded
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let active = self.active();
        if active != *shown {
            t.active.increment((active - *shown) as f64);
            *shown = active;
        }
    }
}

impl ServiceShards {
    fn new(targets: ServiceTargets, parts: Parts<ServicePart>) -> Arc<Self> {
        let shards = Arc::new(ServiceShards {
            parts,
            targets,
            folded: Mutex::default(),
            active_folded: Mutex::default(),
        });
        register(&shards);
        shards
    }

    fn active(&self) -> i64 {
        self.parts.iter().map(|p| p.active.load(Relaxed)).sum()
    }
}

impl Drop for ServiceShards {
    fn drop(&mut self) {
        self.fold();
    }
}

/// Which counter of a service a [`ServiceCounter`] is.
#[derive(Debug, Clone, Copy)]
enum Field {
    Accepted,
    BytesIn,
    BytesOut,
}

/// One counter of a service's parts, as a `metrics` handle (so that the data path's callers
/// keep their `Counter`).
#[derive(Debug)]
struct ServiceCounter(Arc<ServiceShards>, Field);

impl ServiceCounter {
    fn of<'p>(&self, part: &'p ServicePart) -> &'p AtomicU64 {
        match self.1 {
            Field::Accepted => &part.accepted,
            Field::BytesIn => &part.bytes_in,
            Field::BytesOut => &part.bytes_out,
        }
    }
}

impl CounterFn for ServiceCounter {
    fn increment(&self, value: u64) {
        self.of(self.0.parts.mine()).fetch_add(value, Relaxed);
    }

    /// Counters only grow: the sum becomes `value` when `value` is larger (as of the read).
    fn absolute(&self, value: u64) {
        let total = self.0.parts.sum(|part| self.of(part));
        if value > total {
            self.increment(value - total);
        }
    }
}

/// A service's open-connections gauge over its parts.
#[derive(Debug)]
struct ServiceActive(Arc<ServiceShards>);

impl GaugeFn for ServiceActive {
    fn increment(&self, value: f64) {
        self.0.parts.mine().active.fetch_add(value as i64, Relaxed);
    }

    fn decrement(&self, value: f64) {
        self.0.parts.mine().active.fetch_sub(value as i64, Relaxed);
    }

    /// Moves this worker's part so that the sum is `value` (as of the read).
    fn set(&self, value: f64) {
        let change = value as i64 - self.0.active();
        self.0.parts.mine().active.fetch_add(change, Relaxed);
    }
}

/// The handles a service's data path writes (accepted, bytes in, bytes out, open), each
/// writing this worker's part of `targets`.
pub(super) fn service_handles(targets: ServiceTargets) -> (Counter, Counter, Counter, Gauge) {
    handles(&ServiceShards::new(targets, Parts::new()))
}

fn handles(shards: &Arc<ServiceShards>) -> (Counter, Counter, Counter, Gauge) {
    let counter = |field| Counter::from_arc(Arc::new(ServiceCounter(Arc::clone(shards), field)));
    (
        counter(Field::Accepted),
        counter(Field::BytesIn),
        counter(Field::BytesOut),
        Gauge::from_arc(Arc::new(ServiceActive(Arc::clone(shards)))),
    )
}

#[cfg(test)]
#[path = "shards_tests.rs"]
mod tests;

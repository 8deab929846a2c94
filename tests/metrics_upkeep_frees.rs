//! The recorder's upkeep folds histogram samples into buckets and frees the blocks that held
//! them through crossbeam's epoch collector, which keeps such frees in the upkeep thread's
//! own bag until 64 of them pile up. After a burst of requests that left fewer, the blocks
//! stayed allocated until the next burst, and, scattered over the pages the burst's requests
//! used, kept those pages resident: in the idle-connection bench, 10,000 connections that each
//! made one request left RSS 23 % above its start after they closed (BENCHMARKS.md, "Idle
//! connections without a task"). `start_upkeep` flushes that bag after each round; this
//! counts the bytes the process has allocated (its own test binary, so no other test's
//! allocations move the count) and checks that a burst's blocks are freed within a second:
//! under a byte a sample stays, where the blocks took 8 and more.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use metrics::Recorder;
use metrics_exporter_prometheus::PrometheusBuilder;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;
use switchyard::telemetry::metrics::start_upkeep;

/// Bytes allocated and not freed, by every thread.
static LIVE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting.
struct Counting;

#[allow(unsafe_code, reason = "a global allocator forwarding to the system's")]
// SAFETY: every call forwards to `System` with the caller's arguments; counting touches no
// memory of the allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's block and layout, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's block, layout and size, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Samples in the burst: about 1,600 blocks of 64, freed in 49 batches of 32 blocks (fewer
/// than the 64 deferred frees that would make crossbeam flush the bag by itself).
const SAMPLES: usize = 100_000;

#[test]
fn a_burst_of_samples_is_freed_once_folded() {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[0.001, 0.01, 0.1, 1.0])
        .unwrap()
        .build_recorder();
    start_upkeep(recorder.handle(), Duration::from_millis(20));
    let key = metrics::Key::from_name("switchyard_test_duration_seconds");
    let meta = metrics::Metadata::new(module_path!(), metrics::Level::INFO, None);
    let histogram = recorder.register_histogram(&key, &meta);
    histogram.record(0.0);
    std::thread::sleep(Duration::from_millis(200));

    let before = LIVE.load(Ordering::Relaxed);
    // The upkeep folds (and, with the flush, frees) blocks while the burst goes on, so the
    // burst's size is its peak.
    let mut peak = 0;
    for i in 0..SAMPLES {
        histogram.record(i as f64 * 1e-6);
        if i % 1000 == 0 {
            peak = peak.max(LIVE.load(Ordering::Relaxed) - before);
        }
    }
    std::thread::sleep(Duration::from_millis(1000));
    let kept = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "a burst of {SAMPLES} samples took up to {peak} bytes; {kept} still allocated 1 s later"
    );
    // The blocks take 8 bytes a sample and more; without the flush, all of them stay.
    assert!(
        peak >= (SAMPLES * 2) as isize,
        "the samples took at most {peak} bytes"
    );
    assert!(
        kept < SAMPLES as isize,
        "{kept} bytes still allocated 1 s after a burst of {SAMPLES} samples (up to {peak})"
    );
}

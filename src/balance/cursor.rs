//! The turn counter of the rotating schedulers (`rr`, `wrr`, and the tie-breaking start of
//! `lc`/`wlc`), one per data-plane worker.
//!
//! A single shared counter would be one cache line that every worker writes on every pick,
//! moving between cores at each new connection or request. Each worker counts its own turns
//! instead, on a line of its own, as each nginx worker keeps its own round-robin position:
//! every worker still walks all the endpoints in order, so the spread stays even overall, and
//! worker `w` starts `w` endpoints in, so that the first picks of several workers do not all
//! land on the first endpoint. The price is memory: 128 bytes (crossbeam's padding, two
//! lines, against the neighbour-line prefetch) per worker per `rr`/`wrr`/`lc`/`wlc`
//! service, e.g. 2 MiB for 1,000 such services on 16 workers.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One turn counter per worker (see the module docs).
#[derive(Debug)]
pub(super) struct Cursor(Box<[CachePadded<AtomicUsize>]>);

impl Cursor {
    /// Counters for the workers running now (one outside a worker pool).
    pub(super) fn new() -> Self {
        Self::with_workers(crate::app::workers::count())
    }

    fn with_workers(workers: usize) -> Self {
        Cursor(
            (0..workers.max(1))
                .map(|w| CachePadded::new(AtomicUsize::new(w)))
                .collect(),
        )
    }

    /// This worker's next turn (a thread outside the pool counts with worker 0).
    pub(super) fn next(&self) -> usize {
        let mine = &self.0[crate::app::workers::current() % self.0.len()];
        mine.fetch_add(1, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `next()` on a thread that says it is worker `index`.
    fn turns_of(cursor: &Cursor, index: usize, turns: usize) -> Vec<usize> {
        std::thread::scope(|s| {
            s.spawn(|| {
                crate::app::workers::pretend(index);
                (0..turns).map(|_| cursor.next()).collect()
            })
            .join()
            .unwrap()
        })
    }

    #[test]
    fn each_worker_counts_its_own_turns_from_its_own_start() {
        let cursor = Cursor::with_workers(3);
        assert_eq!(turns_of(&cursor, 0, 3), [0, 1, 2]);
        assert_eq!(turns_of(&cursor, 2, 2), [2, 3]);
        // Worker 0's turns went on where it left them, untouched by worker 2's.
        assert_eq!(turns_of(&cursor, 0, 1), [3]);
        assert_eq!(turns_of(&cursor, 1, 1), [1]);
        // A thread numbered past the counters shares one of them.
        assert_eq!(turns_of(&cursor, 4, 1), [2]);
    }
}

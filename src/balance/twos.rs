//! `twos`: weighted random two choices ("power of two choices").
//!
//! Draw two distinct endpoints at random, each with probability proportional to its weight, and
//! take the one with fewer active connections relative to its weight. Unlike `wlc` this is
//! O(log N) per pick instead of a scan, and unlike plain random it keeps held connections
//! balanced: the loads settle close to proportional to weight. On a tie (typically short
//! connections, all counts 0) the first draw wins, so the picks then follow the weights exactly
//! in expectation.
//!
//! A draw is one number from `fastrand`'s thread-local generator (no lock) and a binary search
//! of a cumulative weight array built once per snapshot; the second draw leaves the first
//! endpoint's weight out, so it is distinct without retrying. A drawn endpoint that is not
//! usable is redrawn a few times; after that the pick falls back to a scan of the usable
//! endpoints for the least loaded one (from a random start, to spread ties).

use super::{Pick, eligible};
use crate::service_table::Endpoint;

/// Draws tried for each of the two choices before falling back to a scan.
const DRAWS: usize = 4;

/// Weighted two-choices picker.
#[derive(Debug)]
pub(super) struct TwoChoices {
    /// Endpoint indices with weight > 0, in slice order.
    eligible: Vec<usize>,
    /// `cumulative[k]` is the sum of the weights of `eligible[..=k]`.
    cumulative: Vec<u64>,
}

impl TwoChoices {
    /// Builds the cumulative weights of `endpoints` with weight > 0.
    pub(super) fn new(endpoints: &[Endpoint]) -> Self {
        let eligible = eligible(endpoints);
        let cumulative = eligible
            .iter()
            .scan(0u64, |sum, &i| {
                *sum += u64::from(endpoints[i].weight);
                Some(*sum)
            })
            .collect();
        Self {
            eligible,
            cumulative,
        }
    }

    /// Weight of position `k` in `eligible`.
    fn weight(&self, k: usize) -> u64 {
        self.cumulative[k] - k.checked_sub(1).map_or(0, |j| self.cumulative[j])
    }

    /// Draws a position by weight, leaving out position `except` if given.
    fn draw(&self, except: Option<usize>) -> Option<usize> {
        let total = self.cumulative.last().copied().unwrap_or(0);
        let left_out = except.map_or(0, |k| self.weight(k));
        if total <= left_out {
            return None;
        }
        let mut r = fastrand::u64(0..total - left_out);
        if let Some(k) = except {
            // Skip over the left-out stretch [cumulative[k] - weight, cumulative[k]).
            if r >= self.cumulative[k] - left_out {
                r += left_out;
            }
        }
        Some(self.cumulative.partition_point(|&c| c <= r))
    }

    /// Draws up to [`DRAWS`] times until the endpoint is usable; returns its position.
    fn draw_usable(&self, except: Option<usize>, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        (0..DRAWS)
            .filter_map(|_| self.draw(except))
            .find(|&k| usable(self.eligible[k]))
    }

    /// Whether position `a` is strictly less loaded than `b`, relative to weight.
    fn lighter(&self, eps: &[Endpoint], a: usize, b: usize) -> bool {
        let load = |k: usize| u64::from(eps[self.eligible[k]].state.active());
        load(a) * self.weight(b) < load(b) * self.weight(a)
    }

    /// The least loaded usable position, scanning from a random start.
    fn scan(&self, eps: &[Endpoint], usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.eligible.len();
        let start = fastrand::usize(0..n.max(1));
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&k| usable(self.eligible[k]))
            .reduce(|best, k| if self.lighter(eps, k, best) { k } else { best })
    }
}

impl Pick for TwoChoices {
    fn pick(
        &self,
        eps: &[Endpoint],
        _: super::Key,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        if self.eligible.len() < 2 {
            return self.eligible.first().copied().filter(|&i| usable(i));
        }
        let a = self.draw_usable(None, usable);
        let b = a.and_then(|a| self.draw_usable(Some(a), usable));
        let k = match (a, b) {
            (Some(a), Some(b)) => Some(if self.lighter(eps, b, a) { b } else { a }),
            _ => self.scan(eps, usable),
        };
        k.map(|k| self.eligible[k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testutil::{client, counts, endpoints};

    fn assert_within(got: &[u32], weights: &[u32], tolerance: f64) {
        let (total, sum) = (got.iter().sum::<u32>(), weights.iter().sum::<u32>());
        for (&g, &w) in got.iter().zip(weights) {
            let want = f64::from(total) * f64::from(w) / f64::from(sum);
            let dev = if w == 0 {
                f64::from(g)
            } else {
                (f64::from(g) - want).abs() / want
            };
            assert!(dev <= tolerance, "got {got:?} for weights {weights:?}");
        }
    }

    #[test]
    fn held_connections_balance_by_weight_within_ten_percent() {
        fastrand::seed(7);
        let weights = [1, 2, 3, 4, 0, 2];
        let eps = endpoints(&weights);
        let twos = TwoChoices::new(&eps);
        let mut held = Vec::new();
        for n in 0..1200 {
            let i = twos.pick(&eps, client(n), &|_| true).unwrap();
            held.push(eps[i].state.open());
        }
        let active: Vec<u32> = eps.iter().map(|e| e.state.active()).collect();
        assert_within(&active, &weights, 0.10);
    }

    #[test]
    fn short_connections_follow_weights_within_five_percent() {
        fastrand::seed(7);
        let weights = [1, 2, 3, 4, 0, 10];
        let eps = endpoints(&weights);
        let twos = TwoChoices::new(&eps);
        assert_within(&counts(&twos, &eps, 100_000, |_| true), &weights, 0.05);
    }

    #[test]
    fn second_draw_is_distinct_and_weighted() {
        fastrand::seed(7);
        let eps = endpoints(&[1, 1_000_000, 1]);
        let twos = TwoChoices::new(&eps);
        let mut c = [0u32; 3];
        for _ in 0..10_000 {
            c[twos.draw(Some(1)).unwrap()] += 1;
        }
        assert_eq!(c[1], 0);
        assert!((4500..=5500).contains(&c[0]), "{c:?}");
        assert_eq!(twos.draw(Some(0)).map(|k| k != 0), Some(true));
    }

    #[test]
    fn unusable_and_drained_endpoints_are_never_picked() {
        fastrand::seed(7);
        let eps = endpoints(&[100, 1, 0, 100]);
        let twos = TwoChoices::new(&eps);
        let c = counts(&twos, &eps, 5000, |i| i != 0);
        assert_eq!((c[0], c[2]), (0, 0));
        assert_eq!(c[1] + c[3], 5000);
        let only_1 = counts(&twos, &eps, 1000, |i| i == 1);
        assert_eq!(only_1[1], 1000, "found by the scan when draws keep missing");
        assert_eq!(twos.pick(&eps, client(1), &|_| false), None);
        let single = endpoints(&[0, 3]);
        assert_eq!(
            TwoChoices::new(&single).pick(&single, client(1), &|_| true),
            Some(1)
        );
        assert_eq!(TwoChoices::new(&[]).pick(&[], client(1), &|_| true), None);
    }
}

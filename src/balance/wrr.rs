//! `wrr`: smooth weighted round robin (nginx's algorithm), precomputed and lock-free.
//!
//! nginx keeps a `current` counter per endpoint: each turn every counter grows by its weight,
//! the largest wins and loses the total. The winner sequence is periodic with period
//! `sum(weights)` and interleaves the heavy endpoint with the light ones instead of sending it
//! a burst (weights 5, 1, 1 give `a a b a c a a`, not `a a a a a b c`). nginx updates those
//! counters under a lock on every pick; since the sequence only depends on the weights, we run
//! it once at build time and store one period as a schedule of endpoint indices. A pick is
//! then one `fetch_add` on this worker's turn counter ([`Cursor`]) plus an index into the
//! schedule.
//!
//! Size of the schedule: the weights are first divided by their gcd (10, 20, 30 has the same
//! sequence as 1, 2, 3). If the period is still longer than [`MAX_CYCLE`] (4096), the weights
//! are scaled down proportionally to a period of at most 4096, every positive weight keeping at
//! least 1 (so with more than 4096 endpoints the period is one turn each). The shares are then
//! exact up to rounding to 1/4096, far finer than weights are meant to be. Building costs
//! O(period × endpoints).
//!
//! An unusable entry is skipped by walking on through the schedule, at most one full period,
//! so its turn goes to the endpoint scheduled after it; weight 0 never enters the schedule.

use super::cursor::Cursor;
use super::{Pick, eligible};
use crate::service_table::Endpoint;

/// Longest schedule period before weights are scaled down.
const MAX_CYCLE: u64 = 4096;

/// Smooth weighted round-robin picker.
#[derive(Debug)]
pub(super) struct SmoothWeighted {
    /// One period of the nginx sequence, as indices into the endpoint slice.
    schedule: Vec<u32>,
    cursor: Cursor,
}

impl SmoothWeighted {
    /// Precomputes one period of the smooth schedule for `endpoints`.
    pub(super) fn new(endpoints: &[Endpoint]) -> Self {
        let indices = eligible(endpoints);
        let weights: Vec<u32> = indices.iter().map(|&i| endpoints[i].weight).collect();
        let schedule = smooth_schedule(&scaled_weights(&weights, MAX_CYCLE))
            .into_iter()
            .map(|k| indices[k] as u32)
            .collect();
        Self {
            schedule,
            cursor: Cursor::new(),
        }
    }
}

/// The weights actually scheduled: divided by their gcd, then, if their sum is larger than
/// `max_total`, apportioned to a sum of at most `max_total` (largest remainder, every weight
/// keeping at least 1; only with more than `max_total` weights does the sum exceed it, being
/// then all ones). Positive inputs give positive outputs. Also used by `sh` and `mh`.
pub(super) fn scaled_weights(weights: &[u32], max_total: u64) -> Vec<u64> {
    let g = weights.iter().fold(0, |g, &w| gcd(g, u64::from(w))).max(1);
    let reduced: Vec<u64> = weights.iter().map(|&w| u64::from(w) / g).collect();
    let total: u64 = reduced.iter().sum();
    if total <= max_total {
        return reduced;
    }
    if reduced.len() as u64 >= max_total {
        return vec![1; reduced.len()];
    }
    // Exact shares are w * max_total / total: floor them, hand the leftover to the largest
    // remainders, lift zeros to 1, and take what that added back from the largest weights.
    let mut scaled: Vec<u64> = reduced.iter().map(|&w| w * max_total / total).collect();
    let mut by_remainder: Vec<usize> = (0..scaled.len()).collect();
    by_remainder.sort_by_key(|&k| std::cmp::Reverse(reduced[k] * max_total % total));
    let leftover = max_total - scaled.iter().sum::<u64>();
    for &k in by_remainder.iter().take(leftover as usize) {
        scaled[k] += 1;
    }
    scaled.iter_mut().for_each(|w| *w = (*w).max(1));
    let mut excess = scaled.iter().sum::<u64>().saturating_sub(max_total);
    while excess > 0 {
        let Some(largest) = scaled.iter_mut().filter(|w| **w > 1).max() else {
            break;
        };
        *largest -= 1;
        excess -= 1;
    }
    let g = scaled.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    scaled.into_iter().map(|w| w / g).collect()
}

/// Greatest common divisor (gcd(0, x) = x).
fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Runs nginx's selection for one period (`sum(weights)` turns) and returns the winners as
/// positions in `weights`. Ties go to the earlier position, as in nginx, so equal weights give
/// plain round robin `0, 1, 2, ...`. Also used by `mh` to interleave its weighted turns.
pub(super) fn smooth_schedule(weights: &[u64]) -> Vec<usize> {
    let total: u64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for (k, &w) in weights.iter().enumerate() {
            current[k] += w as i64;
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total as i64;
        schedule.push(best);
    }
    schedule
}

impl Pick for SmoothWeighted {
    fn pick(&self, _: &[Endpoint], _: super::Key, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.schedule.len();
        if n == 0 {
            return None;
        }
        // Reduce before adding so the walk cannot overflow when the cursor wraps.
        let start = self.cursor.next() % n;
        (0..n)
            .map(|k| self.schedule[(start + k) % n] as usize)
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testutil::{client, counts, endpoints};

    fn sequence(wrr: &SmoothWeighted, eps: &[Endpoint], picks: u32) -> Vec<usize> {
        (0..picks)
            .map(|n| wrr.pick(eps, client(n), &|_| true).unwrap())
            .collect()
    }

    #[test]
    fn five_one_one_gives_the_nginx_sequence_without_bursts() {
        let eps = endpoints(&[5, 1, 1]);
        let wrr = SmoothWeighted::new(&eps);
        assert_eq!(wrr.schedule, vec![0, 0, 1, 0, 2, 0, 0]);
        let a_a_b_a_c_a_a = [0, 0, 1, 0, 2, 0, 0];
        assert_eq!(
            sequence(&wrr, &eps, 14),
            [a_a_b_a_c_a_a, a_a_b_a_c_a_a].concat()
        );
    }

    #[test]
    fn full_cycles_give_exact_shares_and_skip_weight_zero() {
        let eps = endpoints(&[3, 0, 2, 7]);
        let wrr = SmoothWeighted::new(&eps);
        assert_eq!(
            counts(&wrr, &eps, 12 * 100, |_| true),
            vec![300, 0, 200, 700]
        );
    }

    #[test]
    fn weights_are_divided_by_their_gcd() {
        let eps = endpoints(&[10, 20, 30]);
        let wrr = SmoothWeighted::new(&eps);
        assert_eq!(wrr.schedule.len(), 6);
        assert_eq!(counts(&wrr, &eps, 600, |_| true), vec![100, 200, 300]);
    }

    #[test]
    fn long_cycles_are_scaled_to_about_4096_and_keep_light_endpoints() {
        let eps = endpoints(&[100_000, 1, 30_000, 7]);
        let wrr = SmoothWeighted::new(&eps);
        let len = wrr.schedule.len();
        assert_eq!(len, 4096);
        let c = counts(&wrr, &eps, len as u32, |_| true);
        assert_eq!(c[1], 1, "a positive weight keeps at least one turn");
        assert_eq!(c[3], 1);
        let ratio = f64::from(c[0]) / f64::from(c[2]);
        assert!((ratio - 10.0 / 3.0).abs() < 0.01, "ratio {ratio}");
    }

    #[test]
    fn unusable_entries_are_skipped_by_walking_on() {
        let eps = endpoints(&[5, 1, 1]);
        let wrr = SmoothWeighted::new(&eps);
        let c = counts(&wrr, &eps, 700, |i| i != 0);
        assert_eq!(c[0], 0);
        assert_eq!(c[1] + c[2], 700, "every pick still finds an endpoint");
        assert_eq!(wrr.pick(&eps, client(1), &|_| false), None);
    }

    #[test]
    fn no_weighted_endpoint_means_no_pick() {
        let eps = endpoints(&[0, 0]);
        let wrr = SmoothWeighted::new(&eps);
        assert_eq!(wrr.pick(&eps, client(1), &|_| true), None);
        assert_eq!(
            SmoothWeighted::new(&[]).pick(&[], client(1), &|_| true),
            None
        );
    }
}

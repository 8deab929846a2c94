//! `rr`: round robin over the endpoints with weight > 0.
//!
//! A turn counter per worker ([`Cursor`]); a failed or benched endpoint is skipped
//! by walking on from the cursor, so the walk costs at most one pass over the endpoints.

use super::cursor::Cursor;
use super::{Pick, eligible};
use crate::service_table::Endpoint;

/// Round-robin picker.
#[derive(Debug)]
pub(super) struct RoundRobin {
    eligible: Vec<usize>,
    cursor: Cursor,
}

impl RoundRobin {
    pub(super) fn new(endpoints: &[Endpoint]) -> Self {
        Self {
            eligible: eligible(endpoints),
            cursor: Cursor::new(),
        }
    }
}

impl Pick for RoundRobin {
    fn pick(&self, _: &[Endpoint], _: super::Key, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.eligible.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.next() % n;
        (0..n)
            .map(|k| self.eligible[(start + k) % n])
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testutil::{client, counts, endpoints};

    #[test]
    fn round_robin_spreads_evenly_and_skips_drained() {
        let eps = endpoints(&[1, 0, 5, 1]);
        let rr = RoundRobin::new(&eps);
        let c = counts(&rr, &eps, 3000, |_| true);
        assert_eq!(c, vec![1000, 0, 1000, 1000]);
    }

    #[test]
    fn round_robin_walks_past_unusable_endpoints() {
        let eps = endpoints(&[1, 1, 1]);
        let rr = RoundRobin::new(&eps);
        let c = counts(&rr, &eps, 300, |i| i != 1);
        assert_eq!(
            c,
            vec![100, 0, 200],
            "the next usable endpoint takes the turn"
        );
        assert_eq!(rr.pick(&eps, client(1), &|_| false), None);
    }
}

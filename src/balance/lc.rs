//! `lc` and `wlc`: least active connections, optionally relative to weight.
//!
//! Like `ip_vs_lc`/`ip_vs_wlc` this scans the endpoints (O(N) per pick, which is what IPVS
//! does too and is cheap for the tens of endpoints a service has). Unlike IPVS, ties do not
//! always go to the first endpoint: the scan starts at a rotating offset, so a service whose
//! connections are all short (active count always 0) still spreads them instead of sending
//! every one to the first endpoint.

use super::cursor::Cursor;
use super::{Pick, eligible};
use crate::service_table::Endpoint;

/// Least-connection picker.
#[derive(Debug)]
pub(super) struct LeastConn {
    eligible: Vec<usize>,
    weighted: bool,
    cursor: Cursor,
}

impl LeastConn {
    pub(super) fn new(endpoints: &[Endpoint], weighted: bool) -> Self {
        Self {
            eligible: eligible(endpoints),
            weighted,
            cursor: Cursor::new(),
        }
    }
}

impl Pick for LeastConn {
    fn pick(
        &self,
        eps: &[Endpoint],
        _: super::Key,
        usable: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        let n = self.eligible.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.next() % n;
        let mut best: Option<(usize, u64, u64)> = None; // (index, active, weight)
        for k in 0..n {
            let i = self.eligible[(start + k) % n];
            if !usable(i) {
                continue;
            }
            let active = u64::from(eps[i].state.active());
            let weight = if self.weighted {
                u64::from(eps[i].weight)
            } else {
                1
            };
            // active/weight < best_active/best_weight, without division.
            let better = best.is_none_or(|(_, ba, bw)| active * bw < ba * weight);
            if better {
                best = Some((i, active, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testutil::{client, endpoints};

    #[test]
    fn least_conn_prefers_the_idle_endpoint() {
        let eps = endpoints(&[1, 1, 1]);
        let _busy: Vec<_> = (0..5).map(|_| eps[0].state.open()).collect();
        let _busy1 = eps[1].state.open();
        let lc = LeastConn::new(&eps, false);
        assert_eq!(lc.pick(&eps, client(1), &|_| true), Some(2));
    }

    #[test]
    fn least_conn_spreads_short_connections() {
        let eps = endpoints(&[1, 1, 1, 1]);
        let lc = LeastConn::new(&eps, false);
        let mut c = [0; 4];
        for n in 0..400 {
            c[lc.pick(&eps, client(n), &|_| true).unwrap()] += 1;
        }
        assert_eq!(c, [100; 4]);
    }

    #[test]
    fn least_conn_balances_held_connections() {
        let eps = endpoints(&[1, 1, 1]);
        let lc = LeastConn::new(&eps, false);
        let mut held = Vec::new();
        for n in 0..300 {
            let i = lc.pick(&eps, client(n), &|_| true).unwrap();
            held.push(eps[i].state.open());
        }
        let active: Vec<u32> = eps.iter().map(|e| e.state.active()).collect();
        assert_eq!(active, vec![100, 100, 100]);
    }

    #[test]
    fn weighted_least_conn_fills_by_weight() {
        let eps = endpoints(&[1, 3, 0]);
        let wlc = LeastConn::new(&eps, true);
        let mut held = Vec::new();
        for n in 0..400 {
            let i = wlc.pick(&eps, client(n), &|_| true).unwrap();
            held.push(eps[i].state.open());
        }
        let active: Vec<u32> = eps.iter().map(|e| e.state.active()).collect();
        assert_eq!(active, vec![100, 300, 0]);
    }

    #[test]
    fn least_conn_skips_unusable() {
        let eps = endpoints(&[1, 1]);
        let lc = LeastConn::new(&eps, true);
        assert_eq!(lc.pick(&eps, client(1), &|i| i == 1), Some(1));
        assert_eq!(lc.pick(&eps, client(1), &|_| false), None);
    }
}

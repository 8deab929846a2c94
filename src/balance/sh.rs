//! `sh`: source-IP hashing over a 256-bucket table, as in `ip_vs_sh`.
//!
//! The table is filled as IPVS fills it: walk the endpoints and give each `weight` consecutive
//! buckets, cyclically, until all 256 are taken. A client goes to bucket
//! `hash(key) % 256` (the key is the client's address, or a
//! route's `hash_on` key). Two departures from IPVS:
//! - the endpoints are walked in address order, not in list order, so the table depends only
//!   on the set of endpoints and their weights and a rebuild does not move clients;
//! - the weights are divided by their gcd and, if they still sum to more than 256, scaled down
//!   proportionally (each positive weight keeps at least one bucket). IPVS uses the raw
//!   weights, so weights 300 and 300 would give every bucket to the first endpoint.
//!
//! 256 buckets make the shares coarse: with N equal endpoints each gets `256 / N` buckets
//! rounded up or down, which is within a few percent of fair for a handful of endpoints but
//! not for many; `mh` is the scheduler for that.
//!
//! Fallback (`sh-fallback`): if the bucket's endpoint is not usable, walk forward through the
//! buckets and take the first usable one. Only clients of the unusable endpoint move, and they
//! move back when it returns; because buckets are filled in runs, they mostly land on the
//! endpoint after it in address order (as in IPVS).

use super::wrr::scaled_weights;
use super::{Key, Pick, eligible};
use crate::service_table::Endpoint;

/// Number of buckets, as `IP_VS_SH_TAB_SIZE`.
const BUCKETS: usize = 256;

/// Source-hash picker.
#[derive(Debug)]
pub(super) struct SourceHash {
    /// Endpoint index per bucket; empty when no endpoint has weight > 0.
    buckets: Vec<u32>,
}

impl SourceHash {
    /// Fills the 256 buckets from `endpoints` (weight > 0, in address order).
    pub(super) fn new(endpoints: &[Endpoint]) -> Self {
        let mut order = eligible(endpoints);
        order.sort_by_key(|&i| (endpoints[i].address, endpoints[i].weight));
        let weights: Vec<u32> = order.iter().map(|&i| endpoints[i].weight).collect();
        let runs = scaled_weights(&weights, BUCKETS as u64);
        let buckets = order
            .iter()
            .zip(&runs)
            .flat_map(|(&i, &run)| std::iter::repeat_n(i as u32, run as usize))
            .cycle()
            .take(BUCKETS)
            .collect();
        Self { buckets }
    }
}

impl Pick for SourceHash {
    fn pick(&self, _: &[Endpoint], key: Key, usable: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.buckets.len();
        if n == 0 {
            return None;
        }
        let start = (key.hash() % n as u64) as usize;
        (0..n)
            .map(|k| self.buckets[(start + k) % n] as usize)
            .find(|&i| usable(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::testutil::{
        client, counts, endpoints, first_difference, shuffled_endpoints,
    };
    use proptest::prelude::*;

    fn pick(sh: &SourceHash, eps: &[Endpoint], n: u32) -> Option<usize> {
        sh.pick(eps, client(n), &|_| true)
    }

    #[test]
    fn same_client_gets_the_same_endpoint_every_time() {
        let eps = endpoints(&[1, 1, 1, 1, 1]);
        let sh = SourceHash::new(&eps);
        for n in 0..1000 {
            let first = pick(&sh, &eps, n);
            assert!(first.is_some());
            assert!((0..5).all(|_| pick(&sh, &eps, n) == first));
            assert_eq!(
                pick(&SourceHash::new(&eps), &eps, n),
                first,
                "a rebuild keeps it"
            );
        }
    }

    #[test]
    fn equal_weights_spread_clients_within_ten_percent_of_fair() {
        // Tolerance: 256 buckets over N endpoints give ceil(256/N) or floor(256/N) buckets each,
        // up to 1.6% off fair for N <= 10 (10 endpoints: 26 vs 25.6), plus sampling noise of
        // 100k clients (~1%); measured worst 2.2%. ±10% holds up to about 25 endpoints only.
        for n in [2, 3, 5, 7, 10] {
            let eps = endpoints(&vec![1; n]);
            let sh = SourceHash::new(&eps);
            let c = counts(&sh, &eps, 100_000, |_| true);
            let fair = 100_000.0 / n as f64;
            for &got in &c {
                let dev = (f64::from(got) - fair).abs() / fair;
                assert!(dev <= 0.10, "{n} endpoints: {c:?}");
            }
        }
    }

    #[test]
    fn weights_are_respected_roughly_and_weight_zero_gets_nothing() {
        let eps = endpoints(&[1, 2, 0, 3]);
        let sh = SourceHash::new(&eps);
        assert_eq!(sh.buckets.iter().filter(|&&i| i == 1).count(), 86); // 42 runs of 2, +2
        let c = counts(&sh, &eps, 60_000, |_| true);
        assert_eq!(c[2], 0);
        for (i, want) in [(0, 10_000.0), (1, 20_000.0), (3, 30_000.0)] {
            let dev = (f64::from(c[i]) - want).abs() / want;
            assert!(dev <= 0.10, "{c:?}");
        }
    }

    #[test]
    fn huge_weights_are_scaled_so_every_endpoint_gets_buckets() {
        let eps = endpoints(&[301, 300, 1]);
        let sh = SourceHash::new(&eps);
        let per = |e: u32| sh.buckets.iter().filter(|&&i| i == e).count();
        assert!(
            (127..=129).contains(&per(0)) && (127..=129).contains(&per(1)),
            "{:?}",
            sh
        );
        assert_eq!(per(2), 1);
    }

    #[test]
    fn unusable_endpoint_falls_back_and_other_clients_stay() {
        let eps = endpoints(&[1, 1, 1, 1]);
        let sh = SourceHash::new(&eps);
        for n in 0..2000 {
            let before = pick(&sh, &eps, n);
            let after = sh.pick(&eps, client(n), &|i| i != 2);
            assert!(after.is_some() && after != Some(2));
            if before != Some(2) {
                assert_eq!(after, before, "only clients of the unusable endpoint move");
            }
            assert_eq!(
                after,
                sh.pick(&eps, client(n), &|i| i != 2),
                "fallback is stable"
            );
        }
        assert_eq!(sh.pick(&eps, client(1), &|_| false), None);
        let drained = endpoints(&[0, 0]);
        assert_eq!(pick(&SourceHash::new(&drained), &drained, 1), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn mapping_depends_only_on_the_endpoint_set_not_its_order(
            (eps, shuffled) in shuffled_endpoints()
        ) {
            let (a, b) = (SourceHash::new(&eps), SourceHash::new(&shuffled));
            prop_assert_eq!(first_difference((&a, &eps), (&b, &shuffled), 1000), None);
        }
    }
}

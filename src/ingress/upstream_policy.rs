//! A route's retry, timeout and mirror settings with the live state they need: the retry
//! budget and the mirror's in-flight slots. Built with the route table, so each snapshot's
//! route has its own; a request holds its route's for its whole life.
//!
//! # The retry budget
//!
//! A token account, as Finagle's `RetryBudget`: every request of the route deposits
//! `budget_percent / 100` of a retry, every retry withdraws a whole one, and the balance never
//! exceeds `min_retries` (at least one), which is also where it starts. So however many
//! endpoints fail, the retries of a route number at most `min_retries + requests × budget /
//! 100`: with the default 20 %, an outage costs the backends 1.2 times the load, not
//! `attempts` times. A concurrency cap (Envoy's "20 % of active requests") gives no such
//! bound over time — one slow request frees its slot for the next retry — which is why this
//! is a count. A healthy route sits at a full reserve, so an isolated failure is always
//! retried. A new snapshot starts each route with a full reserve again.

use crate::config::upstream_policy::UpstreamPolicyConfig;
use metrics::{Counter, counter};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Milli-retries per retry.
const TOKEN: i64 = 1000;

/// A route's settings and their live state.
#[derive(Debug)]
pub struct UpstreamPolicy {
    /// The settings.
    pub config: UpstreamPolicyConfig,
    /// Retries left to spend.
    pub budget: RetryBudget,
    /// The mirror's in-flight slots (empty without a mirror).
    pub mirror_slots: Arc<Semaphore>,
    /// Requests seen by the mirror's sampling.
    mirror_seen: AtomicU64,
    /// The `route` label of the counters below.
    route: Arc<str>,
    counters: OnceLock<Counters>,
}

impl Default for UpstreamPolicy {
    fn default() -> Self {
        UpstreamPolicy::new(UpstreamPolicyConfig::default(), Arc::from("-"))
    }
}

/// Two policies are equal when their settings are (the live state is not configuration).
impl PartialEq for UpstreamPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl Eq for UpstreamPolicy {}

/// What became of a mirrored copy, or of a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A copy was sent and answered.
    MirrorSent,
    /// No slot was free: the copy was not made.
    MirrorDropped,
    /// The copy failed (no endpoint, connect, timeout).
    MirrorFailed,
    /// A retry was made.
    RetrySent,
    /// A retry was wanted but the budget was spent.
    RetryDenied,
}

/// The counter of each [`Outcome`], in its order.
#[derive(Debug)]
struct Counters([Counter; 5]);

impl UpstreamPolicy {
    /// The policy of the route named `route`.
    pub fn new(config: UpstreamPolicyConfig, route: Arc<str>) -> UpstreamPolicy {
        let min = config.retry.as_ref().map_or(0, |r| r.min_retries);
        let slots = config
            .mirror
            .as_ref()
            .map_or(0, |m| m.max_in_flight.get() as usize);
        UpstreamPolicy {
            config,
            budget: RetryBudget::new(min),
            mirror_slots: Arc::new(Semaphore::new(slots)),
            mirror_seen: AtomicU64::new(0),
            route,
            counters: OnceLock::new(),
        }
    }

    /// The deadline of one attempt: the route's `backend_request`, else the service's.
    pub fn attempt_timeout(&self, service: std::time::Duration) -> std::time::Duration {
        self.config.timeouts.backend_request.unwrap_or(service)
    }

    /// Whether this request is one of the share that is mirrored (spread evenly: exactly
    /// `per_million` of every million requests).
    pub fn mirror_this(&self) -> bool {
        let Some(mirror) = &self.config.mirror else {
            return false;
        };
        let n = u128::from(self.mirror_seen.fetch_add(1, Ordering::Relaxed));
        let share = u128::from(mirror.per_million);
        (n + 1) * share / 1_000_000 > n * share / 1_000_000
    }

    /// Counts `outcome` in `switchyard_http_mirrored_total` or `switchyard_http_retries_total`.
    pub fn count(&self, outcome: Outcome) {
        let counters = self.counters.get_or_init(|| {
            use crate::telemetry::metrics::{HTTP_MIRRORED_TOTAL, HTTP_RETRIES_TOTAL};
            let route = &self.route;
            let m = |result: &'static str| counter!(HTTP_MIRRORED_TOTAL, "route" => route.to_string(), "result" => result);
            let r = |result: &'static str| counter!(HTTP_RETRIES_TOTAL, "route" => route.to_string(), "result" => result);
            Counters([m("sent"), m("dropped"), m("failed"), r("sent"), r("budget_exhausted")])
        });
        counters.0[outcome as usize].increment(1);
    }
}

/// Retries a route may still make (see the module doc).
#[derive(Debug, Default)]
pub struct RetryBudget {
    /// Milli-retries.
    balance: AtomicI64,
}

impl RetryBudget {
    /// A budget with its reserve full.
    pub fn new(min_retries: u32) -> RetryBudget {
        RetryBudget {
            balance: AtomicI64::new(cap(min_retries)),
        }
    }

    /// A request came: adds `percent` / 100 of a retry, up to the reserve.
    pub fn deposit(&self, percent: u32, min_retries: u32) {
        let cap = cap(min_retries);
        let add = i64::from(percent) * TOKEN / 100;
        let _ = self
            .balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b < cap).then(|| (b + add).min(cap))
            });
    }

    /// Takes one retry, if there is one.
    pub fn withdraw(&self) -> bool {
        self.balance
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b >= TOKEN).then_some(b - TOKEN)
            })
            .is_ok()
    }
}

/// The most the balance holds: the reserve, at least one retry.
fn cap(min_retries: u32) -> i64 {
    i64::from(min_retries.max(1)) * TOKEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::upstream_policy::{MirrorConfig, per_million};
    use std::num::NonZeroU32;

    #[test]
    fn budget_starts_with_its_reserve_and_refills_by_requests() {
        let budget = RetryBudget::new(3);
        assert!(budget.withdraw() && budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw());
        // 20 %: five requests earn one retry, four do not.
        for _ in 0..4 {
            budget.deposit(20, 3);
        }
        assert!(!budget.withdraw());
        budget.deposit(20, 3);
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn budget_never_saves_more_than_its_reserve() {
        let budget = RetryBudget::new(2);
        for _ in 0..1000 {
            budget.deposit(100, 2);
        }
        assert!(budget.withdraw() && budget.withdraw());
        assert!(!budget.withdraw());
    }

    #[test]
    fn retries_stay_within_reserve_plus_budget_share_of_requests() {
        let budget = RetryBudget::new(3);
        let (requests, mut retries) = (1000, 0);
        for _ in 0..requests {
            budget.deposit(20, 3);
            // Every request wants two retries.
            retries += u32::from(budget.withdraw()) + u32::from(budget.withdraw());
        }
        assert!(retries <= 3 + requests * 20 / 100, "{retries}");
        assert!(retries >= requests * 20 / 100, "{retries}");
    }

    #[test]
    fn a_zero_reserve_still_allows_one_saved_retry() {
        let budget = RetryBudget::new(0);
        assert!(budget.withdraw());
        assert!(!budget.withdraw());
    }

    fn mirrored(percent: f64, requests: u32) -> u32 {
        let config = UpstreamPolicyConfig {
            mirror: Some(MirrorConfig {
                service: "m".into(),
                per_million: per_million(percent).unwrap_or_default(),
                max_in_flight: NonZeroU32::MIN,
                max_body_bytes: 0,
            }),
            ..UpstreamPolicyConfig::default()
        };
        let policy = UpstreamPolicy::new(config, "r".into());
        (0..requests).map(|_| u32::from(policy.mirror_this())).sum()
    }

    #[test]
    fn mirror_sampling_takes_exactly_its_share() {
        assert_eq!(mirrored(100.0, 500), 500);
        assert_eq!(mirrored(0.0, 500), 0);
        assert_eq!(mirrored(25.0, 1000), 250);
        assert_eq!(mirrored(0.1, 10_000), 10);
    }
}

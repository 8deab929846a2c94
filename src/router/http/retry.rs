//! Whether a failed attempt is made again on another endpoint, by the route's retry policy
//! (see [`crate::ingress::UpstreamPolicy`] for the budget that bounds how many are).
//!
//! Without a policy, as always: a failed connect, for a request that can be sent again (no
//! body). With one, only the conditions it names, and the ones after which the endpoint may
//! have acted on the request (a reset, a timeout, a 502/503/504) only for idempotent methods
//! whose body was not streamed. Our own lack of descriptors is never retried: another
//! endpoint would fail the same way.

use crate::config::upstream_policy::{Condition, RetryConfig};
use crate::upstream::blame::Blame;
use crate::upstream::http::UpstreamError;

/// What the request allows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Replay {
    /// It can be written again from the start (it has no body).
    pub replayable: bool,
    /// Its method may be sent twice.
    pub idempotent: bool,
}

/// Whether an attempt that failed with `error` is retried.
pub(super) fn after_error(retry: Option<&RetryConfig>, error: &UpstreamError, r: Replay) -> bool {
    if !r.replayable || error.blame() == Blame::Ours {
        return false;
    }
    let condition = match error {
        UpstreamError::Connect(_) => Condition::ConnectFailure,
        UpstreamError::Request(_) => Condition::Reset,
        UpstreamError::Timeout(_) => Condition::Timeout,
        UpstreamError::Body(_) => return false,
    };
    match retry {
        None => condition == Condition::ConnectFailure,
        Some(policy) => {
            policy.on.has(condition) && (condition == Condition::ConnectFailure || r.idempotent)
        }
    }
}

/// Whether an attempt answered with `status` is retried.
pub(super) fn after_status(retry: Option<&RetryConfig>, status: u16, r: Replay) -> bool {
    retry.is_some_and(|p| p.on.status(status)) && r.replayable && r.idempotent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::upstream_policy::RetryOn;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn policy(on: &[Condition]) -> RetryConfig {
        RetryConfig {
            attempts: NonZeroU32::MIN.saturating_add(2),
            on: on.iter().fold(RetryOn::default(), |s, c| s.with(*c)),
            budget_percent: 20,
            min_retries: 3,
        }
    }

    const GET: Replay = Replay {
        replayable: true,
        idempotent: true,
    };
    const POST: Replay = Replay {
        replayable: true,
        idempotent: false,
    };

    fn reset() -> UpstreamError {
        UpstreamError::Request("connection reset".into())
    }

    #[test]
    fn without_a_policy_only_connect_failures_are_retried() {
        let connect = UpstreamError::Connect("refused".into());
        assert!(after_error(None, &connect, POST));
        assert!(!after_error(None, &reset(), GET));
        assert!(!after_status(None, 503, GET));
    }

    #[test]
    fn resets_timeouts_and_statuses_are_retried_only_for_idempotent_requests() {
        let p = policy(&[Condition::Reset, Condition::Timeout, Condition::Status503]);
        let timeout = UpstreamError::Timeout(Duration::from_secs(1));
        assert!(after_error(Some(&p), &reset(), GET));
        assert!(!after_error(Some(&p), &reset(), POST));
        assert!(after_error(Some(&p), &timeout, GET));
        assert!(after_status(Some(&p), 503, GET));
        assert!(!after_status(Some(&p), 503, POST));
        assert!(!after_status(Some(&p), 502, GET));
    }

    #[test]
    fn a_streamed_body_or_an_unnamed_condition_is_never_retried() {
        let p = policy(&[Condition::Reset, Condition::Status503]);
        let streamed = Replay {
            replayable: false,
            idempotent: true,
        };
        assert!(!after_error(Some(&p), &reset(), streamed));
        assert!(!after_status(Some(&p), 503, streamed));
        let connect = UpstreamError::Connect("refused".into());
        assert!(!after_error(Some(&p), &connect, GET));
    }
}

//! A route's retry, timeout and mirror settings as the data path uses them, checked from
//! their TOML ([`super::file::RawRetry`], [`super::file::RawTimeouts`],
//! [`super::file::RawMirror`]) or built from ingress-nginx annotations. One set of types for
//! every source, so a route from the file, an Ingress or (later) an HTTPRoute retries and
//! mirrors the same way.

use super::file::{RawMirror, RawRetry, RawTimeouts};
use super::validate::Issues;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Largest mirrored body allowed (16 MiB): each copy in flight holds its body.
pub const MAX_MIRROR_BODY: u64 = 16 * 1024 * 1024;

/// Most attempts a retry policy may ask for.
pub const MAX_ATTEMPTS: u32 = 10;

/// What a route adds to how its requests are sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpstreamPolicyConfig {
    /// Retries on named conditions, within a budget; `None`: the service's `connect_attempts`.
    pub retry: Option<RetryConfig>,
    /// Whole-request and per-attempt deadlines.
    pub timeouts: RouteTimeouts,
    /// Copies sent to another service.
    pub mirror: Option<MirrorConfig>,
}

/// When and how often a failed attempt is made again on another endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryConfig {
    /// Attempts in all (1-10).
    pub attempts: NonZeroU32,
    /// The conditions retried.
    pub on: RetryOn,
    /// Retries allowed per 100 requests.
    pub budget_percent: u32,
    /// Retries always available (the budget's reserve).
    pub min_retries: u32,
}

/// A failure a retry policy can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No connection could be made (nothing was sent).
    ConnectFailure,
    /// The connection broke before a response head.
    Reset,
    /// No response head within the per-attempt deadline.
    Timeout,
    /// The endpoint answered 502.
    Status502,
    /// The endpoint answered 503.
    Status503,
    /// The endpoint answered 504.
    Status504,
}

impl Condition {
    /// The condition a name (`connect-failure`, `reset`, `timeout`, `502`, `503`, `504`)
    /// stands for.
    pub fn parse(name: &str) -> Option<Condition> {
        Some(match name {
            "connect-failure" => Condition::ConnectFailure,
            "reset" => Condition::Reset,
            "timeout" => Condition::Timeout,
            "502" => Condition::Status502,
            "503" => Condition::Status503,
            "504" => Condition::Status504,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of [`Condition`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOn(u8);

impl RetryOn {
    /// The set with `condition` added.
    pub fn with(self, condition: Condition) -> RetryOn {
        RetryOn(self.0 | condition.bit())
    }

    /// Whether `condition` is in the set.
    pub fn has(self, condition: Condition) -> bool {
        self.0 & condition.bit() != 0
    }

    /// Whether a response with `status` is retried.
    pub fn status(self, status: u16) -> bool {
        match status {
            502 => self.has(Condition::Status502),
            503 => self.has(Condition::Status503),
            504 => self.has(Condition::Status504),
            _ => false,
        }
    }
}

/// Gateway API `HTTPRouteTimeouts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RouteTimeouts {
    /// From routing to the end of the response head, retries included.
    pub request: Option<Duration>,
    /// One attempt (overrides the service's `response_timeout`).
    pub backend_request: Option<Duration>,
}

/// Where copies of a route's requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The service that gets them.
    pub service: Arc<str>,
    /// Share mirrored, in parts per million.
    pub per_million: u32,
    /// Most copies in flight.
    pub max_in_flight: NonZeroU32,
    /// Largest request body copied (held in memory until the copy is sent).
    pub max_body_bytes: u64,
}

type ServiceRef<'a> = dyn Fn(&str, String, &mut Issues) -> Option<Arc<str>> + 'a;

/// Checks a route's policy tables; `None` when one of them is invalid (each issue named by
/// its path under `path`).
pub(super) fn validate(
    retry: Option<&RawRetry>,
    timeouts: Option<&RawTimeouts>,
    mirror: Option<&RawMirror>,
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Option<UpstreamPolicyConfig> {
    let before = issues.len();
    let retry = retry.and_then(|r| validate_retry(r, &format!("{path}.retry"), issues));
    let timeouts = timeouts.map_or_else(RouteTimeouts::default, |t| {
        validate_timeouts(t, &format!("{path}.timeouts"), issues)
    });
    let mirror = match mirror {
        Some(m) => Some(validate_mirror(
            m,
            &format!("{path}.mirror"),
            service,
            issues,
        )?),
        None => None,
    };
    (issues.len() == before).then_some(UpstreamPolicyConfig {
        retry,
        timeouts,
        mirror,
    })
}

fn validate_retry(raw: &RawRetry, path: &str, issues: &mut Issues) -> Option<RetryConfig> {
    let attempts = NonZeroU32::new(raw.attempts).filter(|n| n.get() <= MAX_ATTEMPTS);
    if attempts.is_none() {
        issues.push(format!("{path}.attempts"), "must be 1-10");
    }
    let mut on = RetryOn::default();
    for (i, name) in raw.on.iter().enumerate() {
        match Condition::parse(name) {
            Some(c) => on = on.with(c),
            None => issues.push(
                format!("{path}.on[{i}]"),
                format!(
                    "unknown condition {name:?}: use connect-failure, reset, timeout, 502, 503 or 504"
                ),
            ),
        }
    }
    if raw.budget > 100 {
        issues.push(format!("{path}.budget"), "must be 0-100 (percent)");
    }
    if raw.min_retries > 1000 {
        issues.push(format!("{path}.min_retries"), "must be at most 1000");
    }
    Some(RetryConfig {
        attempts: attempts?,
        on,
        budget_percent: raw.budget.min(100),
        min_retries: raw.min_retries,
    })
}

fn validate_timeouts(raw: &RawTimeouts, path: &str, issues: &mut Issues) -> RouteTimeouts {
    for (key, value) in [
        ("request", raw.request),
        ("backend_request", raw.backend_request),
    ] {
        if value == Some(Duration::ZERO) {
            issues.push(format!("{path}.{key}"), "must be > 0");
        }
    }
    if let (Some(request), Some(backend)) = (raw.request, raw.backend_request)
        && backend > request
    {
        issues.push(
            format!("{path}.backend_request"),
            "must not be longer than timeouts.request",
        );
    }
    RouteTimeouts {
        request: raw.request,
        backend_request: raw.backend_request,
    }
}

fn validate_mirror(
    raw: &RawMirror,
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Option<MirrorConfig> {
    let target = service(&raw.service, format!("{path}.service"), issues);
    let per_million = per_million(raw.percent);
    if per_million.is_none() {
        issues.push(format!("{path}.percent"), "must be 0-100");
    }
    let max_in_flight = NonZeroU32::new(raw.max_in_flight);
    if max_in_flight.is_none() {
        issues.push(format!("{path}.max_in_flight"), "must be > 0");
    }
    if raw.max_body_bytes > MAX_MIRROR_BODY {
        issues.push(
            format!("{path}.max_body_bytes"),
            "must be at most 16777216 (each copy is held in memory)",
        );
    }
    Some(MirrorConfig {
        service: target?,
        per_million: per_million?,
        max_in_flight: max_in_flight?,
        max_body_bytes: raw.max_body_bytes.min(MAX_MIRROR_BODY),
    })
}

/// A percentage (0-100) in parts per million.
pub fn per_million(percent: f64) -> Option<u32> {
    // Written so that NaN fails too.
    if !(0.0..=100.0).contains(&percent) {
        return None;
    }
    // In range, so the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((percent * 10_000.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};

    fn issues(routes: &str) -> Vec<String> {
        let text = format!(
            "[[services]]\nname = \"a\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9\"\n\
             [[routes]]\nservice = \"a\"\n[[routes]]\nhost = \"b.test\"\nservice = \"a\"\n{routes}"
        );
        match Config::parse(&text, "t") {
            Err(ConfigError::Invalid { issues, .. }) => {
                issues.iter().map(ToString::to_string).collect()
            }
            other => panic!("expected issues, got {other:?}"),
        }
    }

    #[test]
    fn check_names_each_bad_policy_value_with_its_path() {
        let found = issues(
            "[[routes]]\nhost = \"c.test\"\nservice = \"a\"\n\
             [routes.retry]\nattempts = 11\non = [\"503\", \"5xx\"]\nbudget = 101\n\
             [routes.timeouts]\nrequest = \"0s\"\n\
             [routes.mirror]\nservice = \"nope\"\npercent = 120.0\nmax_in_flight = 0\n",
        );
        for want in [
            "routes[2].retry.attempts: must be 1-10",
            "routes[2].retry.on[1]: unknown condition \"5xx\"",
            "routes[2].retry.budget: must be 0-100",
            "routes[2].timeouts.request: must be > 0",
            "routes[2].mirror.service: no service named \"nope\"",
            "routes[2].mirror.percent: must be 0-100",
            "routes[2].mirror.max_in_flight: must be > 0",
        ] {
            assert!(
                found.iter().any(|i| i.contains(want)),
                "{want} not in {found:?}"
            );
        }
    }

    #[test]
    fn a_valid_policy_is_carried_on_the_route() {
        let text = "[[services]]\nname = \"a\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9\"\n\
             [[routes]]\nservice = \"a\"\n[routes.retry]\non = [\"reset\"]\n\
             [routes.timeouts]\nbackend_request = \"2s\"\n[routes.mirror]\nservice = \"a\"\npercent = 5\n";
        let config = Config::parse(text, "t").unwrap_or_else(|e| panic!("{e}"));
        let policy = &config.http.routes[0].upstream;
        let retry = policy
            .retry
            .as_ref()
            .map(|r| (r.attempts.get(), r.on, r.budget_percent));
        assert_eq!(
            retry,
            Some((3, RetryOn::default().with(Condition::Reset), 20))
        );
        assert_eq!(
            policy.timeouts.backend_request,
            Some(Duration::from_secs(2))
        );
        assert_eq!(policy.mirror.as_ref().map(|m| m.per_million), Some(50_000));
    }

    #[test]
    fn condition_names_parse_and_unknown_ones_do_not() {
        assert_eq!(
            Condition::parse("connect-failure"),
            Some(Condition::ConnectFailure)
        );
        assert_eq!(Condition::parse("503"), Some(Condition::Status503));
        assert_eq!(Condition::parse("5xx"), None);
        assert_eq!(Condition::parse("Reset"), None);
    }

    #[test]
    fn retry_on_holds_exactly_its_conditions() {
        let on = RetryOn::default()
            .with(Condition::Reset)
            .with(Condition::Status503);
        assert!(on.has(Condition::Reset));
        assert!(!on.has(Condition::Timeout));
        assert!(on.status(503));
        assert!(!on.status(502));
        assert!(!on.status(500));
    }

    #[test]
    fn percent_becomes_parts_per_million() {
        assert_eq!(per_million(100.0), Some(1_000_000));
        assert_eq!(per_million(0.5), Some(5_000));
        assert_eq!(per_million(0.0), Some(0));
        assert_eq!(per_million(100.1), None);
        assert_eq!(per_million(f64::NAN), None);
    }
}

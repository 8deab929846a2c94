//! A route's limits per client address: a token bucket (requests per second or minute, and a
//! burst) and a cap on the client's requests in flight, with an allow-list of networks that
//! skips both. Over either limit a request is refused here (429) and counted in
//! `switchyard_http_limited_total{route,reason}`.
//!
//! The client is the connection's peer (after a PROXY protocol header), never an
//! `X-Forwarded-For` value, which a client writes itself.
//!
//! The state lives in a [`ClientTable`] (bounded, see [`super::table`]) shared by every
//! route with the same name and the same limits (so all paths of one Ingress share a client's
//! bucket, as ingress-nginx's zone per Ingress does), and carried into the next route table
//! by that identity ([`Carried`]): a reload that leaves a route's limits alone keeps its
//! clients' buckets; one that changes them starts afresh.

use super::table::{Bucket, ClientTable, Place, Refused};
use metrics::Counter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A route's limits, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LimitConfig {
    /// The token bucket per client; `None`: no rate limit.
    pub rate: Option<Bucket>,
    /// Requests of one client in flight at once; `None`: no cap.
    pub max_connections: Option<u32>,
    /// Client networks that skip both limits.
    pub allow: Vec<ipnet::IpNet>,
}

impl LimitConfig {
    /// Whether there is anything to limit.
    pub fn limits(&self) -> bool {
        self.rate.is_some() || self.max_connections.is_some()
    }
}

/// A refused request: why, and for the rate, in how many whole seconds to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// Over the rate; retry after this many seconds (rounded up, at least 1).
    Rate {
        /// `Retry-After`, seconds.
        retry_after: u64,
    },
    /// Too many requests in flight.
    Connections,
}

/// The limits of one route, with their clients' state.
#[derive(Debug)]
pub struct RouteLimits {
    config: LimitConfig,
    table: Arc<ClientTable>,
    epoch: Instant,
    route: Arc<str>,
    /// `reason="rate"` and `reason="connections"`, registered on the first refusal.
    refused: OnceLock<[Counter; 2]>,
}

/// A request counted in flight: dropping it ends the count.
#[derive(Debug)]
pub struct Held {
    table: Arc<ClientTable>,
    place: Place,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.table.release(self.place);
    }
}

impl RouteLimits {
    /// The limits as configured.
    pub fn config(&self) -> &LimitConfig {
        &self.config
    }

    /// Admits a request from `client`, or says why not. `rate` false skips the bucket (the
    /// request took its token already, on the way that handed it over). The [`Held`] keeps
    /// the request counted in flight until dropped.
    pub fn admit(&self, client: IpAddr, rate: bool) -> Result<Option<Held>, Limited> {
        let client = client.to_canonical();
        if self.config.allow.iter().any(|n| n.contains(&client)) {
            return Ok(None);
        }
        let place = self.table.place(client);
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let bucket = self.config.rate.filter(|_| rate);
        match self
            .table
            .admit(place, now, bucket, self.config.max_connections)
        {
            Ok(()) => Ok(self.config.max_connections.map(|_| Held {
                table: Arc::clone(&self.table),
                place,
            })),
            Err(Refused::Rate { wait_ns }) => {
                self.count(0);
                Err(Limited::Rate {
                    retry_after: wait_ns.div_ceil(1_000_000_000).max(1),
                })
            }
            Err(Refused::Connections) => {
                self.count(1);
                Err(Limited::Connections)
            }
        }
    }

    fn count(&self, reason: usize) {
        let counters = self.refused.get_or_init(|| {
            ["rate", "connections"].map(|r| crate::telemetry::metrics::http_limited(&self.route, r))
        });
        counters[reason].increment(1);
    }
}

/// The client tables of one route table by route identity (name and limits), for the next
/// route table to take over.
#[derive(Debug, Default)]
pub struct Carried(HashMap<(Arc<str>, LimitConfig), (Arc<ClientTable>, Instant)>);

impl Carried {
    /// The limits of the route `name`: the table this one or `previous` has for the same
    /// name and limits, else a new one. `None` when `config` limits nothing.
    pub fn limits(
        &mut self,
        name: &Arc<str>,
        config: &LimitConfig,
        previous: Option<&Carried>,
    ) -> Option<RouteLimits> {
        if !config.limits() {
            return None;
        }
        let key = (Arc::clone(name), config.clone());
        let (table, epoch) = match self.0.get(&key) {
            Some(found) => found.clone(),
            None => {
                let found = previous.and_then(|p| p.0.get(&key)).cloned();
                let made = found.unwrap_or_else(|| (Arc::default(), Instant::now()));
                self.0.insert(key, made.clone());
                made
            }
        };
        Some(RouteLimits {
            config: config.clone(),
            table,
            epoch,
            route: Arc::clone(name),
            refused: OnceLock::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rps: u64, burst: u32) -> LimitConfig {
        LimitConfig {
            rate: Some(Bucket {
                interval_ns: 1_000_000_000 / rps,
                burst,
            }),
            ..LimitConfig::default()
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let mut carried = Carried::default();
        let name: Arc<str> = Arc::from("r");
        let limits = carried.limits(&name, &config(10, 5), None).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..5 {
            assert!(limits.admit(ip, true).is_ok());
        }
        assert_eq!(
            limits.admit(ip, true).unwrap_err(),
            Limited::Rate { retry_after: 1 }
        );
        assert!(limits.admit(ip, false).is_ok(), "no token asked");
    }

    #[test]
    fn allowed_networks_skip_every_limit() {
        let mut carried = Carried::default();
        let mut c = config(1, 1);
        c.max_connections = Some(1);
        c.allow = vec!["10.0.0.0/8".parse().unwrap()];
        let limits = carried.limits(&Arc::from("r"), &c, None).unwrap();
        let inside: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..100)
            .map(|_| limits.admit(inside, true).unwrap())
            .collect();
        assert!(held.iter().all(Option::is_none));
        let outside: IpAddr = "11.0.0.1".parse().unwrap();
        let _first = limits.admit(outside, true).unwrap();
        assert!(limits.admit(outside, true).is_err());
    }

    #[test]
    fn a_held_request_is_released_when_dropped() {
        let mut carried = Carried::default();
        let c = LimitConfig {
            max_connections: Some(1),
            ..LimitConfig::default()
        };
        let limits = carried.limits(&Arc::from("r"), &c, None).unwrap();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let held = limits.admit(ip, true).unwrap();
        assert_eq!(limits.admit(ip, true).unwrap_err(), Limited::Connections);
        drop(held);
        assert!(limits.admit(ip, true).unwrap().is_some());
    }

    #[test]
    fn a_reload_keeps_the_state_of_unchanged_limits_only() {
        let mut before = Carried::default();
        let name: Arc<str> = Arc::from("r");
        let old = before.limits(&name, &config(1, 1), None).unwrap();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        old.admit(ip, true).unwrap();
        let mut after = Carried::default();
        let same = after.limits(&name, &config(1, 1), Some(&before)).unwrap();
        assert!(same.admit(ip, true).is_err(), "the bucket was kept");
        let changed = after.limits(&name, &config(1, 2), Some(&before)).unwrap();
        assert!(changed.admit(ip, true).is_ok(), "new limits, new buckets");
        let renamed = after
            .limits(&Arc::from("s"), &config(1, 1), Some(&before))
            .unwrap();
        assert!(renamed.admit(ip, true).is_ok());
        assert!(after.limits(&name, &LimitConfig::default(), None).is_none());
    }
}

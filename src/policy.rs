//! Route policy that decides, before a request is sent, whether it is sent at all: limits
//! per client address ([`limit`], over a bounded [`table`]) and CORS ([`cors`]).
//!
//! Each route with a policy gets one [`RoutePolicy`], built with the route table and shared
//! by its snapshot; the request path asks it once, in routing
//! (`router::http::policy::check`), and carries what it admitted ([`Admitted`]: the count of
//! the request in flight, the CORS fields of its response) until the response is over. The
//! types here know nothing of the router, so the file config, the Ingress annotations and
//! the tests build them the same way.

pub mod cors;
pub mod limit;
pub mod table;

use std::sync::Arc;

/// A route's policy: its limits and its CORS, each optional.
#[derive(Debug)]
pub struct RoutePolicy {
    /// Limits per client address.
    pub limits: Option<limit::RouteLimits>,
    /// CORS.
    pub cors: Option<Arc<cors::Cors>>,
}

/// Two policies are equal when they are configured the same (their state aside).
impl PartialEq for RoutePolicy {
    fn eq(&self, other: &Self) -> bool {
        self.limits.as_ref().map(limit::RouteLimits::config)
            == other.limits.as_ref().map(limit::RouteLimits::config)
            && self.cors.as_ref().map(|c| c.config()) == other.cors.as_ref().map(|c| c.config())
    }
}

impl Eq for RoutePolicy {}

impl RoutePolicy {
    /// The policy of the route `name` with these settings; `None` when it has none. Limits
    /// take over the state `previous` (the route table before) has for the same name and
    /// limits (see [`limit::Carried`]).
    pub fn build(
        name: &Arc<str>,
        limits: &limit::LimitConfig,
        cors: Option<&cors::CorsConfig>,
        carried: &mut limit::Carried,
        previous: Option<&limit::Carried>,
    ) -> Option<Arc<RoutePolicy>> {
        let limits = carried.limits(name, limits, previous);
        let cors = cors.map(|c| Arc::new(cors::Cors::new(c.clone())));
        (limits.is_some() || cors.is_some()).then(|| Arc::new(RoutePolicy { limits, cors }))
    }
}

/// What a request admitted by its route's policy carries until its response is over.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The request, counted in flight for its client (released when dropped).
    pub held: Option<limit::Held>,
    /// The CORS fields its response gets.
    pub cors: Option<cors::CorsReply>,
}

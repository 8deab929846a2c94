//! A route's policy applied to one request, in routing ([`super::route`]), for every way a
//! request arrives: a CORS preflight from an allowed origin is answered here (204), and a
//! client over the route's limits gets 429; otherwise what was admitted ([`Admitted`]: the
//! request's count in flight, its CORS fields) goes on in the request's [`LogInfo`], which
//! both paths keep until the response is over.
//!
//! The order follows ingress-nginx, where a preflight is answered in nginx's rewrite phase,
//! before `limit_req` and `limit_conn` run: preflights are never limited.
//!
//! [`Admitted`]: crate::policy::Admitted

use super::conn::Conn;
use super::reply::Local;
use super::route::{Asked, LogInfo};
use crate::ingress::RouteTarget;
use crate::policy::limit::Limited;
use http::{HeaderMap, HeaderValue, StatusCode, header::RETRY_AFTER};

/// Applies `target`'s policy to the request, or says what to answer instead.
pub(super) fn check(
    target: &RouteTarget,
    conn: &Conn,
    asked: &Asked<'_>,
    log: &mut LogInfo,
) -> Result<(), Local> {
    let Some(policy) = &target.policy else {
        return Ok(());
    };
    if let Some(cors) = &policy.cors {
        let (preflight, reply) = cors.reply(asked.method, &asked.cors.read());
        if preflight {
            let mut fields = HeaderMap::new();
            reply.preflight(&mut fields);
            return Err(Local {
                fields: Some(Box::new(fields)),
                ..Local::new(StatusCode::NO_CONTENT, "")
            });
        }
        log.policy.get_or_insert_default().cors = Some(reply);
    }
    if let Some(limits) = &policy.limits {
        match limits.admit(conn.client.ip(), !asked.handed_over) {
            Ok(held) => log.policy.get_or_insert_default().held = held,
            Err(limited) => return Err(too_many(limited, log)),
        }
    }
    Ok(())
}

/// The 429 for a refused request: `Retry-After` for the rate, and the CORS fields an allowed
/// origin gets, so that a script sees the 429 rather than a CORS failure.
fn too_many(limited: Limited, log: &LogInfo) -> Local {
    let mut fields = HeaderMap::new();
    if let Limited::Rate { retry_after } = limited {
        fields.insert(RETRY_AFTER, HeaderValue::from(retry_after));
    }
    if let Some(cors) = log.policy.as_ref().and_then(|p| p.cors.as_ref()) {
        cors.response(&mut fields);
    }
    Local {
        fields: Some(Box::new(fields)),
        ..Local::new(StatusCode::TOO_MANY_REQUESTS, "too many requests\n")
    }
}

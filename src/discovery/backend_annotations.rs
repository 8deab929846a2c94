//! The ingress-nginx annotations that choose a route's backends: `upstream-hash-by` (route
//! `hash_on`), `default-backend` (route `fallback_service`) and `canary` with `canary-weight`
//! and `canary-weight-total` (a weighted split, applied by [`super::canary`]).
//!
//! `upstream-hash-by` takes one nginx variable, never an expression: `$request_uri` and `$uri`
//! hash the normalised path (nginx's `$request_uri` also holds the query; ours does not),
//! `$remote_addr` and `$binary_remote_addr` the client address, `$http_NAME` a header
//! (underscores read as dashes, as nginx names them), `$cookie_NAME` a cookie; anything else
//! is reported unsupported. As in ingress-nginx, it also makes the Service's scheduler
//! consistent hashing (`mh`) unless `load-balance` names one.
//!
//! `default-backend` names a Service of the Ingress's namespace; its first port is used.

use super::report::ObjectReport;
use super::state::Store;
use super::translate::service_name;
use crate::ingress::{BackendPolicy, HashOn};
use k8s_openapi::api::core::v1::Service;
use std::sync::Arc;

/// What one Ingress's backend annotations ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct BackendNotes {
    /// `upstream-hash-by`.
    pub(super) hash_on: Option<HashOn>,
    /// `default-backend`: a Service name in the Ingress's namespace.
    pub(super) default_backend: Option<String>,
    /// `canary: "true"`.
    pub(super) canary: bool,
    /// `canary-weight` (0 when absent, as ingress-nginx).
    pub(super) canary_weight: u32,
    /// `canary-weight-total` (default 100).
    pub(super) canary_weight_total: Option<u32>,
    /// `canary-by-header` (+ `-value`, `-pattern`) and `canary-by-cookie`.
    pub(super) canary_by: super::canary_by::CanaryBy,
}

impl BackendNotes {
    /// Reads one annotation (`name` without the prefix); `None` when its value is not
    /// understood (the caller reports it).
    pub(super) fn set(&mut self, name: &str, value: &str) -> Option<()> {
        match name {
            "upstream-hash-by" => self.hash_on = Some(hash_by(value)?),
            "default-backend" => self.default_backend = Some(service_ref(value)?),
            "canary" => self.canary = super::annotations::bool_value(value)?,
            "canary-weight" => self.canary_weight = value.parse().ok()?,
            "canary-weight-total" => {
                self.canary_weight_total = Some(value.parse().ok().filter(|&t| t > 0)?);
            }
            by if by.starts_with("canary-by-") => self.canary_by.set(by, value)?,
            _ => return None,
        }
        Some(())
    }

    /// The canary's share as (canary weight, total), the weight capped at the total.
    pub(super) fn canary_share(&self) -> (u32, u32) {
        let total = self.canary_weight_total.unwrap_or(100);
        (self.canary_weight.min(total), total)
    }

    /// The route policy of a main Ingress in `namespace`: its hash key and its fallback
    /// Service (reported and left out when that Service cannot be used).
    pub(super) fn policy(
        &self,
        namespace: &str,
        services: &Store<Service>,
        rep: &mut ObjectReport<'_>,
    ) -> BackendPolicy {
        let fallback_service = self.default_backend.as_deref().and_then(|name| {
            first_port(namespace, name, services)
                .map_err(|(reason, detail)| rep.skip(reason, &format!("default-backend: {detail}")))
                .ok()
        });
        BackendPolicy {
            split: Vec::new(),
            hash_on: self.hash_on.clone(),
            fallback_service,
        }
    }
}

/// The route key an nginx variable names.
fn hash_by(value: &str) -> Option<HashOn> {
    match value {
        "$request_uri" | "$uri" => Some(HashOn::Path),
        "$remote_addr" | "$binary_remote_addr" => Some(HashOn::ClientIp),
        _ => {
            let text = if let Some(name) = value.strip_prefix("$http_") {
                format!("header:{}", name.replace('_', "-"))
            } else {
                format!("cookie:{}", value.strip_prefix("$cookie_")?)
            };
            HashOn::parse(&text).ok()
        }
    }
}

/// A Service name (a DNS label).
fn service_ref(value: &str) -> Option<String> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    ok.then(|| value.to_owned())
}

/// The Switchyard service of the first port of Service `namespace/name`.
fn first_port(
    namespace: &str,
    name: &str,
    services: &Store<Service>,
) -> Result<Arc<str>, (&'static str, String)> {
    let Some(svc) = services.get(&(namespace.to_owned(), name.to_owned())) else {
        return Err((
            "missing_service",
            format!("service {namespace}/{name} not found"),
        ));
    };
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Err((
            "external_name",
            format!("service {namespace}/{name} is ExternalName"),
        ));
    }
    let port = spec.and_then(|s| s.ports.as_ref()?.first());
    let Some(port) = port else {
        return Err((
            "missing_port",
            format!("service {namespace}/{name} has no port"),
        ));
    };
    service_name(namespace, name, port)
        .ok_or_else(|| ("invalid_name", format!("service {namespace}/{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_hash_variables_map_onto_route_keys() {
        assert_eq!(hash_by("$request_uri"), Some(HashOn::Path));
        assert_eq!(hash_by("$binary_remote_addr"), Some(HashOn::ClientIp));
        assert_eq!(
            hash_by("$http_x_user"),
            Some(HashOn::Header("x-user".into()))
        );
        assert_eq!(
            hash_by("$cookie_session"),
            Some(HashOn::Cookie("session".into()))
        );
        for unsupported in [
            "$host",
            "$request_uri$host",
            "$http_",
            "x-user",
            "${cookie_a}",
        ] {
            assert_eq!(hash_by(unsupported), None, "{unsupported}");
        }
    }

    #[test]
    fn canary_weights_default_and_are_capped_at_the_total() {
        let mut n = BackendNotes::default();
        assert_eq!(n.set("canary", "true"), Some(()));
        assert_eq!(n.canary_share(), (0, 100));
        n.set("canary-weight", "30");
        assert_eq!(n.canary_share(), (30, 100));
        n.set("canary-weight-total", "20");
        assert_eq!(n.canary_share(), (20, 20));
        assert_eq!(n.set("canary-weight-total", "0"), None);
        assert_eq!(n.set("canary-weight", "-1"), None);
        assert_eq!(n.set("default-backend", "Not_A_Name"), None);
    }
}

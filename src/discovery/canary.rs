//! Canary Ingresses (ingress-nginx's `canary: "true"` with `canary-weight`): a canary serves
//! no rules of its own; each of its host + path rules adds its Service to the main Ingress's
//! route for the same host and path, as a weighted split: the canary gets `canary-weight` out
//! of `canary-weight-total` (default 100), the main Service the rest.
//!
//! Canaries are applied after every main Ingress is translated, so their age does not matter.
//! As in ingress-nginx, one canary per route: a second one for the same host and path is
//! skipped (`conflicting_canary`), and a canary rule with no main route for its host and path
//! is skipped with a warning (`canary_without_main`). The canary's other annotations are not
//! read (ingress-nginx merges only its canary settings into the main backend).
//!
//! `canary-by-header` and `canary-by-cookie` add routes beside the split, for the same host
//! and path, whose header conditions decide before the weights ([`super::canary_by`]); they
//! are copies of the main route (its filters, limits and policies), with one service.

use super::backend_annotations::BackendNotes;
use super::report::{ObjectReport, Reporter};
use super::state::{Key, Store};
use crate::config::RouteConfig;
use crate::ingress::{HostPattern, Role, WeightedService};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use std::sync::Arc;

/// One host + path rule of a canary Ingress.
#[derive(Debug)]
pub(super) struct CanaryRule {
    /// The rule's host (`None`: any host).
    host: Option<HostPattern>,
    /// The rule's path.
    path: String,
    /// The canary's service.
    service: Arc<str>,
    /// The canary's weight and the total it is out of.
    share: (u32, u32),
    /// Its header and cookie rules.
    by: super::canary_by::CanaryBy,
    /// The canary Ingress and its resourceVersion, for reports.
    origin: (Key, String),
}

/// The rules of canary Ingress `ing` (`key`, with `notes`), whose backends resolve.
pub(super) fn rules(
    ing: &Ingress,
    key: &Key,
    notes: &BackendNotes,
    services: &Store<Service>,
    rep: &mut ObjectReport<'_>,
) -> Vec<CanaryRule> {
    let rv = ing.metadata.resource_version.clone().unwrap_or_default();
    let mut out = Vec::new();
    for rule in ing.spec.iter().flat_map(|s| s.rules.iter().flatten()) {
        let Ok(host) = super::ingress::rule_host(rule.host.as_deref(), rep) else {
            continue;
        };
        for p in rule.http.iter().flat_map(|h| &h.paths) {
            match super::ingress::backend(&key.0, &p.backend, services) {
                Ok(service) => out.push(CanaryRule {
                    host: host.clone(),
                    path: p.path.clone().unwrap_or_else(|| "/".to_owned()),
                    service,
                    share: notes.canary_share(),
                    by: notes.canary_by.clone(),
                    origin: (key.clone(), rv.clone()),
                }),
                Err((reason, detail)) => rep.skip(reason, &detail),
            }
        }
    }
    out
}

/// Adds each canary rule to the main route of its host and path.
pub(super) fn apply(
    routes: &mut Vec<RouteConfig>,
    canaries: Vec<CanaryRule>,
    report: &mut Reporter,
) {
    for canary in canaries {
        let (key, rv) = &canary.origin;
        let mut rep = report.for_object("Ingress", key, rv);
        let at = format!(
            "{}{}",
            canary
                .host
                .as_ref()
                .map_or("*".to_owned(), |h| h.to_string()),
            canary.path
        );
        let Some(route) = routes
            .iter_mut()
            .find(|r| r.host == canary.host && r.path == canary.path && r.conditions.is_empty())
        else {
            rep.skip(
                "canary_without_main",
                &format!("canary for {at}: no main Ingress"),
            );
            continue;
        };
        if route.backends.split.iter().any(|b| b.role == Role::Canary) {
            rep.skip("conflicting_canary", &format!("{at} already has a canary"));
            continue;
        }
        let (weight, total) = canary.share;
        route.backends.split = vec![
            WeightedService {
                service: Arc::clone(&route.service),
                weight: total - weight,
                role: Role::Primary,
            },
            WeightedService {
                service: Arc::clone(&canary.service),
                weight,
                role: Role::Canary,
            },
        ];
        let main = route.clone();
        for (conditions, to_canary) in canary.by.routes() {
            let mut by = main.clone();
            by.conditions = conditions;
            by.backends.split = Vec::new();
            if to_canary {
                by.service = Arc::clone(&canary.service);
            }
            routes.push(by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::PathType;

    fn route(host: &str, path: &str, service: &str) -> RouteConfig {
        RouteConfig {
            host: Some(HostPattern::parse(host).unwrap()),
            path: path.into(),
            path_type: PathType::Prefix,
            service: service.into(),
            name: "ns/main".into(),
            ..RouteConfig::default()
        }
    }

    fn canary(host: &str, path: &str, service: &str, share: (u32, u32)) -> CanaryRule {
        CanaryRule {
            host: Some(HostPattern::parse(host).unwrap()),
            path: path.into(),
            service: service.into(),
            share,
            by: Default::default(),
            origin: (("ns".into(), format!("canary-{service}")), "1".into()),
        }
    }

    #[test]
    fn a_canary_splits_its_main_route_once_and_only_for_its_host_and_path() {
        let mut routes = vec![
            route("a.test", "/", "ns/web:http"),
            route("a.test", "/api", "ns/api:http"),
        ];
        let canaries = vec![
            canary("a.test", "/", "ns/new:http", (30, 200)),
            canary("a.test", "/", "ns/newer:http", (50, 100)),
            canary("b.test", "/", "ns/new:http", (50, 100)),
        ];
        apply(&mut routes, canaries, &mut Reporter::default());
        let split: Vec<(&str, u32, Role)> = routes[0]
            .backends
            .split
            .iter()
            .map(|b| (&*b.service, b.weight, b.role))
            .collect();
        assert_eq!(
            split,
            [
                ("ns/web:http", 170, Role::Primary),
                ("ns/new:http", 30, Role::Canary)
            ],
            "the second canary for the route is skipped"
        );
        assert!(
            routes[1].backends.split.is_empty(),
            "another path is untouched"
        );
    }
}

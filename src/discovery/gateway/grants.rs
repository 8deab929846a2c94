//! ReferenceGrant checks: may an object in one namespace refer to one in another?
//!
//! The Gateway API's rule: a reference within one namespace is always allowed; across
//! namespaces only when a ReferenceGrant **in the referred-to namespace** lists the referring
//! group, kind and namespace in `from` and the referred-to group, kind (and name, when given)
//! in `to`. Nothing cross-namespace is allowed without one. A pure function with table tests
//! (facts from the conformance scenarios HTTPRouteReferenceGrant,
//! HTTPRouteInvalidReferenceGrant, HTTPRouteInvalidCrossNamespaceBackendRef and
//! GatewaySecretReferenceGrantSpecific / AllInNamespace), used by the route and certificate
//! translation.

use super::types::ReferenceGrant;

/// One end of a reference: group (empty: core), kind, namespace, name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End<'a> {
    /// The API group; empty is the core group.
    pub group: &'a str,
    /// The kind.
    pub kind: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The name (only read on the referred-to end).
    pub name: &'a str,
}

/// Whether `from` may refer to `to`, given every ReferenceGrant known.
pub fn permits<'g>(
    grants: impl IntoIterator<Item = &'g ReferenceGrant>,
    from: End<'_>,
    to: End<'_>,
) -> bool {
    if from.namespace == to.namespace {
        return true;
    }
    grants.into_iter().any(|g| {
        g.metadata.namespace.as_deref() == Some(to.namespace)
            && g.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            })
            && g.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name.as_deref().is_none_or(|n| n == to.name)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GW: &str = "gateway.networking.k8s.io";

    fn grant(
        ns: &str,
        from_kind: &str,
        from_ns: &str,
        to_kind: &str,
        name: Option<&str>,
    ) -> ReferenceGrant {
        let mut to = json!({"group": "", "kind": to_kind});
        if let Some(n) = name {
            to["name"] = json!(n);
        }
        serde_json::from_value(json!({
            "metadata": {"name": "g", "namespace": ns},
            "spec": {"from": [{"group": GW, "kind": from_kind, "namespace": from_ns}], "to": [to]},
        }))
        .unwrap_or_else(|e| panic!("grant: {e}"))
    }

    fn route(ns: &str) -> End<'_> {
        End {
            group: GW,
            kind: "HTTPRoute",
            namespace: ns,
            name: "r",
        }
    }

    fn service<'a>(ns: &'a str, name: &'a str) -> End<'a> {
        End {
            group: "",
            kind: "Service",
            namespace: ns,
            name,
        }
    }

    #[test]
    fn the_same_namespace_needs_no_grant() {
        assert!(permits([], route("infra"), service("infra", "web")));
    }

    /// HTTPRouteInvalidCrossNamespaceBackendRef: no grant, no reference.
    #[test]
    fn cross_namespace_without_a_grant_is_refused() {
        assert!(!permits(
            [],
            route("infra"),
            service("backend-ns", "web-backend")
        ));
    }

    /// HTTPRouteReferenceGrant and HTTPRouteInvalidReferenceGrant.
    #[test]
    fn a_grant_in_the_target_namespace_for_that_name() {
        let g = grant(
            "backend-ns",
            "HTTPRoute",
            "infra",
            "Service",
            Some("web-backend"),
        );
        assert!(permits(
            [&g],
            route("infra"),
            service("backend-ns", "web-backend")
        ));
        assert!(!permits(
            [&g],
            route("infra"),
            service("backend-ns", "other")
        ));
        let wrong = grant(
            "backend-ns",
            "HTTPRoute",
            "infra",
            "Service",
            Some("not-web-backend"),
        );
        assert!(!permits(
            [&wrong],
            route("infra"),
            service("backend-ns", "web-backend")
        ));
    }

    /// A grant elsewhere, for another kind or another namespace does not count; one with no
    /// name covers every object of the kind (GatewaySecretReferenceGrantAllInNamespace).
    #[test]
    fn only_a_matching_grant_counts() {
        let elsewhere = grant("infra", "HTTPRoute", "infra", "Service", None);
        assert!(!permits(
            [&elsewhere],
            route("infra"),
            service("backend-ns", "web")
        ));
        let other_kind = grant("backend-ns", "Gateway", "infra", "Service", None);
        assert!(!permits(
            [&other_kind],
            route("infra"),
            service("backend-ns", "web")
        ));
        let other_ns = grant("backend-ns", "HTTPRoute", "apps", "Service", None);
        assert!(!permits(
            [&other_ns],
            route("infra"),
            service("backend-ns", "web")
        ));
        let all = grant("certs", "Gateway", "infra", "Secret", None);
        let gw = End {
            group: GW,
            kind: "Gateway",
            namespace: "infra",
            name: "gw",
        };
        let secret = End {
            group: "",
            kind: "Secret",
            namespace: "certs",
            name: "any",
        };
        assert!(permits([&all], gw, secret));
    }
}

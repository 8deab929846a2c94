//! Where a route came from, for the admin page: the config file, an Ingress, an HTTPRoute or
//! a GRPCRoute.
//!
//! The route `name` (the metric label) cannot say it reliably: a file route may be named
//! anything, `ns/name` included. So the source is a field of its own, `File` by default, set
//! for the cluster's routes where they join the file's ([`crate::discovery::Merger`]), from
//! the origin list the model already keeps beside them.

use serde::Serialize;
use std::sync::Arc;

/// The source of a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "object")]
pub enum RouteSource {
    /// The config file.
    #[default]
    File,
    /// The Ingress `namespace/name`.
    Ingress(Arc<str>),
    /// The HTTPRoute `namespace/name`.
    HTTPRoute(Arc<str>),
    /// The GRPCRoute `namespace/name`.
    GRPCRoute(Arc<str>),
}

impl RouteSource {
    /// The source named by a Kubernetes route origin: `ns/name` (an Ingress),
    /// `httproute:ns/name` or `grpcroute:ns/name`.
    pub fn from_origin(origin: &str) -> RouteSource {
        if let Some(rest) = origin.strip_prefix("httproute:") {
            RouteSource::HTTPRoute(rest.into())
        } else if let Some(rest) = origin.strip_prefix("grpcroute:") {
            RouteSource::GRPCRoute(rest.into())
        } else {
            RouteSource::Ingress(origin.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_their_kind_and_object() {
        assert_eq!(
            RouteSource::from_origin("shop/web"),
            RouteSource::Ingress("shop/web".into())
        );
        assert_eq!(
            RouteSource::from_origin("grpcroute:a/b"),
            RouteSource::GRPCRoute("a/b".into())
        );
        let json = serde_json::to_string(&RouteSource::from_origin("httproute:a/b")).unwrap();
        assert_eq!(json, r#"{"kind":"HTTPRoute","object":"a/b"}"#);
        assert_eq!(
            serde_json::to_string(&RouteSource::File).unwrap(),
            r#"{"kind":"File"}"#
        );
    }
}

//! Writes Gateway API status: one JSON merge patch of the `/status` subresource per object
//! whose status differs from what we would write (computed by the model task, see
//! [`super::GatewayState::status_patches`]). A merge patch sets only the fields we own; the
//! write comes back as a watch event, after which the object no longer differs, so writes stop
//! by themselves. A batch is written only once the parts computed with it are applied, so a
//! route reads `Accepted` when it is served (tests can send requests right after). A failed write is logged and counted (`switchyard_kube_status_writes_total`)
//! and retried when the object next changes.

use super::route_types::HttpRoute;
use super::types::{Gateway, GatewayClass};
use crate::telemetry::metrics;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How long a status batch waits for its parts to be applied before it is written anyway.
const APPLY_WAIT: Duration = Duration::from_secs(5);
use tokio_util::sync::CancellationToken;

/// One status write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StatusPatch {
    /// A GatewayClass's status.
    GatewayClass {
        /// The class.
        name: String,
        /// The merge patch (`{"status": …}`).
        body: Value,
    },
    /// A Gateway's status.
    Gateway {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The merge patch (`{"status": …}`).
        body: Value,
    },
    /// An HTTPRoute's status.
    HttpRoute {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The merge patch (`{"metadata": {"resourceVersion": …}, "status": …}`).
        body: Value,
    },
    /// A GRPCRoute's status (as an HTTPRoute's).
    GrpcRoute {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The merge patch.
        body: Value,
    },
    /// A BackendTLSPolicy's status (`ancestors`).
    BackendTlsPolicy {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The merge patch.
        body: Value,
    },
    /// A TLSRoute's status (as an HTTPRoute's).
    TlsRoute {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// The merge patch.
        body: Value,
    },
}

impl StatusPatch {
    /// The object written: kind, namespace (empty for cluster-scoped), name.
    pub(crate) fn id(&self) -> (&'static str, String, String) {
        match self {
            StatusPatch::GatewayClass { name, .. } => ("GatewayClass", String::new(), name.clone()),
            StatusPatch::Gateway {
                namespace, name, ..
            } => ("Gateway", namespace.clone(), name.clone()),
            StatusPatch::HttpRoute {
                namespace, name, ..
            } => ("HTTPRoute", namespace.clone(), name.clone()),
            StatusPatch::TlsRoute {
                namespace, name, ..
            } => ("TLSRoute", namespace.clone(), name.clone()),
            StatusPatch::GrpcRoute {
                namespace, name, ..
            } => ("GRPCRoute", namespace.clone(), name.clone()),
            StatusPatch::BackendTlsPolicy {
                namespace, name, ..
            } => ("BackendTLSPolicy", namespace.clone(), name.clone()),
        }
    }

    /// What must differ from the last write of the same object for this one to be sent;
    /// `None`: always sent (GatewayClass writes follow its own events only).
    pub(crate) fn fingerprint(&self) -> Option<Value> {
        match self {
            StatusPatch::GatewayClass { .. } => None,
            StatusPatch::Gateway { body, .. } => Some(super::gateway_status::fingerprint(body)),
            StatusPatch::HttpRoute { body, .. }
            | StatusPatch::TlsRoute { body, .. }
            | StatusPatch::GrpcRoute { body, .. } => Some(super::route_status::fingerprint(body)),
            StatusPatch::BackendTlsPolicy { body, .. } => {
                Some(super::tls_policy_status::fingerprint(body))
            }
        }
    }
}

/// The Gateway API status writer task.
pub(crate) struct Writer {
    client: Client,
    /// To the model task: a write failed (so it is computed and sent again).
    failed: mpsc::Sender<crate::discovery::Msg>,
}

impl Writer {
    /// A writer using `client`, telling the model task of failed writes through `failed`.
    pub(crate) fn new(client: Client, failed: mpsc::Sender<crate::discovery::Msg>) -> Writer {
        Writer { client, failed }
    }

    /// Writes each batch it is sent, once the parts it describes (its generation) are
    /// applied, so that a status never promises what the data plane does not serve yet (or
    /// after [`APPLY_WAIT`], if they never are: a failed apply is logged where it happens).
    /// Until `stop`.
    pub(crate) async fn run(
        self,
        mut rx: mpsc::UnboundedReceiver<(u64, Vec<StatusPatch>)>,
        mut applied: watch::Receiver<u64>,
        stop: CancellationToken,
    ) {
        loop {
            let (generation, batch) = tokio::select! {
                () = stop.cancelled() => return,
                b = rx.recv() => match b { Some(b) => b, None => return },
            };
            let served = applied.wait_for(|&g| g >= generation);
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tokio::time::timeout(APPLY_WAIT, served) => {}
            }
            for patch in batch {
                self.write(patch).await;
            }
        }
    }

    async fn write(&self, patch: StatusPatch) {
        let params = PatchParams::default();
        let id = patch.id();
        let (kind, name, result) = match patch {
            StatusPatch::GatewayClass { name, body } => {
                let api: Api<GatewayClass> = Api::all(self.client.clone());
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                ("GatewayClass", name, r.map(drop))
            }
            StatusPatch::Gateway {
                namespace,
                name,
                body,
            } => {
                let api: Api<Gateway> = Api::namespaced(self.client.clone(), &namespace);
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                ("Gateway", format!("{namespace}/{name}"), r.map(drop))
            }
            StatusPatch::HttpRoute {
                namespace,
                name,
                body,
            } => {
                let api: Api<HttpRoute> = Api::namespaced(self.client.clone(), &namespace);
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                ("HTTPRoute", format!("{namespace}/{name}"), r.map(drop))
            }
            StatusPatch::TlsRoute {
                namespace,
                name,
                body,
            } => {
                let api: Api<super::tls_route_types::TlsRoute> =
                    Api::namespaced(self.client.clone(), &namespace);
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                ("TLSRoute", format!("{namespace}/{name}"), r.map(drop))
            }
            StatusPatch::GrpcRoute {
                namespace,
                name,
                body,
            } => {
                let api: Api<super::grpc_route_types::GrpcRoute> =
                    Api::namespaced(self.client.clone(), &namespace);
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                ("GRPCRoute", format!("{namespace}/{name}"), r.map(drop))
            }
            StatusPatch::BackendTlsPolicy {
                namespace,
                name,
                body,
            } => {
                let api: Api<super::tls_policy_types::BackendTlsPolicy> =
                    Api::namespaced(self.client.clone(), &namespace);
                let r = api.patch_status(&name, &params, &Patch::Merge(&body)).await;
                (
                    "BackendTLSPolicy",
                    format!("{namespace}/{name}"),
                    r.map(drop),
                )
            }
        };
        match result {
            Ok(()) => {
                metrics::kube_status_write(true);
                tracing::info!(kind, object = %name, "status written");
            }
            Err(error) => {
                metrics::kube_status_write(false);
                tracing::warn!(kind, object = %name, %error, "status not written");
                let msg = super::GatewayMsg::WriteFailed(id);
                let _full = self.failed.try_send(crate::discovery::Msg::Gateway(msg));
            }
        }
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;

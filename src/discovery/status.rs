//! Writes our address into `status.loadBalancer.ingress` of the Ingresses we serve, like
//! ingress-nginx's `--publish-status-address`.
//!
//! The model lists served Ingresses whose status differs from the configured addresses; after
//! each apply the app hands that list here, and each one gets a JSON merge patch of its
//! `status` subresource. The patch comes back as a watch event, after which the Ingress no
//! longer differs, so writes stop by themselves. A failed write is logged and counted
//! (`switchyard_kube_status_writes_total{result}`) and retried at the next apply that still
//! finds the status different. Nothing is cleared on shutdown (a DaemonSet restarts in place).

use crate::telemetry::metrics;
use k8s_openapi::api::networking::v1::{Ingress, IngressLoadBalancerIngress};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One status address: an IP literal goes to `ip`, anything else to `hostname`.
pub(super) fn address(text: &str) -> IngressLoadBalancerIngress {
    let text = text.trim();
    if text.parse::<std::net::IpAddr>().is_ok() {
        IngressLoadBalancerIngress {
            ip: Some(text.to_owned()),
            ..Default::default()
        }
    } else {
        IngressLoadBalancerIngress {
            hostname: Some(text.to_owned()),
            ..Default::default()
        }
    }
}

/// The status writer task.
pub(super) struct Writer {
    client: Client,
    addresses: Vec<IngressLoadBalancerIngress>,
}

impl Writer {
    pub(super) fn new(client: Client, addresses: Vec<IngressLoadBalancerIngress>) -> Writer {
        Writer { client, addresses }
    }

    /// Writes the status of each batch of Ingresses it is sent, until `stop`.
    pub(super) async fn run(
        self,
        mut rx: mpsc::Receiver<Vec<(String, String)>>,
        stop: CancellationToken,
    ) {
        let patch = serde_json::json!({
            "status": { "loadBalancer": { "ingress": self.addresses } }
        });
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                b = rx.recv() => match b { Some(b) => b, None => return },
            };
            for (namespace, name) in batch {
                let api: Api<Ingress> = Api::namespaced(self.client.clone(), &namespace);
                let params = PatchParams::default();
                match api
                    .patch_status(&name, &params, &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => {
                        metrics::kube_status_write(true);
                        tracing::info!(ingress = %format!("{namespace}/{name}"), "ingress status written");
                    }
                    Err(error) => {
                        metrics::kube_status_write(false);
                        tracing::warn!(ingress = %format!("{namespace}/{name}"), %error, "ingress status not written");
                    }
                }
            }
        }
    }
}

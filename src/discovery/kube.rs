//! The client, one watcher task per kind ([`watcher_task`]), and the model task that turns events
//! into parts.

use super::gateway::{StatusPatch, Writer as GatewayWriter};
use super::model::Model;
use super::status;
use super::{KubeParts, Msg};
use crate::telemetry::metrics;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

mod watcher_task;

pub(super) use watcher_task::Watch;

/// How to reach the cluster and what to serve from it (the `run --kubernetes` flags).
#[derive(Debug, Clone, Default)]
pub struct KubeOptions {
    /// A kubeconfig file; `None` infers (`KUBECONFIG`, `~/.kube/config`, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// The IngressClass served.
    pub ingress_class: String,
    /// Only this namespace (Services, EndpointSlices, Ingresses, Secrets); `None` is all.
    pub namespace: Option<String>,
    /// Only Ingresses matching this label selector.
    pub label_selector: Option<String>,
    /// IPs or hostnames written to served Ingresses' `status.loadBalancer`; empty: none.
    pub publish_status_address: Vec<String>,
    /// `namespace/name` of the TLS Secret served for unmatched SNI (`--default-ssl-certificate`);
    /// `None`: the generated default certificate.
    pub default_certificate: Option<String>,
    /// Honour `ssl-passthrough` on Ingresses (`--enable-ssl-passthrough`).
    pub enable_ssl_passthrough: bool,
    /// Also watch and serve the Gateway API kinds (`--gateway-api`).
    pub gateway_api: bool,
    /// The GatewayClass `controllerName` served (`--gateway-class-controller`).
    pub gateway_controller: String,
}

/// Why the source could not start.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// kube's error.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No configuration could be inferred (not in a cluster, no kubeconfig).
    #[error("cannot find a kubernetes config: {0}")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built.
    #[error("cannot build the kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// `--default-ssl-certificate` is not a `namespace/name` this source can watch.
    #[error("--default-ssl-certificate {value:?}: {reason}")]
    DefaultCertificate {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Parts to apply, and when the oldest event they carry arrived.
#[derive(Debug, Clone)]
pub struct Update {
    /// The cluster's parts.
    pub parts: Arc<KubeParts>,
    /// When the first event not yet published was received (for the latency histogram).
    pub since: Option<Instant>,
    /// Counts the parts the model task published (1 for the first).
    pub generation: u64,
}

/// Parts as published, numbered.
type Published = Option<(u64, Arc<KubeParts>)>;

/// A running Kubernetes source. Dropping it stops its tasks.
#[derive(Debug)]
pub struct KubeSource {
    parts: watch::Receiver<Published>,
    /// The generation of the parts last applied (Gateway API status waits for it).
    applied: watch::Sender<u64>,
    pending: Arc<Mutex<Option<Instant>>>,
    status: Option<mpsc::Sender<Vec<(String, String)>>>,
    stop: CancellationToken,
    /// To the model task, for the Gateway listener ports a merge could not open, and what
    /// was last sent (`--gateway-api`).
    pub(super) gateway: Option<(mpsc::Sender<Msg>, Mutex<Refused>)>,
}

/// Gateway listener ports a merge could not open, with the status reason.
pub(super) type Refused = BTreeMap<u16, &'static str>;

impl Drop for KubeSource {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl KubeSource {
    /// Builds the client and starts the watchers. Only a broken config fails here; an API
    /// server that cannot be reached is retried in the background (not ready until it is).
    pub async fn start(options: KubeOptions) -> Result<KubeSource, DiscoveryError> {
        let default_cert = super::edge::default_certificate_key(&options)?;
        let config = match &options.kubeconfig {
            Some(path) => {
                let err = |source| DiscoveryError::Kubeconfig {
                    path: path.clone(),
                    source,
                };
                let file = kube::config::Kubeconfig::read_from(path).map_err(err)?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(err)?
            }
            None => kube::Config::infer().await.map_err(DiscoveryError::Infer)?,
        };
        let client = Client::try_from(config).map_err(DiscoveryError::Client)?;
        let stop = CancellationToken::new();
        let (tx, rx) = mpsc::channel(1024);
        let ns = options.namespace.as_deref();
        let base = watcher::Config::default();
        let w = Watch::new(tx.clone(), stop.clone());
        tokio::spawn(
            w.clone()
                .run(api(&client, ns), base.clone(), "Service", Msg::Service),
        );
        tokio::spawn(
            w.clone()
                .run(api(&client, ns), base.clone(), "EndpointSlice", Msg::Slice),
        );
        let ing_cfg = match &options.label_selector {
            Some(sel) => base.clone().labels(sel),
            None => base.clone(),
        };
        tokio::spawn(
            w.clone()
                .run(api(&client, ns), ing_cfg, "Ingress", Msg::Ingress),
        );
        tokio::spawn(w.clone().run(
            Api::all(client.clone()),
            base.clone(),
            "IngressClass",
            Msg::Class,
        ));
        let secrets = base.clone().fields("type=kubernetes.io/tls");
        tokio::spawn(
            w.clone()
                .run(api(&client, ns), secrets, "Secret", Msg::Secret),
        );
        if options.gateway_api {
            super::gateway::spawn_watchers(&w, &client, ns, &base);
        }
        drop(w);
        let gateway = options
            .gateway_api
            .then(|| (tx.clone(), Mutex::new(BTreeMap::new())));
        drop(tx);
        let addresses: Vec<IngressLoadBalancerIngress> = options
            .publish_status_address
            .iter()
            .map(|a| status::address(a))
            .collect();
        let status = (!addresses.is_empty()).then(|| {
            let (stx, srx) = mpsc::channel(4);
            let writer = status::Writer::new(client.clone(), addresses.clone());
            tokio::spawn(writer.run(srx, stop.clone()));
            stx
        });
        let (parts_tx, parts) = watch::channel(None);
        let pending = Arc::new(Mutex::new(None));
        let mut model = Model::new(options.ingress_class.clone(), addresses)
            .with_edge(default_cert, options.enable_ssl_passthrough);
        if options.gateway_api {
            model = model.with_gateway_api(
                options.gateway_controller.clone(),
                options.publish_status_address.clone(),
            );
        }
        // Unbounded: the model task never waits on a slow API server; at most one batch per
        // coalesced round, each no larger than the objects that changed.
        let (applied, applied_rx) = watch::channel(0);
        let gateway_status = options.gateway_api.then(|| {
            let (stx, srx) = mpsc::unbounded_channel();
            let failed = gateway.as_ref().map(|g| g.0.clone());
            if let Some(failed) = failed {
                let writer = GatewayWriter::new(client.clone(), failed);
                tokio::spawn(writer.run(srx, applied_rx, stop.clone()));
            }
            stx
        });
        tokio::spawn(model_task(
            model,
            rx,
            (parts_tx, gateway_status),
            Arc::clone(&pending),
            stop.clone(),
        ));
        Ok(KubeSource {
            parts,
            applied,
            pending,
            status,
            stop,
            gateway,
        })
    }

    /// Waits for the next parts to apply; `None` once the source stopped.
    pub async fn changed(&mut self) -> Option<Update> {
        loop {
            self.parts.changed().await.ok()?;
            let parts = self.parts.borrow_and_update().clone();
            if let Some((generation, parts)) = parts {
                let since = self
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                return Some(Update {
                    parts,
                    since,
                    generation,
                });
            }
        }
    }

    /// Call after `update` was applied: records the latency, asks for status writes.
    pub fn applied(&self, update: &Update) {
        if let Some(since) = update.since {
            metrics::kube_publish_latency(since.elapsed());
            crate::telemetry::recent::kube_published(since.elapsed());
        }
        self.applied.send_replace(update.generation);
        if let Some(tx) = &self.status
            && !update.parts.status_pending.is_empty()
        {
            // A full queue means a write round is pending; it reads fresh objects anyway.
            let _queued = tx.try_send(update.parts.status_pending.clone());
        }
    }
}

pub(super) fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Where the model task sends its results: parts to the app, Gateway API status writes to
/// their writer (with `--gateway-api`), each batch with the generation of the parts it
/// describes (written once those are applied).
type Outputs = (
    watch::Sender<Published>,
    Option<mpsc::UnboundedSender<(u64, Vec<StatusPatch>)>>,
);

/// The longest a round waits for more events before it builds ([`coalesce`]).
const MAX_SETTLE: Duration = Duration::from_millis(50);

/// Applies events as they come and publishes parts once the queue is drained.
async fn model_task(
    mut model: Model,
    mut rx: mpsc::Receiver<Msg>,
    (tx, gateway_status): Outputs,
    pending: Arc<Mutex<Option<Instant>>>,
    stop: CancellationToken,
) {
    let mut generation = 0;
    let (mut last_build, mut idle_since) = (Duration::ZERO, Instant::now());
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            msg = rx.recv() => match msg { Some(m) => m, None => return },
        };
        // Startup (the first listings) is not an event → publish latency; readiness covers it.
        let since = model.listed().then(Instant::now);
        model.handle(first);
        // An event right behind the last round is part of a burst: wait for the rest of it.
        let settle = last_build.min(MAX_SETTLE);
        let burst = idle_since.elapsed() < settle;
        coalesce(
            &mut model,
            &mut rx,
            if burst { settle } else { Duration::ZERO },
        )
        .await;
        let started = Instant::now();
        let built = model.build();
        last_build = started.elapsed();
        if let Some(parts) = built {
            if let Some(since) = since {
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(since);
            }
            generation += 1;
            tx.send_replace(Some((generation, Arc::new(parts))));
        }
        if let Some(status) = &gateway_status {
            let patches = model.gateway_status();
            if !patches.is_empty() && status.send((generation, patches)).is_err() {
                return;
            }
        }
        idle_since = Instant::now();
    }
}

/// Takes into the round everything already queued, and what arrives within `settle`. Events
/// come one at a time through the watch streams, so a burst (a thousand HTTPRoutes applied
/// at once) would otherwise cost one full build per event, each slower than the events
/// come. Within a burst `settle` is the time the last build took (capped at
/// [`MAX_SETTLE`]): the builds stay a few per burst and at most half the time goes to
/// waiting. A lone event does not wait (Contour's holdoff, made adaptive).
async fn coalesce(model: &mut Model, rx: &mut mpsc::Receiver<Msg>, settle: Duration) {
    let deadline = tokio::time::Instant::now() + settle;
    loop {
        while let Ok(msg) = rx.try_recv() {
            model.handle(msg);
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(msg)) => model.handle(msg),
            // Closed (the next `recv` ends the task) or settled.
            Ok(None) | Err(_) => return,
        }
    }
}

//! One watcher task per kind, sending its events to the model task.
//!
//! Each watcher runs `kube::runtime::watcher` with kube's default back-off, so an API server
//! that is unreachable at start (or goes away later) is retried with exponential back-off
//! (0.8 s up to 30 s) while the app keeps serving the last table it published. The first
//! failure while the source was healthy is logged once (warn), recovery once (info: noticed at
//! a failed watcher's next event, since a watch that restarts quietly yields nothing); every
//! failure counts in `switchyard_kube_watch_restarts_total{kind}`. kube's watcher relists by
//! itself after a `410 Gone` ERROR event; an HTTP 410 answer to the watch request would make it
//! retry the same resourceVersion forever, so that case restarts the watcher (a fresh list).

use crate::discovery::Msg;
use crate::telemetry::metrics;
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Pause before a fresh list after an HTTP 410 on a watch request.
const GONE_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// What every watcher task shares.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    tx: mpsc::Sender<Msg>,
    stop: CancellationToken,
    /// Watchers currently failing: 0 → 1 logs "unreachable", 1 → 0 logs "recovered".
    failing: Arc<AtomicUsize>,
}

impl Watch {
    /// Watchers that send to `tx` until `stop`.
    pub(in crate::discovery) fn new(tx: mpsc::Sender<Msg>, stop: CancellationToken) -> Watch {
        Watch {
            tx,
            stop,
            failing: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs a watcher of `kind` until `stop`, sending each event wrapped by `wrap`.
    pub(crate) async fn run<K>(
        self,
        api: Api<K>,
        config: watcher::Config,
        kind: &'static str,
        wrap: fn(Event<K>) -> Msg,
    ) where
        K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut healthy = true;
        let mut absent = false;
        loop {
            let mut stream = watcher::watcher(api.clone(), config.clone())
                .default_backoff()
                .boxed();
            loop {
                let item = tokio::select! {
                    () = self.stop.cancelled() => return,
                    item = stream.next() => item,
                };
                match item {
                    None => break,
                    Some(Ok(event)) => {
                        if absent {
                            absent = false;
                            tracing::info!(kind, "kind now served by the api server");
                        }
                        crate::telemetry::recent::kube_event(
                            kind,
                            matches!(event, Event::InitDone),
                        );
                        if !healthy {
                            healthy = true;
                            if self.failing.fetch_sub(1, Ordering::Relaxed) == 1 {
                                tracing::info!(kind, "kubernetes api reachable again");
                            }
                        }
                        if self.tx.send(wrap(event)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(error)) => {
                        metrics::kube_watch_restart(kind);
                        crate::telemetry::recent::kube_watch_failed(kind, &error);
                        if expired(&error) {
                            // 410 Gone: the server is fine, our resourceVersion is too old.
                            tracing::info!(kind, "watch expired: relisting");
                            if gone(&error) {
                                // A pause, so a server that keeps answering 410 is not
                                // hammered with lists.
                                tokio::select! {
                                    () = self.stop.cancelled() => return,
                                    () = tokio::time::sleep(GONE_PAUSE) => {}
                                }
                                break;
                            }
                            continue;
                        }
                        if not_served(&error) {
                            // 404: the kind is not served (its CRD not installed), which is
                            // no outage: not counted among the failing watchers, so a real
                            // outage later is still reported.
                            if !absent {
                                absent = true;
                                tracing::warn!(
                                    kind,
                                    "kind not served by the api server (is its CRD installed?): retrying with back-off"
                                );
                            }
                            continue;
                        }
                        if healthy {
                            healthy = false;
                            if self.failing.fetch_add(1, Ordering::Relaxed) == 0 {
                                tracing::warn!(kind, %error, "kubernetes watch failed: retrying with back-off, serving the last known table");
                            }
                        } else {
                            tracing::debug!(kind, %error, "kubernetes watch still failing");
                        }
                    }
                }
            }
        }
    }
}

/// A 410 Gone, as an ERROR event (kube relists by itself) or as the HTTP answer to the watch
/// request ([`gone`]).
fn expired(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchError(s) if s.code == 410) || gone(error)
}

/// A 404 answer to the list or watch request: the API server does not serve the kind.
fn not_served(error: &watcher::Error) -> bool {
    matches!(
        error,
        watcher::Error::InitialListFailed(kube::Error::Api(s))
            | watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 404
    )
}

/// An HTTP 410 answer to the watch request: the watcher must be restarted for a fresh list.
fn gone(error: &watcher::Error) -> bool {
    matches!(error, watcher::Error::WatchStartFailed(kube::Error::Api(s)) if s.code == 410)
}

//! The binary's main loop: reload on SIGHUP or file change, drain on shutdown.
//!
//! The file is polled (every `runtime.watch_interval`) by comparing its contents, not watched
//! with inotify: a Kubernetes ConfigMap volume swaps a symlink, which inotify watches on the
//! file miss, and comparing a few KiB every two seconds costs nothing. A changed text is
//! applied only once it reads the same on two polls in a row, so an editor or `cp` caught
//! half-way through writing the file (truncated, or cut after the first endpoint) is never
//! loaded. A text that failed once is not reported again until it changes.
//!
//! With the Kubernetes source ([`run_with`]), every applied config is the file's config merged
//! with the cluster's latest parts ([`crate::discovery::Merger`]): a new file is merged with
//! the parts, new parts with the file. `/readyz` stays 503 until the first parts (every
//! watcher's first full listing) are applied. A merged config equal to the running one is not
//! applied again (no table churn).

use super::{App, AppError, start_gated};
use crate::config::Config;
use crate::discovery::{KubeOptions, KubeSource, Merger, Update};
use crate::telemetry::metrics;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Runs `config` until `shutdown` resolves, then drains. With `path`, SIGHUP and changes to
/// the file reload it; a bad file is logged and counted and the running config stays.
pub async fn run(
    config: Config,
    path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    run_with(config, path, None, shutdown).await
}

/// [`run`], with the Kubernetes source when `kube` is given (the file is then read with
/// [`Config::load_for_kubernetes`]).
pub async fn run_with(
    config: Config,
    path: Option<PathBuf>,
    kube: Option<KubeOptions>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AppError> {
    // The recorder first: what the source reports of its first listing is counted too.
    crate::telemetry::metrics::install();
    let mut source = match kube {
        Some(options) => Some(
            KubeSource::start(options)
                .await
                .map_err(AppError::Discovery)?,
        ),
        None => None,
    };
    let mut cluster = Cluster {
        merger: Merger::default(),
        parts: None,
        applied: None,
        kube: source.is_some(),
        ready: false,
    };
    let mut drain = config.runtime.drain_timeout;
    let fixed = (config.admin.listen, config.runtime.workers);
    let watch = config.runtime.watch_interval.filter(|_| path.is_some());
    let mut seen = path
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut pending: Option<String> = None;
    // Installed before start, so a SIGHUP during start-up cannot kill the process.
    let mut hangup = signal(SignalKind::hangup()).ok();
    let app = start_gated(config.clone(), cluster.kube).await?;
    let mut file = config;
    let mut ticker = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(update) = next_update(&mut source) => {
                cluster.parts = Some(update.clone());
                if cluster.apply(&app, &file).await
                    && let Some(source) = &source
                {
                    source.applied(&update);
                    source.gateway_ports(&cluster.merger);
                    if !cluster.ready {
                        cluster.ready = true;
                        app.set_ready(true);
                        tracing::info!(admin = %app.admin_addr(), "kubernetes objects listed and applied: switchyard ready");
                    }
                }
            }
            Some(()) = recv(&mut hangup) => {
                if let Some(path) = &path {
                    tracing::info!(path = %path.display(), "SIGHUP: reloading");
                    if let Some(ok) = reload(&app, path, None, fixed, &mut cluster, &mut file).await {
                        drain = ok;
                    }
                    seen = std::fs::read_to_string(path).ok();
                } else {
                    tracing::info!("SIGHUP ignored: no config file");
                }
            }
            _ = ticker.tick(), if watch.is_some() => {
                app.reload_certificates_if_changed().await;
                let Some(path) = &path else { continue };
                let text = std::fs::read_to_string(path).ok();
                if text.is_none() || text == seen {
                    pending = None;
                } else if text != pending {
                    pending = text; // changed: wait one more poll for it to settle
                } else {
                    tracing::info!(path = %path.display(), "config file changed: reloading");
                    if let Some(ok) = reload(&app, path, text.clone(), fixed, &mut cluster, &mut file).await {
                        drain = ok;
                    }
                    seen = text;
                    pending = None;
                }
            }
        }
    }
    tracing::info!("shutdown requested");
    app.shutdown(drain).await;
    Ok(())
}

async fn next_update(source: &mut Option<KubeSource>) -> Option<Update> {
    match source {
        Some(s) => s.changed().await,
        None => std::future::pending().await,
    }
}

/// The Kubernetes side of the loop: the latest parts and what was applied last.
struct Cluster {
    merger: Merger,
    parts: Option<Update>,
    applied: Option<Config>,
    kube: bool,
    /// Whether `/readyz` was opened (after the first parts were applied).
    ready: bool,
}

impl Cluster {
    /// The config to run: the file's, merged with the latest parts.
    fn merged(&mut self, file: &Config) -> Config {
        match &self.parts {
            Some(update) => self.merger.merge(file, &update.parts),
            None => file.clone(),
        }
    }

    /// Merges and applies (unless nothing changed); true when the result is running. A merged
    /// config that cannot be applied (it should not happen: parts are checked object by
    /// object) is retried without the cluster's certificates, then given up with a log line.
    async fn apply(&mut self, app: &App, file: &Config) -> bool {
        let merged = self.merged(file);
        if self.applied.as_ref() == Some(&merged) {
            return true;
        }
        match app.apply(&merged).await {
            Ok(()) => {
                self.applied = Some(merged);
                true
            }
            Err(AppError::Tls(error)) => {
                crate::telemetry::recent::reload("kubernetes", Some(&error));
                tracing::error!(%error, "cluster certificates rejected: applying without them");
                let mut fallback = merged;
                fallback
                    .http
                    .certificates
                    .clone_from(&file.http.certificates);
                fallback.http.default_certificate = file.http.default_certificate;
                let ok = app.apply(&fallback).await.is_ok();
                self.applied = ok.then_some(fallback);
                ok
            }
            Err(error) => {
                crate::telemetry::recent::reload("kubernetes", Some(&error));
                tracing::error!(%error, "cluster update not applied, still running the previous table");
                false
            }
        }
    }
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// Loads `path` (or its already-read `text`) and applies it. Returns the new drain timeout
/// on success; on failure logs why, counts it, and leaves the running config alone. `fixed`
/// holds the settings read only at start (admin address, workers), to warn when they change.
async fn reload(
    app: &App,
    path: &Path,
    text: Option<String>,
    fixed: (std::net::SocketAddr, Option<std::num::NonZeroUsize>),
    cluster: &mut Cluster,
    file: &mut Config,
) -> Option<Duration> {
    let origin = path.display().to_string();
    let parsed = match (text, cluster.kube) {
        (Some(text), false) => Config::parse(&text, &origin),
        (Some(text), true) => Config::parse_for_kubernetes(&text, &origin),
        (None, false) => Config::load(path),
        (None, true) => Config::load_for_kubernetes(path),
    };
    let config = match parsed {
        Ok(config) => config,
        Err(error) => {
            metrics::reload(false);
            crate::telemetry::recent::reload("file", Some(&error));
            tracing::error!("config rejected, still running the previous one: {error}");
            return None;
        }
    };
    if (config.admin.listen, config.runtime.workers) != fixed {
        tracing::warn!("admin.listen and runtime.workers changes take effect at the next restart");
    }
    let merged = cluster.merged(&config);
    match app.apply(&merged).await {
        Ok(()) => {
            metrics::reload(true);
            crate::telemetry::recent::reload("file", None);
            cluster.applied = Some(merged);
            let drain = config.runtime.drain_timeout;
            *file = config;
            Some(drain)
        }
        Err(error) => {
            metrics::reload(false);
            crate::telemetry::recent::reload("file", Some(&error));
            tracing::error!(%error, "config not applied, still running the previous one");
            None
        }
    }
}

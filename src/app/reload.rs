//! The binary's main loop: reload on SIGHUP or file change, drain on shutdown.
//!
//! The file is polled (every `runtime.watch_interval`) by comparing its contents, not watched
//! with inotify: a Kubernetes ConfigMap volume swaps a symlink, which inotify watches on the
//! file miss, and comparing a few KiB every two seconds costs nothing. A changed text is
//! applied only once it reads the same on two polls in a row, so an editor or `cp` caught
//! half-way through writing the file (truncated, or cut after the first endpoint) is never
//! loaded. A text that failed once is not reported again until it changes.

use super::{App, AppError, start};
use crate::config::Config;
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
    let mut drain = config.runtime.drain_timeout;
    let fixed = (config.admin.listen, config.runtime.workers);
    let watch = config.runtime.watch_interval.filter(|_| path.is_some());
    let mut seen = path
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut pending: Option<String> = None;
    // Installed before start, so a SIGHUP during start-up cannot kill the process.
    let mut hangup = signal(SignalKind::hangup()).ok();
    let app = start(config).await?;
    let mut ticker = tokio::time::interval(watch.unwrap_or(Duration::from_secs(3600)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(()) = recv(&mut hangup) => {
                if let Some(path) = &path {
                    tracing::info!(path = %path.display(), "SIGHUP: reloading");
                    if let Some(ok) = reload(&app, path, None, fixed).await {
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
                    if let Some(ok) = reload(&app, path, text.clone(), fixed).await {
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
) -> Option<Duration> {
    let parsed = match text {
        Some(text) => Config::parse(&text, &path.display().to_string()),
        None => Config::load(path),
    };
    let config = match parsed {
        Ok(config) => config,
        Err(error) => {
            metrics::reload(false);
            tracing::error!("config rejected, still running the previous one: {error}");
            return None;
        }
    };
    if (config.admin.listen, config.runtime.workers) != fixed {
        tracing::warn!("admin.listen and runtime.workers changes take effect at the next restart");
    }
    match app.apply(&config).await {
        Ok(()) => {
            metrics::reload(true);
            Some(config.runtime.drain_timeout)
        }
        Err(error) => {
            metrics::reload(false);
            tracing::error!(%error, "config not applied, still running the previous one");
            None
        }
    }
}

//! Logging setup: `tracing` with an env filter (`RUST_LOG`), text or JSON lines on stderr.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `RUST_LOG` overrides the default level (`info`).
pub fn init(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // kube's client logs every failed request at ERROR and every dropped watch at WARN; while
    // the API server is away that is a line per retry. The Kubernetes source logs the outage
    // once itself, with the error (discovery::kube).
    let asked = std::env::var("RUST_LOG").is_ok_and(|v| v.contains("kube_client"));
    for directive in ["kube_client=error", "kube_client::client::builder=off"] {
        if !asked && let Ok(quiet) = directive.parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

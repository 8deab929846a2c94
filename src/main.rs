//! The `switchyard` command: parse arguments, load the config, run.
//!
//! Exit codes: 0 after a clean shutdown, 64 for a bad config or bad arguments (the file, its
//! certificates, the kubeconfig), 1 when the proxy cannot start for a reason a restart may
//! cure (a port in use, say).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use switchyard::config::Config;
use switchyard::telemetry::trace::{self, LogFormat};
use switchyard::{app, demo};

/// mimalloc instead of glibc's malloc: a proxy allocates and frees small buffers, header maps
/// and futures on every request, and glibc spent about a tenth of the per-request
/// instructions on it (callgrind, see BENCHMARKS.md). Two build choices keep its memory near
/// the peers': mimalloc 2, which returns freed pages after 10 ms (v3 waits 1 s: peak RSS in
/// the 1 MiB-response bench 40 MiB against 27, same CPU), and no transparent huge pages
/// (`no_thp`: with them peak RSS under HTTP/2 load rose from 43 to 54–71 MiB, past twice
/// nginx's, though plain HTTP/1.1 took up to ~13 % less CPU in one A/B).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code for a config the proxy cannot use (BSD `EX_USAGE`).
const EXIT_CONFIG: u8 = 64;

/// Switchyard: an IPVS-style L4 proxy. It listens on each service's address (a VIP:port),
/// picks an endpoint with an IPVS scheduler (rr, wrr, lc, wlc, sh, mh, twos) and proxies
/// TCP connections and UDP flows to it. Config reloads (SIGHUP, or the file changing) never
/// cut open connections.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Log line format (RUST_LOG sets the level, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the services of a config file. SIGHUP or editing the file reloads it;
    /// SIGTERM/SIGINT stop accepting and drain open connections.
    Run {
        /// The TOML config (see config/README.md).
        #[arg(short, long, env = "SWITCHYARD_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        kube: KubeArgs,
    },
    /// Check a config file and print every problem with its path; exit 64 if any.
    Check {
        /// The TOML config to check.
        #[arg(short, long)]
        config: PathBuf,
        /// Check it as `run --kubernetes` reads it: TLS listeners may have no
        /// `[[certificates]]`, since TLS Secrets can bring them.
        #[arg(long, env = "SWITCHYARD_KUBERNETES")]
        kubernetes: bool,
    },
    /// Run the built-in demo: the embedded config/demo.toml plus local demo backends that
    /// answer with their own name. Prints what to try.
    Demo {
        /// Use this file instead of the embedded demo config (and reload it when it changes).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
}

/// The Kubernetes source (`run --kubernetes`); see README.md, "Kubernetes".
#[derive(Debug, clap::Args)]
struct KubeArgs {
    /// Also serve Services, EndpointSlices, Ingresses and TLS Secrets from Kubernetes.
    #[arg(long, env = "SWITCHYARD_KUBERNETES")]
    kubernetes: bool,
    /// Kubeconfig file (default: in-cluster config, or kube's usual inference).
    #[arg(long, value_name = "FILE", env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// The IngressClass to serve.
    #[arg(long, value_name = "NAME", default_value = "switchyard")]
    ingress_class: String,
    /// Watch only this namespace (default: all).
    #[arg(long, value_name = "NS", env = "SWITCHYARD_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Serve only Ingresses matching this label selector.
    #[arg(long, value_name = "SEL")]
    label_selector: Option<String>,
    /// Addresses (IPs or hostnames) written to served Ingresses' status; empty: none.
    #[arg(
        long,
        value_name = "ADDR,...",
        env = "SWITCHYARD_PUBLISH_STATUS_ADDRESS",
        value_delimiter = ','
    )]
    publish_status_address: Vec<String>,
    /// The TLS Secret (`namespace/name`, in a watched namespace) served to clients whose SNI
    /// matches no certificate; default: a self-signed certificate generated at start.
    #[arg(
        long,
        value_name = "NS/NAME",
        env = "SWITCHYARD_DEFAULT_SSL_CERTIFICATE"
    )]
    default_ssl_certificate: Option<String>,
    /// Honour the `ssl-passthrough` Ingress annotation (as ingress-nginx requires).
    #[arg(long)]
    enable_ssl_passthrough: bool,
    /// Also watch the Gateway API kinds (GatewayClass, Gateway, HTTPRoute, ReferenceGrant;
    /// the CRDs must be installed). See README.md, "Gateway API".
    #[arg(long, env = "SWITCHYARD_GATEWAY_API")]
    gateway_api: bool,
    /// The GatewayClass `controllerName` served.
    #[arg(long, value_name = "NAME", default_value = switchyard::discovery::gateway::DEFAULT_CONTROLLER)]
    gateway_class_controller: String,
}

impl KubeArgs {
    fn options(self) -> Option<switchyard::discovery::KubeOptions> {
        if self.gateway_api && !self.kubernetes {
            eprintln!("switchyard: --gateway-api is ignored without --kubernetes");
        }
        self.kubernetes.then(|| switchyard::discovery::KubeOptions {
            kubeconfig: self.kubeconfig.filter(|p| !p.as_os_str().is_empty()),
            ingress_class: self.ingress_class,
            namespace: self.watch_namespace.filter(|n| !n.is_empty()),
            label_selector: self.label_selector.filter(|l| !l.is_empty()),
            publish_status_address: self
                .publish_status_address
                .into_iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
            default_certificate: self.default_ssl_certificate.filter(|c| !c.is_empty()),
            enable_ssl_passthrough: self.enable_ssl_passthrough,
            gateway_api: self.gateway_api,
            gateway_controller: self.gateway_class_controller,
        })
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    trace::init(cli.log_format);
    let mut kube = None;
    let (config, path, is_demo) = match cli.command {
        Command::Check { config, kubernetes } => return check(&config, kubernetes),
        Command::Run { config, kube: args } => {
            kube = args.options();
            let loaded = if kube.is_some() {
                Config::load_for_kubernetes(&config)
            } else {
                Config::load(&config)
            };
            match loaded {
                Ok(c) => (c, Some(config), false),
                Err(error) => return config_error(&error),
            }
        }
        Command::Demo { config: Some(path) } => match Config::load(&path) {
            Ok(c) => (c, Some(path), true),
            Err(error) => return config_error(&error),
        },
        Command::Demo { config: None } => match demo::config() {
            Ok(c) => (c, None, true),
            Err(error) => return config_error(&error),
        },
    };
    match serve(config, path, is_demo, kube) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchyard: {}", report(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// 64 for what is wrong in the config and will be wrong again on a restart (a certificate
/// file, a kubeconfig), so that systemd's `RestartPreventExitStatus=64` stops there; 1 for
/// what may pass (a port still held by the process before us).
fn exit_code(error: &anyhow::Error) -> u8 {
    match error.downcast_ref::<app::AppError>() {
        Some(app::AppError::Tls(_) | app::AppError::Discovery(_)) => EXIT_CONFIG,
        _ => 1,
    }
}

/// The error and its causes, each once: our errors name their cause in their own message
/// too, so a cause already in the text is not repeated.
fn report(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn check(path: &std::path::Path, kubernetes: bool) -> ExitCode {
    let loaded = if kubernetes {
        Config::load_for_kubernetes(path)
    } else {
        Config::load(path)
    };
    let loaded = loaded.map_err(|e| e.to_string()).and_then(|config| {
        // Certificates are files of their own: load them the way the router will.
        let http = &config.http;
        switchyard::tls::CertStore::load(&http.certificates, http.default_certificate)
            .map(|_| config)
            .map_err(|e| format!("{}: {e}", path.display()))
    });
    match loaded {
        Ok(config) => {
            println!(
                "{}: ok ({} services, {} http listeners, {} routes)",
                path.display(),
                config.services.len(),
                config.http.listeners.len(),
                config.http.routes.len()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("switchyard: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn config_error(error: &switchyard::config::ConfigError) -> ExitCode {
    eprintln!("switchyard: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn serve(
    config: Config,
    path: Option<PathBuf>,
    is_demo: bool,
    kube: Option<switchyard::discovery::KubeOptions>,
) -> anyhow::Result<()> {
    // Every proxied connection holds two descriptors; like HAProxy, take all the hard limit
    // allows instead of the 1024 soft default.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open file limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    // The main thread runs a current-thread runtime: with one worker it serves everything;
    // with more, the control plane, while each worker thread runs its own (app::workers).
    let per_cpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    switchyard::app::workers::set_defaults(per_cpu, memory::parking);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park(memory::parking)
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async move {
        // Wakes the runtime now and then, so that a worker that has gone quiet parks once more
        // and gives back what it freed (`memory`).
        tokio::spawn(memory::tick());
        if is_demo {
            demo::write_certificates(&config).context("cannot write the demo certificate")?;
            demo::start_backends(&config)
                .await
                .context("cannot start the demo backends (is another demo running?)")?;
            println!("{}", demo::instructions(&config));
        }
        app::run_with(config, path, kube, shutdown_signal()).await?;
        Ok(())
    })
}

/// Installs the SIGTERM and SIGINT handlers now (so a signal during start-up drains rather
/// than kills) and returns a future that resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                tracing::warn!("cannot install signal handlers; stop with SIGKILL");
                std::future::pending::<()>().await;
            }
        }
    }
}

/// Giving back to the OS the memory the allocators hold but no longer use, once a worker has
/// gone quiet.
///
/// mimalloc keeps freed pages for reuse and returns emptied ones only on later allocator
/// activity in the same thread (its purge delay is extended by every free of a burst, and
/// looked at again only on the next allocation or free there); glibc's malloc, which aws-lc
/// uses for its TLS keys, keeps its heap. So after 10,000 connections closed at once and
/// nothing else came, the process stayed near its peak: 183 MiB where it had started at 13.
/// Now a worker thread about to park collects its mimalloc heap (emptied pages freed and
/// decommitted) and trims glibc's, at most once per [`memory::EVERY`]: a tick that often
/// makes sure a quiet runtime parks again. The cost is one atomic load and one thread-local
/// read per park, and a collect a second per worker (a few microseconds on a quiet heap).
/// With several workers (`app::workers`) each worker thread runs the same hook, and wakes
/// itself as often (`app::workers`), so that a worker gone quiet still collects after its last
/// work.
mod memory {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// At most one collect per worker this often.
    pub(crate) const EVERY: Duration = Duration::from_secs(1);

    /// Counts the ticks: a worker collects once per tick.
    static TICKS: AtomicU64 = AtomicU64::new(0);

    thread_local! {
        /// The tick in which this worker last collected.
        static COLLECTED: Cell<u64> = const { Cell::new(0) };
    }

    /// A worker is about to park (tokio's `on_thread_park`): collects, unless it did already
    /// since the last tick.
    pub(crate) fn parking() {
        let tick = TICKS.load(Ordering::Relaxed);
        if COLLECTED.get() != tick {
            COLLECTED.set(tick);
            collect();
        }
    }

    /// Ticks every [`EVERY`] (and so wakes a worker, which parks again after).
    pub(crate) async fn tick() {
        let mut every = tokio::time::interval(EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            TICKS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Frees this thread's emptied mimalloc pages and decommits them, and returns glibc's
    /// free heap memory.
    #[allow(unsafe_code, reason = "two calls into the allocators' C interfaces")]
    fn collect() {
        unsafe extern "C" {
            /// mimalloc's `mi_collect` (linked in by the `mimalloc` crate).
            fn mi_collect(force: bool);
        }
        // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any
        // time; it works on the calling thread's heap and the shared arenas.
        unsafe { mi_collect(true) };
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `malloc_trim` takes no pointers and is thread-safe (it takes each arena's
        // lock).
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

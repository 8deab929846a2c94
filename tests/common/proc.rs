//! The `switchyard` binary as a child process for the CLI tests: one-shot runs (`check`,
//! `--help`), config files on fixed free ports, and a [`Proxy`] guard around `switchyard run`
//! that waits for readiness, rewrites its config, signals it, and kills it on drop, so a
//! failing test leaves no process behind.

use super::{backend_of, metric};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
pub const EXIT_CONFIG: i32 = 64;

/// Runs the binary to completion with `args`.
pub fn switchyard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn check(path: &Path) -> Output {
    switchyard(&["check", "--config", path.to_str().unwrap()])
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Two distinct free TCP ports on 127.0.0.1 (bound, then released: a race we accept).
pub fn free_ports() -> (SocketAddr, SocketAddr) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

/// Config text: admin and one TCP service `web` on fixed ports, pointing at `backend`.
pub fn config_text(
    admin: SocketAddr,
    listen: SocketAddr,
    backend: SocketAddr,
    runtime: &str,
) -> String {
    format!(
        "[admin]\nlisten = \"{admin}\"\n\
         [runtime]\n{runtime}\n\
         [[services]]\nname = \"web\"\nlisten = \"{listen}\"\nscheduler = \"rr\"\n\
         [[services.endpoints]]\naddress = \"{backend}\"\n"
    )
}

/// GET `path` on `addr`; `None` if the admin listener is not (or no longer) there.
pub async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let request = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(2), request)
        .await
        .ok()
        .flatten()
}

/// Polls `condition` every 25 ms until it holds or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A `switchyard run` child process, killed on drop.
pub struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    pub admin: SocketAddr,
    pub listen: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts `switchyard run` on a config for `backend` with the given `[runtime]` body and
    /// waits until `/readyz` says 200.
    pub async fn start(backend: SocketAddr, runtime: &str) -> Proxy {
        Proxy::start_limited(backend, runtime, None).await
    }

    /// Like [`Proxy::start`], optionally under `ulimit -n fd_limit`.
    pub async fn start_limited(backend: SocketAddr, runtime: &str, fd_limit: Option<u32>) -> Proxy {
        let (admin, listen) = free_ports();
        let dir = tempfile::tempdir().unwrap();
        let config = write(
            &dir,
            "switchyard.toml",
            &config_text(admin, listen, backend, runtime),
        );
        let log = dir.path().join("switchyard.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut command = match fd_limit {
            None => Command::new(BIN),
            Some(limit) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                sh
            }
        };
        let child = command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env_remove("SWITCHYARD_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut proxy = Proxy {
            child,
            dir,
            config,
            log,
            admin,
            listen,
        };
        proxy.wait_ready().await;
        proxy
    }

    pub fn runtime_config(&self, backend: SocketAddr, runtime: &str) -> String {
        config_text(self.admin, self.listen, backend, runtime)
    }

    pub fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- switchyard log ({}) ---\n{}",
            self.dir.path().display(),
            self.log()
        )
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.fail(&format!("switchyard exited before it was ready: {status}"));
            }
            if let Some((200, _)) = get(self.admin, "/readyz").await {
                return;
            }
            if Instant::now() >= deadline {
                self.fail("/readyz did not answer 200 within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a signal with kill(1).
    pub async fn signal(&self, name: &str) {
        let status = tokio::process::Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -s {name} failed: {status}");
    }

    /// Waits (bounded) for the process to exit.
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "switchyard still running {within:?} after being told to stop"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.fail(&format!("switchyard exited {when}: {status}"));
        }
    }

    pub async fn metric(&self, name_and_labels: &str) -> f64 {
        let (_, text) = get(self.admin, "/metrics").await.unwrap_or_default();
        metric(&text, name_and_labels).unwrap_or(0.0)
    }

    /// Waits (bounded) until new connections reach `backend`.
    pub async fn wait_backend(&self, backend: &str, within: Duration) {
        let listen = self.listen;
        if !eventually(
            within,
            || async move { backend_of(listen).await == backend },
        )
        .await
        {
            self.fail(&format!(
                "new connections did not move to {backend} within {within:?}"
            ));
        }
    }
}

pub const RELOADS_OK: &str = r#"switchyard_reloads_total{result="ok"}"#;
pub const RELOADS_FAILED: &str = r#"switchyard_reloads_total{result="failed"}"#;

//! The `switchyard` binary: `check`, `run` with SIGHUP / file-change reloads, SIGTERM drain.
//!
//! Every spawned proxy is owned by a [`Proxy`] guard that kills it on drop, so a failing test
//! leaves no process behind.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;

use common::*;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const EXIT_CONFIG: i32 = 64;

// ---------------------------------------------------------------------------------------------
// helpers

/// Runs the binary to completion with `args`.
fn switchyard(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn check(path: &Path) -> Output {
    switchyard(&["check", "--config", path.to_str().unwrap()])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Two distinct free TCP ports on 127.0.0.1 (bound, then released: a race we accept).
fn free_ports() -> (SocketAddr, SocketAddr) {
    let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    (a.local_addr().unwrap(), b.local_addr().unwrap())
}

/// Config text: admin and one TCP service `web` on fixed ports, pointing at `backend`.
fn config_text(
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
async fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
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
async fn eventually<F, Fut>(within: Duration, mut condition: F) -> bool
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
struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    admin: SocketAddr,
    listen: SocketAddr,
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
    async fn start(backend: SocketAddr, runtime: &str) -> Proxy {
        Proxy::start_limited(backend, runtime, None).await
    }

    /// Like [`Proxy::start`], optionally under `ulimit -n fd_limit`.
    async fn start_limited(backend: SocketAddr, runtime: &str, fd_limit: Option<u32>) -> Proxy {
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

    fn runtime_config(&self, backend: SocketAddr, runtime: &str) -> String {
        config_text(self.admin, self.listen, backend, runtime)
    }

    fn rewrite(&self, text: &str) {
        std::fs::write(&self.config, text).unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- switchyard log ({}) ---\n{}",
            self.dir.path().display(),
            self.log()
        )
    }

    async fn wait_ready(&mut self) {
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
    async fn signal(&self, name: &str) {
        let status = tokio::process::Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success(), "kill -s {name} failed: {status}");
    }

    /// Waits (bounded) for the process to exit.
    async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
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

    fn assert_running(&mut self, when: &str) {
        if let Some(status) = self.child.try_wait().unwrap() {
            self.fail(&format!("switchyard exited {when}: {status}"));
        }
    }

    async fn metric(&self, name_and_labels: &str) -> f64 {
        let (_, text) = get(self.admin, "/metrics").await.unwrap_or_default();
        metric(&text, name_and_labels).unwrap_or(0.0)
    }

    /// Waits (bounded) until new connections reach `backend`.
    async fn wait_backend(&self, backend: &str, within: Duration) {
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

const RELOADS_OK: &str = r#"switchyard_reloads_total{result="ok"}"#;
const RELOADS_FAILED: &str = r#"switchyard_reloads_total{result="failed"}"#;

// ---------------------------------------------------------------------------------------------
// --help and check

#[test]
fn help_lists_the_subcommands() {
    let out = switchyard(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for command in ["run", "check", "demo"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help does not list `{command}`:\n{text}"
        );
    }
}

#[test]
fn check_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = check(&example);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok (2 services"), "{stdout}");
}

#[test]
fn check_prints_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "bad.toml",
        r#"
[admin]
listen = "nowhere"

[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"

[[services]]
name = "three"
listen = "127.0.0.1:8082"
[[services.endpoints]]
address = "10.0.0.1"

[[services]]
name = "four"
listen = "127.0.0.1:8083"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("4 problem(s)"), "{err}");
    for line in [
        r#"admin.listen: invalid socket address "nowhere""#,
        "services[1].listen: tcp 127.0.0.1:8080 is already used by services[0]",
        r#"services[2].endpoints[0].address: invalid socket address "10.0.0.1""#,
        "services[3].endpoints: a service needs at least one endpoint",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_paths_name_the_right_service_after_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "shifted.toml",
        r#"
[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8081"
[[services.endpoints]]
address = "10.0.0.1"

[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9001"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for line in [
        r#"services[1].endpoints[0].address: invalid socket address "10.0.0.1""#,
        r#"services[2].name: duplicate name "one" (first used by services[0])"#,
        "services[2].listen: tcp 127.0.0.1:8080 is already used by services[0]",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_reports_a_duplicate_listen_on_a_service_that_has_other_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "masked.toml",
        r#"
[[services]]
name = "one"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "127.0.0.1:9000"

[[services]]
name = "two"
listen = "127.0.0.1:8080"
[[services.endpoints]]
address = "10.0.0.1"
"#,
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    for line in [
        r#"services[1].endpoints[0].address: invalid socket address "10.0.0.1""#,
        "services[1].listen: tcp 127.0.0.1:8080 is already used by services[0]",
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(line)),
            "missing `{line}` in:\n{err}"
        );
    }
}

#[test]
fn check_names_an_unknown_key_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "typo.toml",
        "[[services]]\nname = \"web\"\nlistne = \"127.0.0.1:8080\"\n[[services.endpoints]]\naddress = \"127.0.0.1:9000\"\n",
    );
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("services[0].listne"), "{err}");
    assert!(err.contains("unknown field `listne`"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line per error: {err}");
}

#[test]
fn check_a_missing_file_exits_64_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let out = check(&path);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(
        err.contains(&format!("cannot read {}", path.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn check_malformed_or_empty_toml_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(&dir, "garbage.toml", "this is = = not toml\n");
    let out = check(&garbage);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(
        err.contains(&garbage.display().to_string()),
        "names the file: {err}"
    );
    assert!(err.contains("TOML parse error"), "{err}");

    let empty = write(&dir, "empty.toml", "# nothing here\n\n");
    let out = check(&empty);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{err}");
    assert!(err.contains("the file is empty"), "{err}");
}

#[test]
fn run_refuses_a_bad_config_with_64_and_a_busy_port_with_1() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = write(&dir, "garbage.toml", "[[services]\n");
    let out = switchyard(&["run", "--config", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(EXIT_CONFIG), "{}", stderr(&out));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap();
    let (_, listen) = free_ports();
    let path = write(
        &dir,
        "busy.toml",
        &config_text(busy, listen, "127.0.0.1:9".parse().unwrap(), ""),
    );
    let out = switchyard(&["run", "--config", path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on tcp {busy} for admin")),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// run: reloads

#[tokio::test]
async fn sighup_reload_moves_new_connections_and_keeps_open_ones() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"0s\"";
    let proxy = Proxy::start(a, runtime).await;
    let (name, mut before) = connect(proxy.listen).await;
    assert_eq!(name, "a");

    proxy.rewrite(&proxy.runtime_config(b, runtime));
    proxy.signal("HUP").await;
    proxy.wait_backend("b", Duration::from_secs(5)).await;

    echo_roundtrip(&mut before, b"opened before the reload").await;
    assert!(proxy.metric(RELOADS_OK).await >= 1.0, "{}", proxy.log());
    assert_eq!(proxy.metric(RELOADS_FAILED).await, 0.0);
    for _ in 0..3 {
        assert_eq!(backend_of(proxy.listen).await, "b");
    }
}

#[tokio::test]
async fn invalid_config_on_sighup_keeps_the_old_one_serving() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"0s\"";
    let proxy = Proxy::start(a, runtime).await;
    let (_, mut before) = connect(proxy.listen).await;

    // Not TOML at all, then TOML that does not validate (and would move traffic to b).
    let invalid = proxy
        .runtime_config(b, runtime)
        .replace(&b.to_string(), "10.0.0.1");
    for (round, text) in [
        ("garbage", "this is = = not toml\n".to_owned()),
        ("invalid", invalid),
    ] {
        let failed_before = proxy.metric(RELOADS_FAILED).await;
        proxy.rewrite(&text);
        proxy.signal("HUP").await;
        let p = &proxy;
        let counted = eventually(Duration::from_secs(5), || async move {
            p.metric(RELOADS_FAILED).await > failed_before
        })
        .await;
        if !counted {
            proxy.fail(&format!("{round}: no failed reload counted within 5 s"));
        }
        assert_eq!(
            backend_of(proxy.listen).await,
            "a",
            "{round}: the old config keeps serving"
        );
        assert_eq!(get(proxy.admin, "/readyz").await.map(|r| r.0), Some(200));
    }
    echo_roundtrip(&mut before, b"still here").await;
    assert!(proxy.metric(RELOADS_FAILED).await >= 2.0);
    assert_eq!(proxy.metric(RELOADS_OK).await, 0.0);
}

#[tokio::test]
async fn a_changed_file_is_reloaded_without_a_signal() {
    let a = tcp_backend("a").await;
    let b = tcp_backend("b").await;
    let runtime = "drain_timeout = \"5s\"\nwatch_interval = \"200ms\"";
    let proxy = Proxy::start(a, runtime).await;
    let (name, mut before) = connect(proxy.listen).await;
    assert_eq!(name, "a");

    proxy.rewrite(&proxy.runtime_config(b, runtime));
    proxy.wait_backend("b", Duration::from_secs(5)).await;
    echo_roundtrip(&mut before, b"opened before the reload").await;
    assert!(proxy.metric(RELOADS_OK).await >= 1.0, "{}", proxy.log());
}

// ---------------------------------------------------------------------------------------------
// run: SIGTERM and drain

#[tokio::test]
async fn sigterm_drains_open_connections_then_exits_0() {
    let a = tcp_backend("a").await;
    let mut proxy = Proxy::start(a, "drain_timeout = \"5s\"\nwatch_interval = \"0s\"").await;
    let (_, mut open) = connect(proxy.listen).await;
    echo_roundtrip(&mut open, b"before").await;

    proxy.signal("TERM").await;
    let admin = proxy.admin;
    let not_ready = eventually(Duration::from_secs(3), || async move {
        get(admin, "/readyz").await.map(|r| r.0) == Some(503)
    })
    .await;
    if !not_ready {
        proxy.fail("/readyz did not turn 503 within 3 s of SIGTERM");
    }
    let listen = proxy.listen;
    let refused = eventually(Duration::from_secs(3), || async move {
        matches!(TcpStream::connect(listen).await, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    })
    .await;
    if !refused {
        proxy.fail("new connections still accepted 3 s after SIGTERM");
    }

    echo_roundtrip(&mut open, b"during the drain").await;
    proxy.assert_running("while a connection is open and drain_timeout has not passed");

    drop(open);
    // Well inside the 5 s drain timeout: the process ends because the connection did.
    let status = proxy.wait_exit(Duration::from_secs(3)).await;
    assert_eq!(status.code(), Some(0), "{status}\n{}", proxy.log());
    assert!(
        !proxy.log().contains("drain deadline passed"),
        "{}",
        proxy.log()
    );
}

#[tokio::test]
async fn drain_deadline_closes_leftover_connections_and_exits_0() {
    let a = tcp_backend("a").await;
    let mut proxy = Proxy::start(a, "drain_timeout = \"1s\"\nwatch_interval = \"0s\"").await;
    let (_, mut open) = connect(proxy.listen).await;
    echo_roundtrip(&mut open, b"before").await;

    proxy.signal("TERM").await;
    let signalled = Instant::now();
    let status = proxy.wait_exit(Duration::from_secs(5)).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{status}\n{}", proxy.log());
    assert!(
        took >= Duration::from_millis(900),
        "exited after {took:?}, before the 1 s drain timeout"
    );
    assert!(
        proxy.log().contains("drain deadline passed"),
        "{}",
        proxy.log()
    );

    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buf))
        .await
        .expect("the leftover connection was not closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn accept_loop_survives_running_out_of_file_descriptors() {
    let backend = tcp_backend("fd").await;
    let mut proxy = Proxy::start_limited(backend, "", Some(48)).await;
    // Each proxied connection costs two descriptors: 40 clients exhaust 48.
    let mut clients = Vec::new();
    for _ in 0..40 {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(proxy.listen)).await
        {
            clients.push(s);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.assert_running("while out of file descriptors");
    drop(clients);
    let listen = proxy.listen;
    let served = eventually(Duration::from_secs(5), || async move {
        tokio::time::timeout(Duration::from_secs(1), backend_of(listen))
            .await
            .is_ok_and(|name| name == "fd")
    })
    .await;
    if !served {
        proxy.fail("not serving again after descriptors were freed");
    }
    let errors = proxy
        .metric(r#"switchyard_accept_errors_total{service="web"}"#)
        .await;
    let refused = proxy
        .metric(r#"switchyard_upstream_connect_errors_total{service="web",reason="other"}"#)
        .await;
    if errors + refused < 1.0 {
        proxy.fail("expected accept errors or failed upstream sockets while out of descriptors");
    }
    eprintln!("accept errors {errors}, upstream socket errors {refused}");
    assert!(proxy.log().contains("accept failed") || refused >= 1.0);
}

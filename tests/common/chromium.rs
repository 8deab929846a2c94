//! Headless Chromium (Debian's `chromium`) for the browser tests, run as a child killed after
//! 60 s: the flags every such test needs, then the test's own.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Whether `chromium` can be run here.
pub fn installed() -> bool {
    Command::new("chromium").arg("--version").output().is_ok()
}

/// Runs headless Chromium on `url` with profile `profile` and the test's `args`; killed (and
/// an error) after 60 s.
pub async fn run(profile: &Path, args: &[String], url: &str) -> std::io::Result<Output> {
    let mut command = Command::new("chromium");
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn()?;
    let pid = child.id();
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output());
    match tokio::time::timeout(Duration::from_secs(60), waited).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => {
            // Our own child, by its id.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            Err(std::io::Error::other("chromium did not finish within 60 s"))
        }
    }
}

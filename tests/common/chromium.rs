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

/// Loads `url` with [`run`] and returns the DOM it dumped and what Chromium wrote to stderr;
/// fails the test unless Chromium exited well with a whole page.
pub async fn page(profile: &Path, args: &[String], url: &str) -> (String, String) {
    let out = run(profile, args, url).await.unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed: {}\n{stderr}",
        out.status
    );
    (dom, stderr)
}

/// The base64 SHA-256 of the leaf's SubjectPublicKeyInfo, as
/// `--ignore-certificate-errors-spki-list` takes it.
pub fn spki_hash(leaf: &rustls::pki_types::CertificateDer<'_>) -> String {
    use base64::Engine;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).unwrap();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

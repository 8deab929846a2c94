//! The dashboard page in a real browser: headless Chromium (Debian's `chromium`) loads `/`
//! from a running Switchyard with traffic, runs the page's script, and the DOM it dumps must
//! show the services, an endpoint, the route's source and the certificate.
//!
//! With `SWITCHYARD_DASHBOARD_SCREENSHOT=path.png` it also writes a screenshot of the page
//! there (how `docs/dashboard.png` is made). Skipped, saying why, without Chromium.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod dashboard_support;
mod skip;

use dashboard_support::Dashboard;
use skip::skip;
use std::path::Path;
use std::process::Output;

const TEST: &str = "the_page_shows_live_services_and_certificates_in_chromium";

/// Runs headless Chromium on the page with `args`, hiding scroll bars and on virtual time
/// (polls run on it; the budget lets the first answers arrive and render).
async fn chromium(profile: &Path, args: &[String], url: &str) -> std::io::Result<Output> {
    let mut all = vec![
        "--hide-scrollbars".to_owned(),
        "--virtual-time-budget=6000".to_owned(),
    ];
    all.extend_from_slice(args);
    common::chromium::run(profile, &all, url).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_live_services_and_certificates_in_chromium() {
    if !common::chromium::installed() {
        return skip(TEST, "chromium is not installed (apt-get install chromium)");
    }
    let d = Dashboard::start().await;
    d.live().await;
    let url = format!("http://{}/", d.admin);
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path(), &["--dump-dom".into()], &url)
        .await
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && dom.contains("</html>"),
        "chromium failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.contains(r#"data-live="yes""#),
        "no live data in the page:\n{dom}"
    );
    for service in ["shop", "gone", "echo"] {
        assert!(
            dom.contains(&format!(r#"<tr data-service="{service}">"#)),
            "{service} missing:\n{dom}"
        );
    }
    assert!(dom.contains(r#"<tr data-cert="shop.test">"#), "{dom}");
    assert!(dom.contains("www.shop.test"), "{dom}");
    assert!(
        dom.contains("4096-01-01"),
        "the certificate's expiry date:\n{dom}"
    );
    assert!(
        dom.contains(&d.cert.cert.display().to_string()),
        "its source"
    );
    assert!(
        dom.contains(r#"<span class="b active">active</span>"#),
        "{dom}"
    );
    assert!(dom.contains("<polyline"), "sparklines drawn:\n{dom}");
    assert!(dom.contains("<td>file</td>"), "the routes' source:\n{dom}");
    assert!(
        dom.contains(r#"<span id="error"></span>"#),
        "a poll failed:\n{dom}"
    );

    if let Some(path) = std::env::var_os("SWITCHYARD_DASHBOARD_SCREENSHOT") {
        d.traffic(4).await;
        let args = [
            format!("--screenshot={}", Path::new(&path).display()),
            "--window-size=1280,860".to_owned(),
        ];
        let out = chromium(profile.path(), &args, &url).await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

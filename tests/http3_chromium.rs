//! HTTP/3 in a real browser: headless Chromium (Debian's `chromium`), with QUIC forced to our
//! origin (`--origin-to-force-quic-on`), loads a page from Switchyard's TLS listener with
//! `http3 = true`; the page writes the protocol its navigation went over
//! (`performance.getEntriesByType("navigation")[0].nextHopProtocol`) into the DOM that
//! `--dump-dom` prints, and Switchyard's access log has the page's line with version `HTTP/3`.
//! The certificate is trusted with `--ignore-certificate-errors-spki-list`. Skipped, saying
//! why, without Chromium.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod skip;

use bytes::Bytes;
use common::chromium::spki_hash;
use common::log::captured;
use common::tls::{Pki, certificates, within};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use skip::skip;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::config::Config;
use tokio::net::TcpListener;

const TEST: &str = "chromium_loads_a_page_over_http3";

/// The page: shows the navigation's protocol in `#proto`.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>h3</title></head><body>
<p id="proto">unknown</p>
<script>
const nav = performance.getEntriesByType("navigation")[0];
document.getElementById("proto").textContent = nav ? nav.nextHopProtocol : "no entry";
</script>
</body></html>
"#;

/// An HTTP/1.1 backend serving [`PAGE`] on every path.
async fn page_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let service = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                let mut resp = http::Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
                resp.headers_mut().insert(
                    "content-type",
                    http::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                Ok::<_, Infallible>(resp)
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(socket), service)
                    .await;
            });
        }
    });
    addr
}

/// The versions in the access-log lines for `path` (after a moment for them to be written).
async fn logged_versions(path: &str) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = String::from_utf8_lossy(&captured().lock().unwrap()).into_owned();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == "access" && l["fields"]["path"] == path)
        .map(|l| {
            l["fields"]["version"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_a_page_over_http3() {
    if !common::chromium::installed() {
        return skip(TEST, "chromium is not installed (apt-get install chromium)");
    }
    captured();
    let page = page_backend().await;
    let pki = Pki::new();
    let cert = pki.issue("h3", &["h3.test"]);
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\nwatch_interval = \"0s\"\n\
         [[listeners]]\nname = \"tls\"\nlisten = \"127.0.0.1:0\"\ntls = true\nhttp3 = true\n\
         {}\
         [[services]]\nname = \"page\"\n[[services.endpoints]]\naddress = \"{page}\"\n\
         [[routes]]\nhost = \"h3.test\"\nservice = \"page\"\n",
        certificates(&[(&cert, true)])
    );
    let config = Config::parse(&text, "test").unwrap();
    let app = within("start", switchyard::app::start(config))
        .await
        .unwrap();
    let port = app.http_addr("tls").await.unwrap().port();
    let profile = tempfile::tempdir().unwrap();
    let args = [
        "--disable-extensions".to_owned(),
        "--disable-background-networking".to_owned(),
        "--dump-dom".to_owned(),
        "--enable-quic".to_owned(),
        format!("--origin-to-force-quic-on=h3.test:{port}"),
        "--host-resolver-rules=MAP h3.test 127.0.0.1".to_owned(),
        format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_hash(&cert.leaf)
        ),
    ];
    let url = format!("https://h3.test:{port}/page");
    let started = Instant::now();
    let (dom, stderr) = common::chromium::page(profile.path(), &args, &url).await;
    assert!(
        dom.contains(r#"<p id="proto">h3</p>"#),
        "the page did not come over h3 ({:?}):\n{dom}\n{stderr}",
        started.elapsed()
    );
    assert_eq!(
        logged_versions("/page").await,
        ["HTTP/3"],
        "Switchyard's access log"
    );
}

//! A `switchyard run` child with what the dashboard shows: an HTTP service with traffic, a
//! failing one (5xx), a TCP service, a certificate from a file, and a config file that tests
//! can break to see a reload error.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::common::proc::{BIN, get};
use super::common::tls::{Issued, Pki};
use super::common::{dead_address, tcp_backend};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// The running proxy, killed on drop.
pub struct Dashboard {
    child: Child,
    pub pki: Pki,
    pub cert: Issued,
    pub config: PathBuf,
    pub text: String,
    pub admin: SocketAddr,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    log: PathBuf,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Dashboard {
    /// Starts the proxy and waits for `/readyz`.
    pub async fn start() -> Dashboard {
        let shop = super::common::http::backend("shop").await;
        let echo = tcp_backend("echo").await;
        let dead = dead_address().await;
        let pki = Pki::new();
        let cert = pki.issue("shop", &["shop.test", "www.shop.test"]);
        let (admin, http, https, tcp) = (free(), free(), free(), free());
        let text = format!(
            "[admin]\nlisten = \"{admin}\"\n[runtime]\nwatch_interval = \"100ms\"\ndrain_timeout = \"1s\"\n\
             [http]\naccess_log = \"off\"\n\
             [[listeners]]\nname = \"web\"\nlisten = \"{http}\"\n\
             [[listeners]]\nname = \"tls\"\nlisten = \"{https}\"\ntls = true\n\
             [[certificates]]\ncert = {:?}\nkey = {:?}\n\
             [[services]]\nname = \"shop\"\n[[services.endpoints]]\naddress = \"{shop}\"\n\
             [[services]]\nname = \"gone\"\n[[services.endpoints]]\naddress = \"{dead}\"\n\
             [[services]]\nname = \"echo\"\nlisten = \"{tcp}\"\n[[services.endpoints]]\naddress = \"{echo}\"\n\
             [[routes]]\nhost = \"shop.test\"\nservice = \"shop\"\n\
             [[routes]]\nhost = \"gone.test\"\nservice = \"gone\"\n",
            cert.cert.display().to_string(),
            cert.key.display().to_string(),
        );
        let config = pki.path("switchyard.toml");
        std::fs::write(&config, &text).unwrap();
        let log = pki.path("switchyard.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("SWITCHYARD_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let d = Dashboard {
            child,
            pki,
            cert,
            config,
            text,
            admin,
            http,
            tcp,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !matches!(get(d.admin, "/readyz").await, Some((200, _))) {
            assert!(Instant::now() < deadline, "not ready:\n{}", d.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `n` GETs for `host` on one keep-alive connection each time; returns the statuses.
    pub async fn requests(&self, host: &str, n: usize) -> Vec<u16> {
        let mut statuses = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = TcpStream::connect(self.http).await.unwrap();
            let req = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
            let text = String::from_utf8_lossy(&out);
            statuses.push(
                text.split(' ')
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0),
            );
        }
        statuses
    }

    /// `n` TCP connections through the `echo` service.
    pub async fn connections(&self, n: usize) {
        for _ in 0..n {
            let mut s = TcpStream::connect(self.tcp).await.unwrap();
            let mut greeting = [0u8; 5];
            s.read_exact(&mut greeting).await.unwrap();
            assert_eq!(&greeting, b"echo\n");
        }
    }

    /// Sends traffic for about `secs` seconds (bounded in count too).
    pub async fn traffic(&self, secs: u64) {
        let until = Instant::now() + Duration::from_secs(secs);
        let mut rounds = 0;
        while Instant::now() < until && rounds < 200 {
            assert_eq!(self.requests("shop.test", 5).await, [200; 5]);
            assert_eq!(self.requests("gone.test", 1).await, [502]);
            self.connections(2).await;
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `/debug/overview` parsed.
    pub async fn overview(&self) -> serde_json::Value {
        let (status, body) = get(self.admin, "/debug/overview").await.unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Sends traffic until the sampler shows `shop` with requests per second and `gone` with
    /// errors (the sampler needs two rounds, 5 s apart, after the counters exist).
    pub async fn live(&self) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.traffic(1).await;
            let o = self.overview().await;
            let last = |name: &str| {
                o["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|s| s["name"] == name)
                    .and_then(|s| s["series"].as_array().and_then(|p| p.last().cloned()))
            };
            let shop = last("shop").and_then(|p| p["rps"].as_f64()).unwrap_or(0.0);
            let gone = last("gone")
                .and_then(|p| p["errors"].as_f64())
                .unwrap_or(0.0);
            if shop > 0.0 && gone > 0.0 {
                return o;
            }
            assert!(Instant::now() < deadline, "no live series: {o:#}");
        }
    }
}

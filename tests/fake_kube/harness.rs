//! The switchyard binary (`run --kubernetes --kubeconfig …`) against a [`FakeKube`], and what
//! the tests talk to: named HTTP backends on 127.0.0.1, the [`Proxy`] guard (killed on drop),
//! polling, plain and TLS GETs, metrics, a throwaway CA for TLS Secrets.

use super::FakeKube;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// An HTTP/1.1 backend answering every request with its name.
pub async fn http_backend(name: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(name)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// `N` distinct free ports: each is held until all are taken, so that two are never the same
/// (which made two listeners of one config collide now and then). They are drawn below the
/// kernel's ephemeral range (`ip_local_port_range`), where ports asked of the kernel with
/// port 0 come from: an outgoing connection of any test could take one of those as its
/// local port between here and the proxy's bind (a Gateway listener then failed with
/// "address already in use" now and then).
pub fn free_ports<const N: usize>() -> [SocketAddr; N] {
    use std::hash::{BuildHasher, RandomState};
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000, ephemeral.max(10_001));
    let mut held = Vec::new();
    while held.len() < N {
        let port = low + RandomState::new().hash_one(held.len()) % (high - low);
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            held.push(listener);
        }
    }
    std::array::from_fn(|i| held[i].local_addr().unwrap())
}

pub struct Proxy {
    child: Child,
    config: std::path::PathBuf,
    base: String,
    pub admin: SocketAddr,
    pub http: SocketAddr,
    pub https: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    pub fn start(fake: &FakeKube, extra: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let [admin, http, https] = free_ports();
        let config = dir.path().join("switchyard.toml");
        let base = format!(
            "[admin]\nlisten = \"{admin}\"\n[runtime]\ndrain_timeout = \"1s\"\n\
             [http]\naccess_log = \"off\"\n\
             [[listeners]]\nname = \"http\"\nlisten = \"{http}\"\n\
             [[listeners]]\nname = \"https\"\nlisten = \"{https}\"\ntls = true\n"
        );
        std::fs::write(&config, &base).unwrap();
        let kubeconfig = fake.kubeconfig(dir.path());
        let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .args(["--kubernetes", "--kubeconfig"])
            .arg(&kubeconfig)
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Proxy {
            child,
            config,
            base,
            admin,
            http,
            https,
            _dir: dir,
        }
    }

    /// Rewrites the config file as the base plus `extra` and sends SIGHUP.
    pub fn reload(&self, extra: &str) {
        std::fs::write(&self.config, format!("{}{extra}", self.base)).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub async fn wait_ready(&self) {
        let ok = poll(Duration::from_secs(15), || async {
            admin_get(self.admin, "/readyz").await.map(|r| r.0) == Some(200)
        })
        .await;
        assert!(ok, "not ready in time; log:\n{}", self.log());
    }

    pub async fn metrics(&self) -> String {
        admin_get(self.admin, "/metrics").await.unwrap().1
    }
}

/// Polls `check` every 5 ms until it is true or `limit` passes.
pub async fn poll<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

pub async fn raw_get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let status = out.split(' ').nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((status, body))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

pub async fn admin_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    raw_get(addr, "admin", path).await
}

pub fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A CA and a leaf for `host`: (chain pem, key pem, leaf der, roots).
pub fn issue(host: &str) -> (String, String, Vec<u8>, rustls::RootCertStore) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (
        format!("{}{}", leaf.pem(), ca.pem()),
        key.serialize_pem(),
        leaf.der().to_vec(),
        roots,
    )
}

/// GET https://`host`/ through `addr`: (status, body, the leaf the server presented).
pub async fn https_get(
    addr: SocketAddr,
    host: &str,
    roots: rustls::RootCertStore,
) -> (u16, String, Vec<u8>) {
    use http_body_util::BodyExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", host)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned(), leaf)
}

//! The Kubernetes source end to end: the real binary (`run --kubernetes --kubeconfig …`)
//! against a fake API server (`fake_kube`) that speaks list/watch over HTTP, with real
//! backends on 127.0.0.1.
//!
//! EndpointSlice addresses must be reachable, so every backend is 127.0.0.1 with a port of its
//! own. One Service port's endpoints then need different ports: each backend gets its own
//! EndpointSlice whose port (named like the Service port) is that backend's port. That is
//! valid API usage (slices of one Service may resolve a named targetPort differently) and
//! exercises the merging of slices.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod fake_kube;

use fake_kube::FakeKube;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressClass, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use kube::api::ObjectMeta;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

// ---------------------------------------------------------------------------------------------
// Objects

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..ObjectMeta::default()
    }
}

fn class() -> IngressClass {
    IngressClass {
        metadata: ObjectMeta {
            name: Some("switchyard".into()),
            ..ObjectMeta::default()
        },
        ..IngressClass::default()
    }
}

fn service(ns: &str, name: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.96.0.10".into()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// One slice of `svc` with one endpoint 127.0.0.1:`port` in the given state.
fn slice(ns: &str, svc: &str, name: &str, port: u16, state: (bool, bool, bool)) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([(
        "kubernetes.io/service-name".to_owned(),
        svc.to_owned(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: vec![Endpoint {
            addresses: vec!["127.0.0.1".into()],
            conditions: Some(EndpointConditions {
                ready: Some(state.0),
                serving: Some(state.1),
                terminating: Some(state.2),
            }),
            ..Endpoint::default()
        }],
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(i32::from(port)),
            ..EndpointPort::default()
        }]),
    }
}

const READY: (bool, bool, bool) = (true, true, false);
const TERMINATING: (bool, bool, bool) = (false, true, true);

fn backend(svc: &str) -> IngressBackend {
    IngressBackend {
        service: Some(IngressServiceBackend {
            name: svc.into(),
            port: Some(ServiceBackendPort {
                name: Some("http".into()),
                number: None,
            }),
        }),
        resource: None,
    }
}

fn ingress(ns: &str, name: &str, host: &str, svc: &str, tls_secret: Option<&str>) -> Ingress {
    Ingress {
        metadata: meta(ns, name),
        spec: Some(IngressSpec {
            ingress_class_name: Some("switchyard".into()),
            rules: Some(vec![IngressRule {
                host: Some(host.into()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: backend(svc),
                    }],
                }),
            }]),
            tls: tls_secret.map(|s| {
                vec![IngressTLS {
                    hosts: Some(vec![host.into()]),
                    secret_name: Some(s.into()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    }
}

fn secret(ns: &str, name: &str, cert: &str, key: &str) -> Secret {
    Secret {
        metadata: meta(ns, name),
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
            ("tls.key".to_owned(), ByteString(key.as_bytes().to_vec())),
        ])),
        ..Secret::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Backends, the proxy, clients

/// An HTTP/1.1 backend answering every request with its name.
async fn http_backend(name: &'static str) -> u16 {
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

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

struct Proxy {
    child: Child,
    config: std::path::PathBuf,
    base: String,
    admin: SocketAddr,
    http: SocketAddr,
    https: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn start(fake: &FakeKube, extra: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let (admin, http, https) = (free_port(), free_port(), free_port());
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
    fn reload(&self, extra: &str) {
        std::fs::write(&self.config, format!("{}{extra}", self.base)).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default()
    }

    async fn wait_ready(&self) {
        let ok = poll(Duration::from_secs(15), || async {
            admin_get(self.admin, "/readyz").await.map(|r| r.0) == Some(200)
        })
        .await;
        assert!(ok, "not ready in time; log:\n{}", self.log());
    }

    async fn metrics(&self) -> String {
        admin_get(self.admin, "/metrics").await.unwrap().1
    }
}

/// Polls `check` every 5 ms until it is true or `limit` passes.
async fn poll<F, Fut>(limit: Duration, mut check: F) -> bool
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

async fn raw_get(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
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

async fn admin_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    raw_get(addr, "admin", path).await
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// A CA and a leaf for `host`: (chain pem, key pem, leaf der, roots).
fn issue(host: &str) -> (String, String, Vec<u8>, rustls::RootCertStore) {
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
async fn https_get(
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

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_reaches_the_ingress_backend_with_the_secret_certificate_after_the_first_listing() {
    let fake = FakeKube::start().await;
    fake.hold_lists(true);
    let port = http_backend("web-a").await;
    let (chain, key, leaf, roots) = issue("shop.test");
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-a", port, READY));
    fake.apply(&secret("shop", "web-tls", &chain, &key));
    let mut ing = ingress("shop", "web", "shop.test", "web", Some("web-tls"));
    ing.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/configuration-snippet".to_owned(),
        "return 200;".to_owned(),
    )]));
    fake.apply(&ing);
    // Bad objects: a missing Service, a Secret that is no certificate.
    fake.apply(&ingress("shop", "broken", "broken.test", "nope", None));
    fake.apply(&secret("shop", "bad-tls", "not a cert", "nor a key"));
    let mut badcert = ingress("shop", "badcert", "bad.test", "web", Some("bad-tls"));
    badcert.metadata.annotations = Some(BTreeMap::from([(
        "nginx.ingress.kubernetes.io/ssl-redirect".to_owned(),
        "false".to_owned(),
    )]));
    fake.apply(&badcert);

    let proxy = Proxy::start(&fake, &["--publish-status-address", "192.0.2.10"]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        admin_get(proxy.admin, "/readyz").await.unwrap().0,
        503,
        "ready before the first listing"
    );
    fake.hold_lists(false);
    let released = Instant::now();
    proxy.wait_ready().await;
    println!(
        "ready {:?} after the lists were released",
        released.elapsed()
    );

    let (status, body, got_leaf) = https_get(proxy.https, "shop.test", roots).await;
    assert_eq!((status, body.as_str()), (200, "web-a"));
    assert_eq!(got_leaf, leaf, "not the certificate from the Secret");
    // TLS host: plain HTTP is redirected (nginx's ssl-redirect default).
    let (status, _) = raw_get(proxy.http, "shop.test", "/x").await.unwrap();
    assert_eq!(status, 308);
    // The Ingress with a bad certificate still routes (plain HTTP: ssl-redirect is off).
    assert_eq!(
        raw_get(proxy.http, "bad.test", "/").await.unwrap(),
        (200, "web-a".to_owned())
    );
    assert_eq!(
        raw_get(proxy.http, "broken.test", "/").await.unwrap().0,
        404
    );

    let m = proxy.metrics().await;
    for reason in ["missing_service", "invalid_secret"] {
        let line = format!("switchyard_kube_skipped_total{{kind=\"Ingress\",reason=\"{reason}\"}}");
        assert!(metric(&m, &line) >= 1.0, "{line} missing:\n{m}");
    }
    assert!(metric(&m, "switchyard_kube_unsupported_annotations_total") >= 1.0);
    assert!(proxy.log().contains("configuration-snippet"));

    let written = poll(Duration::from_secs(5), || async {
        fake.patches().iter().any(|(ns, name, body)| {
            ns == "shop" && name == "web" && body.to_string().contains("192.0.2.10")
        })
    })
    .await;
    assert!(written, "status not written: {:?}", fake.patches());
}

/// Runs `clients` request loops against `host` until `stop`; counts failures and hits.
fn load(
    addr: SocketAddr,
    host: &'static str,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> (Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
    let failed = Arc::new(AtomicUsize::new(0));
    let hits = Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..clients {
        let (stop, failed, hits) = (stop.clone(), failed.clone(), hits.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match raw_get(addr, host, "/").await {
                    Some((200, body)) => hits.lock().unwrap().push(body),
                    other => {
                        eprintln!("failed request: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
    }
    (failed, hits)
}

/// Waits until a request after now reaches `name`; returns how long that took.
async fn until_seen(hits: &std::sync::Mutex<Vec<String>>, name: &str) -> Duration {
    let start = Instant::now();
    let from = hits.lock().unwrap().len();
    let seen = poll(Duration::from_secs(10), || async {
        hits.lock().unwrap()[from..].iter().any(|h| h == name)
    })
    .await;
    assert!(seen, "{name} never reached");
    start.elapsed()
}

/// Requests made after `settle` that reached `name`.
async fn hits_after(hits: &std::sync::Mutex<Vec<String>>, settle: Duration, name: &str) -> usize {
    tokio::time::sleep(settle).await;
    let from = hits.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = hits.lock().unwrap();
    assert!(h.len() > from + 10, "too little traffic");
    h[from..].iter().filter(|x| *x == name).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_endpoint_slices_under_load_moves_traffic_without_a_failed_request() {
    let fake = FakeKube::start().await;
    let ports = [
        http_backend("b1").await,
        http_backend("b2").await,
        http_backend("b3").await,
    ];
    fake.apply(&class());
    fake.apply(&service("shop", "api"));
    fake.apply(&slice("shop", "api", "api-1", ports[0], READY));
    fake.apply(&ingress("shop", "api", "api.test", "api", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;

    let stop = Arc::new(AtomicBool::new(false));
    let (failed, hits) = load(proxy.http, "api.test", 4, stop.clone());
    until_seen(&hits, "b1").await;
    let mut latencies = Vec::new();
    fake.apply(&slice("shop", "api", "api-2", ports[1], READY));
    latencies.push(until_seen(&hits, "b2").await);
    fake.apply(&slice("shop", "api", "api-3", ports[2], READY));
    latencies.push(until_seen(&hits, "b3").await);
    fake.delete("EndpointSlice", "shop", "api-1");
    assert_eq!(hits_after(&hits, Duration::from_millis(200), "b1").await, 0);
    // b2 starts terminating: b3 is still ready, so b2 gets no new requests.
    fake.apply(&slice("shop", "api", "api-2", ports[1], TERMINATING));
    assert_eq!(hits_after(&hits, Duration::from_millis(200), "b2").await, 0);
    // Scale back up.
    fake.apply(&slice("shop", "api", "api-1", ports[0], READY));
    latencies.push(until_seen(&hits, "b1").await);
    stop.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let total = hits.lock().unwrap().len();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests (of {total})"
    );
    println!(
        "event → first request on the new endpoint: {latencies:?} ({total} requests, 0 failed)"
    );
    let m = proxy.metrics().await;
    let count = metric(&m, "switchyard_kube_publish_latency_seconds_count");
    let within = metric(
        &m,
        "switchyard_kube_publish_latency_seconds_bucket{le=\"0.1\"}",
    );
    let sum = metric(&m, "switchyard_kube_publish_latency_seconds_sum");
    println!(
        "publish latency: {within} of {count} publishes within 100 ms, mean {:.2} ms",
        sum / count * 1000.0
    );
    assert!(count >= 4.0 && within / count >= 0.9, "{m}");
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(1)),
        "{latencies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_only_terminating_endpoints_still_serves() {
    let fake = FakeKube::start().await;
    let port = http_backend("leaving").await;
    fake.apply(&class());
    fake.apply(&service("shop", "old"));
    fake.apply(&slice("shop", "old", "old-1", port, TERMINATING));
    fake.apply(&ingress("shop", "old", "old.test", "old", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "old.test", "/").await.unwrap(),
        (200, "leaving".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_gone_watches_and_an_api_server_outage_keep_the_table_and_traffic() {
    let fake = FakeKube::start().await;
    let (p1, p2) = (http_backend("one").await, http_backend("two").await);
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", p1, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    let ok = || async { raw_get(proxy.http, "web.test", "/").await == Some((200, "one".into())) };
    assert!(ok().await);
    let generation = metric(&proxy.metrics().await, "switchyard_snapshot_generation");

    // ERROR 410 on every open watch: each kind relists; identical objects, no new table.
    let lists = fake.lists("services");
    fake.bookmark();
    fake.compact();
    let relisted = poll(Duration::from_secs(10), || async {
        [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
        ]
        .iter()
        .all(|r| fake.lists(r) > lists)
    })
    .await;
    assert!(relisted, "no relist after 410");
    // Dropped connections, then HTTP 410 on the next watch requests: a fresh list again.
    // (Which kinds get the 410s depends on who reconnects first; any relist will do.)
    let all_lists = || {
        [
            "services",
            "endpointslices",
            "ingresses",
            "ingressclasses",
            "secrets",
        ]
        .iter()
        .map(|r| fake.lists(r))
        .sum::<u32>()
    };
    let lists = all_lists();
    fake.http_gone(5);
    fake.drop_connections();
    let relisted = poll(Duration::from_secs(15), || async { all_lists() > lists }).await;
    assert!(
        relisted,
        "no relist after an HTTP 410; log:\n{}",
        proxy.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = proxy.metrics().await;
    assert_eq!(
        metric(&m, "switchyard_snapshot_generation"),
        generation,
        "relists of identical objects changed the table"
    );
    assert!(metric(&m, "switchyard_kube_watch_restarts_total{kind=\"Service\"}") >= 1.0);

    // Every watcher gets an event, so each knows it is healthy again (a watcher only learns
    // that from an event); identical content, so still no new table.
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", p1, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    fake.apply(&secret("shop", "unused", "-", "-"));
    let healthy = poll(Duration::from_secs(10), || async {
        let log = proxy.log();
        log.rfind("kubernetes watch failed") <= log.rfind("kubernetes api reachable again")
    })
    .await;
    assert!(healthy, "watchers did not recover; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        metric(&proxy.metrics().await, "switchyard_snapshot_generation"),
        generation,
        "unchanged objects changed the table"
    );

    // The API server goes away: traffic keeps flowing, still ready, one log line.
    let logged = proxy.log().len();
    fake.set_down(true);
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        assert!(ok().await, "request failed while the api server was down");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(admin_get(proxy.admin, "/readyz").await.unwrap().0, 200);
    let log = proxy.log();
    assert_eq!(
        log[logged..].matches("kubernetes watch failed").count(),
        1,
        "{log}"
    );
    // It comes back: a change made meanwhile arrives.
    fake.apply(&slice("shop", "web", "web-1", p2, READY));
    fake.set_down(false);
    let moved = poll(Duration::from_secs(40), || async {
        raw_get(proxy.http, "web.test", "/").await == Some((200, "two".into()))
    })
    .await;
    assert!(
        moved,
        "change not seen after reconnect; log:\n{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_file_is_merged_with_the_cluster_objects() {
    let fake = FakeKube::start().await;
    let port = http_backend("from-kube").await;
    let fixed = http_backend("from-file").await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", port, READY));
    fake.apply(&ingress("shop", "web", "web.test", "web", None));
    let proxy = Proxy::start(&fake, &[]);
    proxy.wait_ready().await;
    proxy.reload(&format!(
        "[[services]]\nname = \"static\"\n[[services.endpoints]]\naddress = \"127.0.0.1:{fixed}\"\n\
         [[routes]]\nhost = \"static.test\"\nservice = \"static\"\n"
    ));
    let merged = poll(Duration::from_secs(10), || async {
        raw_get(proxy.http, "static.test", "/").await == Some((200, "from-file".into()))
    })
    .await;
    assert!(merged, "file service not served; log:\n{}", proxy.log());
    assert_eq!(
        raw_get(proxy.http, "web.test", "/").await.unwrap(),
        (200, "from-kube".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_at_start_keeps_the_proxy_unready_until_it_answers() {
    let fake = FakeKube::start().await;
    let port = http_backend("late").await;
    fake.apply(&class());
    fake.apply(&service("shop", "web"));
    fake.apply(&slice("shop", "web", "web-1", port, READY));
    fake.apply(&ingress("shop", "web", "late.test", "web", None));
    fake.set_down(true);
    let proxy = Proxy::start(&fake, &[]);
    let up = poll(Duration::from_secs(10), || async {
        admin_get(proxy.admin, "/livez").await.is_some()
    })
    .await;
    assert!(up, "admin never came up; log:\n{}", proxy.log());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(admin_get(proxy.admin, "/readyz").await.unwrap().0, 503);
    assert_eq!(raw_get(proxy.http, "late.test", "/").await.unwrap().0, 404);
    fake.set_down(false);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "late.test", "/").await.unwrap(),
        (200, "late".to_owned())
    );
    assert!(
        proxy.log().contains("kubernetes api reachable again"),
        "{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_namespace_limits_what_is_served() {
    let fake = FakeKube::start().await;
    let (pa, pb) = (http_backend("in-a").await, http_backend("in-b").await);
    fake.apply(&class());
    for (ns, port) in [("a", pa), ("b", pb)] {
        fake.apply(&service(ns, "web"));
        fake.apply(&slice(ns, "web", "web-1", port, READY));
        fake.apply(&ingress(ns, "web", &format!("{ns}.test"), "web", None));
    }
    let proxy = Proxy::start(&fake, &["--watch-namespace", "a"]);
    proxy.wait_ready().await;
    assert_eq!(
        raw_get(proxy.http, "a.test", "/").await.unwrap(),
        (200, "in-a".to_owned())
    );
    assert_eq!(raw_get(proxy.http, "b.test", "/").await.unwrap().0, 404);
}

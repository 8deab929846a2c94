//! The shared fixtures of the upstream Gateway API conformance suite (its
//! `conformance/base/manifests.yaml`), as our tests transcribe them: namespaces `infra`
//! (`gateway-conformance-infra`), `web` (`gateway-conformance-web-backend`, labelled
//! `gateway-conformance: backend`) and `app` (`gateway-conformance-app-backend`), Services
//! `infra/infra-backend-v1..v3`, `web/web-backend` and `app/app-backend-v1` answering their names,
//! and Gateways built by [`gateway`], each on its own port. Status is read back with
//! [`listener`], [`cond`] and [`route_cond`], and waited for with [`Conf::until`].

use crate::fake_kube::FakeKube;
use crate::fake_kube::harness::{Proxy, free_ports, http_backend, poll};
use crate::fake_kube::objects::{READY, service, slice};
use crate::gateway_support::{GW, get};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// Our controller name (the proxy's default).
pub const OURS: &str = "switchyard.dev/gateway-controller";

/// The fake cluster with the base fixtures and a running proxy.
pub struct Conf {
    /// The fake API server.
    pub fake: FakeKube,
    /// The proxy (`--gateway-api`).
    pub proxy: Proxy,
}

/// A Gateway `infra/name` of our class with `listeners`.
pub fn gateway(name: &str, listeners: Value) -> Value {
    json!({"apiVersion": GW, "kind": "Gateway",
        "metadata": {"name": name, "namespace": "infra"},
        "spec": {"gatewayClassName": "switchyard", "listeners": listeners}})
}

/// An HTTP listener on `port` admitting routes `from` (`Same`, `All`, or a `Selector` on
/// `gateway-conformance: backend`).
pub fn http(name: &str, port: SocketAddr, from: &str) -> Value {
    let namespaces = if from == "Selector" {
        json!({"from": "Selector",
               "selector": {"matchLabels": {"gateway-conformance": "backend"}}})
    } else {
        json!({ "from": from })
    };
    json!({"name": name, "protocol": "HTTP", "port": port.port(),
           "allowedRoutes": {"namespaces": namespaces}})
}

/// An HTTPRoute `ns/name` with `parentRefs` and `rules`.
pub fn route_to(ns: &str, name: &str, parents: Value, rules: Value) -> Value {
    json!({"apiVersion": GW, "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"parentRefs": parents, "rules": rules}})
}

/// One rule to Service `name` (port 80) of namespace `ns` (`None`: the route's).
pub fn rule_to(ns: Option<&str>, name: &str) -> Value {
    let mut r = json!({"name": name, "port": 80});
    if let Some(ns) = ns {
        r["namespace"] = json!(ns);
    }
    json!({ "backendRefs": [r] })
}

/// Starts the fake cluster with the base fixtures, applies `objects`, then the proxy.
pub async fn start(objects: &[Value]) -> Conf {
    let fake = FakeKube::start().await;
    fake.apply(&json!({"apiVersion": GW, "kind": "GatewayClass",
        "metadata": {"name": "switchyard"}, "spec": {"controllerName": OURS}}));
    for (ns, mut labels) in [
        ("infra", json!({})),
        ("web", json!({"gateway-conformance": "backend"})),
        ("app", json!({})),
    ] {
        // The label the API server puts on every Namespace.
        labels["kubernetes.io/metadata.name"] = json!(ns);
        fake.apply(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": labels}}));
    }
    for (ns, name) in [
        ("infra", "infra-backend-v1"),
        ("infra", "infra-backend-v2"),
        ("infra", "infra-backend-v3"),
        ("web", "web-backend"),
        ("app", "app-backend-v1"),
    ] {
        let backend = http_backend(name).await;
        fake.apply(&service(ns, name));
        fake.apply(&slice(ns, name, &format!("{name}-a"), backend, READY));
    }
    for o in objects {
        fake.apply(o);
    }
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    Conf { fake, proxy }
}

/// Free ports for Gateway listeners.
pub fn ports<const N: usize>() -> [SocketAddr; N] {
    free_ports()
}

/// The status of listener `name` of Gateway `infra/gw` (Null when absent).
pub fn listener(fake: &FakeKube, gw: &str, name: &str) -> Value {
    let g = fake.get("Gateway", "infra", gw).unwrap_or_default();
    let ls = g["status"]["listeners"].as_array().cloned();
    ls.unwrap_or_default()
        .into_iter()
        .find(|l| l["name"] == name)
        .unwrap_or_default()
}

/// (status, reason) of condition `ty` in `holder`'s `conditions`.
pub fn cond(holder: &Value, ty: &str) -> Option<(String, String)> {
    let c = holder["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?
        .clone();
    Some((
        c["status"].as_str()?.to_owned(),
        c["reason"].as_str()?.to_owned(),
    ))
}

/// Our `parents` entry of route `kind` `ns/name` for Gateway `infra/gw` (Null when absent).
pub fn route_parent(fake: &FakeKube, kind: &str, ns: &str, name: &str, gw: &str) -> Value {
    let r = fake.get(kind, ns, name).unwrap_or_default();
    let ps = r["status"]["parents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ps.into_iter()
        .find(|p| p["controllerName"] == OURS && p["parentRef"]["name"] == gw)
        .unwrap_or_default()
}

/// (status, reason) of condition `ty` of HTTPRoute `ns/name` for Gateway `infra/gw`.
pub fn route_cond(
    fake: &FakeKube,
    ns: &str,
    name: &str,
    gw: &str,
    ty: &str,
) -> Option<(String, String)> {
    cond(&route_parent(fake, "HTTPRoute", ns, name, gw), ty)
}

/// `(status, reason)` as owned strings, for comparisons.
pub fn is(status: &str, reason: &str) -> Option<(String, String)> {
    Some((status.to_owned(), reason.to_owned()))
}

impl Conf {
    /// Gateway `infra/name` as stored (Null when absent).
    pub fn gw(&self, name: &str) -> Value {
        self.fake.get("Gateway", "infra", name).unwrap_or_default()
    }

    /// Waits (10 s at most) until `check` holds; fails with `what`, `now()` and the log.
    pub async fn until(&self, what: &str, check: impl Fn() -> bool, now: impl Fn() -> Value) {
        let ok = poll(Duration::from_secs(10), || async { check() }).await;
        assert!(ok, "{what}: got {}; log:\n{}", now(), self.proxy.log());
    }

    /// Waits until HTTPRoute `ns/name`'s condition `ty` for Gateway `gw` is `want`.
    pub async fn route_is(&self, ns: &str, name: &str, gw: &str, ty: &str, want: (&str, &str)) {
        let what = format!("{ns}/{name} {ty} want {want:?}");
        self.until(
            &what,
            || route_cond(&self.fake, ns, name, gw, ty) == is(want.0, want.1),
            || route_parent(&self.fake, "HTTPRoute", ns, name, gw),
        )
        .await;
    }

    /// Waits until GET `path` on `addr` (host `host`) answers `status` (and `body`, if any).
    pub async fn expect(&self, addr: SocketAddr, host: &str, path: &str, status: u16, body: &str) {
        let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
        let ok = poll(Duration::from_secs(10), || async {
            get(addr, host, path, "")
                .await
                .is_some_and(|(s, b)| s == status && (body.is_empty() || b == body))
        })
        .await;
        let last = get(addr, host, path, "").await;
        assert!(
            ok,
            "{host}{path}: want {status} {body:?}, got {last:?}; log:\n{}",
            self.proxy.log()
        );
    }
}

/// A CA and a leaf for every name in `hosts`: (chain pem, key pem, roots).
pub fn issue_many(hosts: &[&str]) -> (String, String, rustls::RootCertStore) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let names = hosts.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>();
    let leaf = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    (
        format!("{}{}", leaf.pem(), ca.pem()),
        key.serialize_pem(),
        roots,
    )
}

/// GET `path` with `host` over TLS with SNI `sni` through `addr`: the status, or `None` when
/// the handshake or the request fails.
pub async fn tls_get(
    addr: SocketAddr,
    sni: &str,
    host: &str,
    roots: rustls::RootCertStore,
) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let fut = async {
        let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
        let name = rustls::pki_types::ServerName::try_from(sni.to_owned()).ok()?;
        let tls = connector.connect(name, tcp).await.ok()?;
        let io = hyper_util::rt::TokioIo::new(tls);
        let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::get("/")
            .header("host", host)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .ok()?;
        let resp = send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

/// Whether listener status `l` has (`ty`, `status`) conditions (any reason).
pub fn has(l: &Value, ty: &str, status: &str) -> bool {
    cond(l, ty).is_some_and(|c| c.0 == status)
}

/// Whether listener status `l` lists HTTPRoute among its `supportedKinds`.
pub fn kinds_http_route(l: &Value) -> bool {
    let kinds = l["supportedKinds"].as_array().cloned().unwrap_or_default();
    kinds.contains(&json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}))
}

/// The number of listeners in the status of Gateway `infra/gw`.
pub fn listener_count(c: &Conf, gw: &str) -> usize {
    let g = c.fake.get("Gateway", "infra", gw).unwrap_or_default();
    g["status"]["listeners"].as_array().map_or(0, Vec::len)
}

/// Waits until listener `name` of `gw` is Accepted, ResolvedRefs, lists HTTPRoute and has
/// `attached` routes, and `gw` has `count` listeners.
pub async fn listener_ok(c: &Conf, gw: &str, name: &str, attached: i64, count: usize) {
    let what = format!("{gw}/{name}: accepted, resolved, {attached} attached");
    c.until(
        &what,
        || {
            let l = listener(&c.fake, gw, name);
            has(&l, "Accepted", "True")
                && has(&l, "ResolvedRefs", "True")
                && kinds_http_route(&l)
                && l["attachedRoutes"] == attached
                && listener_count(c, gw) == count
        },
        || c.gw(gw),
    )
    .await;
}

/// A parentRef to Gateway `infra/name`, narrowed to listener `section`.
pub fn to_gateway(name: &str, section: Option<&str>) -> Value {
    let mut p = json!({"kind": "Gateway", "name": name, "namespace": "infra"});
    if let Some(s) = section {
        p["sectionName"] = json!(s);
    }
    json!([p])
}

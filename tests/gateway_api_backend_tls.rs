//! BackendTLSPolicy (gateway.networking.k8s.io/v1) through the fake API server and the real
//! binary, with TLS backends on 127.0.0.1 whose certificates a test CA issued. Facts
//! transcribed from the conformance tests BackendTLSPolicy, BackendTLSPolicySANValidation,
//! BackendTLSPolicyInvalidCACertificateRef, BackendTLSPolicyInvalidKind and
//! BackendTLSPolicyConflictResolution; GRPCRoute backends with a policy speak h2, and the
//! Service port's `appProtocol: kubernetes.io/h2c` is read.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod fake_kube;
mod gateway_support;
mod upstream_tls_support;

use fake_kube::FakeKube;
use fake_kube::harness::{Proxy, poll};
use fake_kube::objects::{READY, service, slice};
use gateway_support::{GW, Setup, route, setup};
use serde_json::{Value, json};
use std::time::Duration;
use upstream_tls_support::{Ca, backend};

const HOST: &str = "abc.example.com";
const SPIFFE: &str = "spiffe://abc.example.com/test-identity";

/// Service `infra/NAME` (port `http` 80) whose one endpoint is `port`.
fn backend_service(s: &Setup, name: &str, port: u16) {
    s.fake.apply(&service("infra", name));
    s.fake
        .apply(&slice("infra", name, &format!("{name}-a"), port, READY));
}

/// A policy for Service `svc` (all ports, or `section`), created at second `created`.
fn policy(name: &str, svc: &str, section: Option<&str>, created: u32, validation: Value) -> Value {
    json!({"apiVersion": GW, "kind": "BackendTLSPolicy",
        "metadata": {"name": name, "namespace": "infra",
            "creationTimestamp": format!("2025-01-01T00:00:{created:02}Z")},
        "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": svc,
            "sectionName": section}], "validation": validation}})
}

/// Validation with the CA in ConfigMap `ca`, `hostname` and `subjectAltNames`.
fn with_ca(hostname: &str, sans: Value) -> Value {
    json!({"caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": "ca"}],
        "hostname": hostname, "subjectAltNames": sans})
}

fn config_map(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "infra"}, "data": data})
}

/// An HTTPRoute `r` on `abc.example.com`: path `/P` → Service `P`, for each of `paths`.
fn routes_to(paths: &[&str]) -> Value {
    let rules: Vec<Value> = paths
        .iter()
        .map(|p| {
            json!({"matches": [{"path": {"type": "Exact", "value": format!("/{p}")}}],
            "backendRefs": [{"name": p, "port": 80}]})
        })
        .collect();
    route("infra", "r", &[HOST], json!(rules))
}

/// The (status, reason) of condition `ty` in our ancestor entry for Gateway infra/gw.
fn condition(fake: &FakeKube, policy: &str, ty: &str) -> Option<(String, String)> {
    let p = fake.get("BackendTLSPolicy", "infra", policy)?;
    let ours = p["status"]["ancestors"].as_array()?.iter().find(|a| {
        a["controllerName"] == "switchyard.dev/gateway-controller"
            && a["ancestorRef"]["name"] == "gw"
            && a["ancestorRef"]["kind"] == "Gateway"
    })?;
    let c = ours["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)?
        .clone();
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
}

async fn condition_is(fake: &FakeKube, proxy: &Proxy, policy: &str, ty: &str, want: (&str, &str)) {
    let want = Some((want.0.to_owned(), want.1.to_owned()));
    let ok = poll(Duration::from_secs(10), || async {
        condition(fake, policy, ty) == want
    })
    .await;
    let got = condition(fake, policy, ty);
    assert!(
        ok,
        "{policy} {ty}: want {want:?}, got {got:?}; log:\n{}",
        proxy.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_verify_the_hostname_or_the_subject_alt_names() {
    let s = setup(None, "Same").await;
    let ca = Ca::new("backend ca");
    let port = backend("tls", &ca, &[HOST, SPIFFE]).await.port();
    s.fake.apply(&config_map("ca", json!({"ca.crt": ca.pem()})));
    let cases = [
        ("plain", json!([])),
        ("san-dns", json!([{"type": "Hostname", "hostname": HOST}])),
        (
            "san-dns-mismatch",
            json!([{"type": "Hostname", "hostname": "dce.example.com"}]),
        ),
        ("san-uri", json!([{"type": "URI", "uri": SPIFFE}])),
        (
            "san-uri-mismatch",
            json!([{"type": "URI", "uri": "spiffe://def.example.com/test-identity"}]),
        ),
        (
            "multiple-mismatch",
            json!([{"type": "URI", "uri": "spiffe://def.example.com/x"},
            {"type": "Hostname", "hostname": "def.example.com"}]),
        ),
    ];
    for (i, (name, sans)) in cases.iter().enumerate() {
        backend_service(&s, name, port);
        let section = (i % 2 == 1).then_some("http");
        s.fake
            .apply(&policy(name, name, section, 1, with_ca(HOST, sans.clone())));
    }
    s.fake.apply(&routes_to(&cases.map(|c| c.0)));
    let ok = "tls HTTP/1.1 alpn http/1.1 sni abc.example.com";
    for name in ["plain", "san-dns", "san-uri"] {
        s.expect(HOST, &format!("/{name}"), "", 200, ok).await;
        condition_is(&s.fake, &s.proxy, name, "Accepted", ("True", "Accepted")).await;
        condition_is(
            &s.fake,
            &s.proxy,
            name,
            "ResolvedRefs",
            ("True", "ResolvedRefs"),
        )
        .await;
    }
    for name in ["san-dns-mismatch", "san-uri-mismatch", "multiple-mismatch"] {
        s.expect(HOST, &format!("/{name}"), "", 502, "").await;
        condition_is(&s.fake, &s.proxy, name, "Accepted", ("True", "Accepted")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_ca_refs_refuse_the_policy_and_its_backend_fails() {
    let s = setup(None, "Same").await;
    let ca = Ca::new("backend ca");
    let port = backend("tls", &ca, &[HOST]).await.port();
    s.fake.apply(&config_map("malformed", json!({})));
    s.fake.apply(&config_map("ca", json!({"ca.crt": ca.pem()})));
    let refs = |kind: &str, name: &str| json!({"caCertificateRefs": [{"group": "", "kind": kind, "name": name}], "hostname": HOST});
    let cases = [
        (
            "nonexistent",
            refs("ConfigMap", "nonexistent"),
            "InvalidCACertificateRef",
        ),
        (
            "malformed",
            refs("ConfigMap", "malformed"),
            "InvalidCACertificateRef",
        ),
        ("invalid-kind", refs("Secret", "ca"), "InvalidKind"),
    ];
    for (name, validation, _) in &cases {
        backend_service(&s, name, port);
        s.fake
            .apply(&policy(name, name, None, 1, validation.clone()));
    }
    s.fake.apply(&routes_to(&cases.each_ref().map(|c| c.0)));
    for (name, _, reason) in &cases {
        condition_is(
            &s.fake,
            &s.proxy,
            name,
            "Accepted",
            ("False", "NoValidCACertificate"),
        )
        .await;
        condition_is(&s.fake, &s.proxy, name, "ResolvedRefs", ("False", reason)).await;
        s.expect(HOST, &format!("/{name}"), "", 502, "").await;
    }
    // The CA appears under the name the policy gave: the policy is accepted and served.
    s.fake
        .apply(&config_map("nonexistent", json!({"ca.crt": ca.pem()})));
    condition_is(
        &s.fake,
        &s.proxy,
        "nonexistent",
        "Accepted",
        ("True", "Accepted"),
    )
    .await;
    s.expect(
        HOST,
        "/nonexistent",
        "",
        200,
        "tls HTTP/1.1 alpn http/1.1 sni abc.example.com",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_policies_for_one_target_the_older_wins() {
    let s = setup(None, "Same").await;
    let ca = Ca::new("backend ca");
    let port = backend("tls", &ca, &[HOST, "other.example.com"])
        .await
        .port();
    s.fake.apply(&config_map("ca", json!({"ca.crt": ca.pem()})));
    backend_service(&s, "conflicted", port);
    s.fake.apply(&policy(
        "conflicted-2",
        "conflicted",
        None,
        2,
        with_ca(HOST, json!([])),
    ));
    s.fake.apply(&policy(
        "conflicted-1",
        "conflicted",
        None,
        1,
        with_ca("other.example.com", json!([])),
    ));
    backend_service(&s, "both", port);
    s.fake.apply(&policy(
        "with-section",
        "both",
        Some("http"),
        3,
        with_ca("other.example.com", json!([])),
    ));
    s.fake.apply(&policy(
        "without-section",
        "both",
        None,
        4,
        with_ca(HOST, json!([])),
    ));
    s.fake.apply(&routes_to(&["conflicted", "both"]));
    let other = "tls HTTP/1.1 alpn http/1.1 sni other.example.com";
    s.expect(HOST, "/conflicted", "", 200, other).await;
    condition_is(
        &s.fake,
        &s.proxy,
        "conflicted-1",
        "Accepted",
        ("True", "Accepted"),
    )
    .await;
    condition_is(
        &s.fake,
        &s.proxy,
        "conflicted-2",
        "Accepted",
        ("False", "Conflicted"),
    )
    .await;
    s.expect(HOST, "/both", "", 200, other).await;
    for name in ["with-section", "without-section"] {
        condition_is(&s.fake, &s.proxy, name, "Accepted", ("True", "Accepted")).await;
    }
}

/// A plain-TCP backend speaking HTTP/1.1 or h2c (prior knowledge), answering the version.
async fn plain_backend() -> u16 {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: hyper::Request<hyper::body::Incoming>| {
                        let body = format!("plain {:?}", req.version());
                        async move {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(body)),
                            ))
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(socket), svc)
                    .await;
            });
        }
    });
    port
}

/// A gRPC-shaped POST of `path` over h2c to the proxy: (status, body).
async fn grpc_call(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let fut = async {
        let stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .ok()?;
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("http://{HOST}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"\0\0\0\0\0",
            )))
            .unwrap();
        let resp = send.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .ok()?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_route_backends_with_a_policy_speak_h2_and_app_protocol_h2c_is_read() {
    let s = setup(None, "Same").await;
    let ca = Ca::new("backend ca");
    let tls = backend("tls", &ca, &[HOST]).await.port();
    s.fake.apply(&config_map("ca", json!({"ca.crt": ca.pem()})));
    backend_service(&s, "grpc-tls", tls);
    s.fake.apply(&policy(
        "grpc",
        "grpc-tls",
        Some("http"),
        1,
        with_ca(HOST, json!([])),
    ));
    backend_service(&s, "grpc-mismatch", tls);
    s.fake.apply(&policy(
        "grpc-mismatch",
        "grpc-mismatch",
        Some("http"),
        1,
        with_ca("mismatch.example.com", json!([])),
    ));
    let method = |m: &str, svc: &str| {
        json!({"matches": [{"method": {"service": "pkg.Svc",
        "method": m}}], "backendRefs": [{"name": svc, "port": 80}]})
    };
    s.fake.apply(&json!({"apiVersion": GW, "kind": "GRPCRoute",
        "metadata": {"name": "g", "namespace": "infra"},
        "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [HOST],
            "rules": [method("Echo", "grpc-tls"), method("EchoTwo", "grpc-mismatch")]}}));
    // An HTTPRoute backend whose port says appProtocol kubernetes.io/h2c.
    let plain = plain_backend().await;
    let mut svc = service("infra", "h2c");
    svc.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].app_protocol =
        Some("kubernetes.io/h2c".into());
    s.fake.apply(&svc);
    s.fake.apply(&slice("infra", "h2c", "h2c-a", plain, READY));
    backend_service(&s, "h1", plain);
    s.fake.apply(&routes_to(&["h2c", "h1"]));

    let want = Some((200, "tls HTTP/2.0 alpn h2 sni abc.example.com".to_owned()));
    let ok = poll(Duration::from_secs(10), || async {
        grpc_call(s.port, "/pkg.Svc/Echo").await == want
    })
    .await;
    let got = grpc_call(s.port, "/pkg.Svc/Echo").await;
    assert!(ok, "want {want:?}, got {got:?}; log:\n{}", s.proxy.log());
    condition_is(&s.fake, &s.proxy, "grpc", "Accepted", ("True", "Accepted")).await;
    // The hostname is the name verified: a certificate without it is refused.
    assert_eq!(
        grpc_call(s.port, "/pkg.Svc/EchoTwo").await.map(|r| r.0),
        Some(502)
    );
    s.expect(HOST, "/h2c", "", 200, "plain HTTP/2.0").await;
    s.expect(HOST, "/h1", "", 200, "plain HTTP/1.1").await;
}

/// BackendTLSPolicy's CRD may not be installed: without it (404) the proxy is ready all the
/// same and serves HTTPRoutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_without_the_backend_tls_policy_crd() {
    let fake = FakeKube::start().await;
    fake.set_missing("backendtlspolicies", true);
    let proxy = Proxy::start(&fake, &["--gateway-api"]);
    proxy.wait_ready().await;
    assert!(fake.lists("gatewayclasses") >= 1);
}

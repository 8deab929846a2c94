//! TLS upstreams over real sockets: `h2` (HTTP/2 over TLS, ALPN h2) beside `https` (HTTP/1.1,
//! ALPN http/1.1), trust from inline PEM, a file or the system roots, and
//! `upstream_verify_names` checked instead of the SNI.
#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

mod common;
mod upstream_tls_support;

use common::http::{get, service, start};
use switchyard::config::Config;
use upstream_tls_support::{Ca, backend};

/// `upstream_ca` as an inline TOML multi-line string.
fn inline(pem: &str) -> String {
    format!("upstream_ca = \"\"\"\n{pem}\"\"\"")
}

/// A route for `host` to `service`.
fn route(host: &str, service: &str) -> String {
    format!("[[routes]]\nhost = \"{host}\"\nservice = \"{service}\"\n")
}

#[tokio::test]
async fn h2_upstreams_speak_http2_over_tls_and_https_ones_http1() {
    let ca = Ca::new("upstream ca");
    let b = backend("b", &ca, &["backend.internal"]).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca.pem()).unwrap();
    let sni = "upstream_sni = \"backend.internal\"";
    let body = format!(
        "{}{}{}{}",
        service(
            "h2",
            &[b],
            &format!("upstream_protocol = \"h2\"\n{sni}\n{}", inline(&ca.pem()))
        ),
        service(
            "h1",
            &[b],
            &format!(
                "upstream_protocol = \"https\"\n{sni}\nupstream_ca = \"{}\"",
                file.display()
            )
        ),
        route("h2.test", "h2"),
        route("h1.test", "h1"),
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "h2.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "b HTTP/2.0 alpn h2 sni backend.internal")
    );
    let (status, _, text) = get(addr, "h1.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "b HTTP/1.1 alpn http/1.1 sni backend.internal"),
        "https offers http/1.1 only, even to an endpoint that would speak h2"
    );
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let ca = Ca::new("upstream ca");
    let other = Ca::new("other ca");
    let b = backend("b", &ca, &["127.0.0.1"]).await;
    let body = format!(
        "{}{}",
        service(
            "s",
            &[b],
            &format!(
                "upstream_protocol = \"h2\"\nconnect_attempts = 1\n{}",
                inline(&other.pem())
            )
        ),
        route("s.test", "s"),
    );
    let (_app, addr) = start(&body).await;
    assert_eq!(get(addr, "s.test", "/").await.0, 502);
}

#[tokio::test]
async fn verify_names_are_checked_instead_of_the_sni() {
    let ca = Ca::new("upstream ca");
    let spiffe = "spiffe://cluster.local/ns/a/sa/b";
    let b = backend("b", &ca, &["backend.internal", spiffe]).await;
    let svc = |name: &str, sni: &str, names: &str| {
        service(
            name,
            &[b],
            &format!(
                "upstream_protocol = \"h2\"\nconnect_attempts = 1\nupstream_sni = \"{sni}\"\n\
                 upstream_verify_names = [{names}]\n{}",
                inline(&ca.pem())
            ),
        )
    };
    let body = format!(
        "{}{}{}{}{}{}",
        svc(
            "match",
            "other.sni",
            "\"nope.internal\", \"backend.internal\""
        ),
        svc("mismatch", "backend.internal", "\"nope.internal\""),
        svc("uri", "other.sni", &format!("\"{spiffe}\"")),
        route("match.test", "match"),
        route("mismatch.test", "mismatch"),
        route("uri.test", "uri"),
    );
    let (_app, addr) = start(&body).await;
    let (status, _, text) = get(addr, "match.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "b HTTP/2.0 alpn h2 sni other.sni"),
        "a listed name matches although the SNI does not"
    );
    assert_eq!(
        get(addr, "mismatch.test", "/").await.0,
        502,
        "no listed name: refused, although the SNI matches"
    );
    let (status, _, text) = get(addr, "uri.test", "/").await;
    assert_eq!(
        (status, text.as_str()),
        (200, "b HTTP/2.0 alpn h2 sni other.sni"),
        "a URI SAN"
    );
}

#[tokio::test]
async fn system_roots_do_not_trust_a_self_signed_endpoint() {
    let ca = Ca::new("private ca");
    let b = backend("b", &ca, &["127.0.0.1"]).await;
    let body = format!(
        "{}{}",
        service(
            "s",
            &[b],
            "upstream_protocol = \"https\"\nupstream_ca = \"system\"\nconnect_attempts = 1"
        ),
        route("s.test", "s"),
    );
    let (_app, addr) = start(&body).await;
    assert_eq!(get(addr, "s.test", "/").await.0, 502);
}

#[test]
fn check_names_bad_tls_values_with_their_path() {
    let text = "[[services]]\nname = \"s\"\nupstream_protocol = \"h2\"\n\
                upstream_ca = \"-----BEGIN CERTIFICATE-----\\nnot base64\\n-----END CERTIFICATE-----\\n\"\n\
                upstream_verify_names = [\"ok.test\", \"bad name\"]\n\
                [[services.endpoints]]\naddress = \"127.0.0.1:1\"\n\
                [[services]]\nname = \"t\"\nupstream_verify_names = [\"a.test\"]\n\
                [[services.endpoints]]\naddress = \"127.0.0.1:2\"\n\
                [[services]]\nname = \"u\"\nupstream_protocol = \"h2\"\n\
                [[services.endpoints]]\naddress = \"127.0.0.1:3\"\n";
    let err = Config::parse(text, "t").unwrap_err().to_string();
    for want in [
        "services[0].upstream_ca: inline PEM holds no usable certificate",
        "services[0].upstream_verify_names[1]: \"bad name\" is neither a DNS name nor an absolute URI (scheme://...)",
        "services[1].upstream_verify_names: only with upstream_protocol \"https\" or \"h2\" and upstream_verify = true",
        "services[2].upstream_ca: upstream_protocol \"h2\" needs a CA file (or \"system\") to verify the endpoints with (or upstream_verify = false)",
    ] {
        assert!(err.contains(want), "{want}\n in {err}");
    }
    let ok = "[[services]]\nname = \"s\"\nupstream_protocol = \"h2\"\nupstream_ca = \"system\"\n\
              [[services.endpoints]]\naddress = \"127.0.0.1:1\"\n";
    Config::parse(ok, "t").unwrap();
}

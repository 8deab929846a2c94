//! Setup shared by the HTTP/3 tests: the standard certificates, services and routes on a
//! TLS listener with `http3 = true`, and an HTTP/3 connection to it.
#![allow(dead_code, unreachable_pub, missing_docs)]

use super::client::H3;
use crate::common::https::{Certs, config_text, services_and_routes, start};
use crate::common::tls::within;

/// The standard certificates, services and routes, on a TLS listener with HTTP/3 on; `listener`
/// is more of the listener's keys, `extra` more config.
pub async fn start_h3(
    listener: &str,
    extra: &str,
) -> (switchyard::app::App, std::net::SocketAddr, Certs) {
    let certs = Certs::new();
    let text = config_text(&format!(
        "http3 = true\n{listener}{}{}{extra}",
        certs.toml(),
        services_and_routes().await
    ));
    let (app, addr) = start(&text).await;
    (app, addr, certs)
}

/// An HTTP/3 connection with `sni`; names without a certificate of their own are checked
/// against the default certificate.
pub async fn h3(addr: std::net::SocketAddr, certs: &Certs, sni: &str) -> H3 {
    let own = ["a.test", "b.test"].contains(&sni);
    let verify_as = (!own).then_some("default.test");
    within(
        "h3 connect",
        H3::connect_as(addr, certs.pki.roots(), sni, verify_as),
    )
    .await
    .unwrap()
}

/// The value of `switchyard_http_requests_total` for `service` and `code`, summed over routes.
pub async fn requests_total(app: &switchyard::app::App, service: &str, code: &str) -> f64 {
    let (_, text) = crate::common::admin_get(app.admin_addr(), "/metrics").await;
    text.lines()
        .filter(|l| l.starts_with("switchyard_http_requests_total{"))
        .filter(|l| l.contains(&format!("service=\"{service}\"")))
        .filter(|l| l.contains(&format!("code=\"{code}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

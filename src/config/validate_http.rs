//! Validation of the L7 sections: `[http]`, `[[listeners]]`, `[[certificates]]`, `[[hosts]]`,
//! `[[routes]]`. Certificate *files* are not read here (validation stays pure); they are
//! loaded when the router starts and by `switchyard check`.

use super::file::{RawCertificate, RawConfig, RawHost, RawListener, RawRoute};
use super::validate::{Issues, nonzero_duration, socket_addr, valid_name_or_issue};
use super::{HostConfig, HttpConfig, ListenerConfig, RouteConfig, ServiceConfig};
use crate::ingress::{Conflict, HostPattern};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;

/// hyper refuses request-head buffers below 8 KiB; above 1 MiB is a memory hazard.
const HEADER_BYTES: std::ops::RangeInclusive<usize> = 8192..=1024 * 1024;

pub(super) fn http(
    raw: &RawConfig,
    services: &[ServiceConfig],
    external_certificates: bool,
    issues: &mut Issues,
) -> HttpConfig {
    let service = |text: &str, path: String, issues: &mut Issues| {
        resolve_service(text, &path, raw, services, issues)
    };
    let default_service = raw
        .http
        .default_service
        .as_deref()
        .and_then(|s| service(s, "http.default_service".into(), issues));
    let trusted_proxies = raw
        .http
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, t)| cidr(t, &format!("http.trusted_proxies[{i}]"), issues))
        .collect();
    let listeners: Vec<ListenerConfig> = raw
        .listeners
        .iter()
        .enumerate()
        .filter_map(|(i, l)| listener(l, &format!("listeners[{i}]"), issues))
        .collect();
    let certificates = raw
        .certificates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| certificate(c, &format!("certificates[{i}]"), issues))
        .collect();
    let defaults: Vec<usize> = (0..raw.certificates.len())
        .filter(|&i| raw.certificates[i].default)
        .collect();
    if defaults.len() > 1 {
        issues.push(
            format!("certificates[{}].default", defaults[1]),
            format!(
                "only one certificate can be the default (certificates[{}] already is)",
                defaults[0]
            ),
        );
    }
    if raw.certificates.is_empty()
        && raw.passthrough.is_empty()
        && !external_certificates
        && let Some(i) = raw.listeners.iter().position(|l| l.tls)
    {
        issues.push(
            format!("listeners[{i}].tls"),
            "a TLS listener needs at least one [[certificates]] or [[passthrough]] entry \
             (or TLS Secrets: run and check with --kubernetes)",
        );
    }
    let hosts = raw
        .hosts
        .iter()
        .enumerate()
        .filter_map(|(i, h)| host(h, &format!("hosts[{i}]"), &service, issues))
        .collect();
    let routes = raw
        .routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let path = format!("routes[{i}]");
            let fence =
                super::validate_fence::fence(r.listeners.as_deref(), &path, &listeners, issues);
            let route = route(r, &path, &service, issues)?;
            Some(RouteConfig {
                listeners: fence,
                ..route
            })
        })
        .collect();
    let passthrough = super::validate_passthrough::passthrough(raw, services, &listeners, issues);
    let http = HttpConfig {
        default_service,
        trusted_proxies,
        forwarded: raw.http.forwarded,
        access_log: raw.http.access_log,
        listeners,
        certificates,
        default_certificate: defaults.first().copied(),
        hosts,
        routes,
        passthrough,
    };
    check_route_table(&http, raw, issues);
    http
}

/// A service named by its name or by the `ip:port` one of them listens on.
pub(super) fn resolve_service(
    text: &str,
    path: &str,
    raw: &RawConfig,
    services: &[ServiceConfig],
    issues: &mut Issues,
) -> Option<Arc<str>> {
    if let Some(s) = services.iter().find(|s| &*s.name == text) {
        return Some(Arc::clone(&s.name));
    }
    if let Ok(addr) = text.parse::<SocketAddr>()
        && let Some(s) = services.iter().find(|s| s.listen == Some(addr))
    {
        return Some(Arc::clone(&s.name));
    }
    // A service that exists but has its own problems was reported already.
    if !raw
        .services
        .iter()
        .any(|s| s.name == text || s.listen.as_deref() == Some(text))
    {
        issues.push(
            path,
            format!("no service named {text:?} (nor listening on it)"),
        );
    }
    None
}

/// A network (`10.0.0.0/8`) or a bare address, or an issue at `path`.
pub(super) fn cidr(text: &str, path: &str, issues: &mut Issues) -> Option<ipnet::IpNet> {
    let parsed = text
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(ipnet::IpNet::from));
    if parsed.is_none() {
        issues.push(path, format!("invalid address or CIDR {text:?}"));
    }
    parsed
}

fn listener(raw: &RawListener, path: &str, issues: &mut Issues) -> Option<ListenerConfig> {
    let before = issues.len();
    valid_name_or_issue(&raw.name, &format!("{path}.name"), issues);
    let listen = socket_addr(&raw.listen, &format!("{path}.listen"), issues);
    for (key, d) in [
        ("handshake_timeout", raw.handshake_timeout),
        ("header_read_timeout", raw.header_read_timeout),
        ("h2_idle_timeout", raw.h2_idle_timeout),
        ("h2_keepalive_timeout", raw.h2_keepalive_timeout),
    ] {
        nonzero_duration(d, &format!("{path}.{key}"), issues);
    }
    if !HEADER_BYTES.contains(&raw.max_header_bytes) {
        issues.push(
            format!("{path}.max_header_bytes"),
            format!(
                "{} is out of range {}..={}",
                raw.max_header_bytes,
                HEADER_BYTES.start(),
                HEADER_BYTES.end()
            ),
        );
    }
    if raw.h2_max_concurrent_streams == 0 {
        issues.push(
            format!("{path}.h2_max_concurrent_streams"),
            "must be at least 1",
        );
    }
    if raw.http3 && !raw.tls {
        issues.push(
            format!("{path}.http3"),
            "needs tls = true (HTTP/3 is always encrypted)",
        );
    }
    if issues.len() != before {
        return None;
    }
    Some(ListenerConfig {
        name: Arc::from(raw.name.as_str()),
        listen: listen?,
        tls: raw.tls,
        accept_proxy_protocol: raw.accept_proxy_protocol,
        keep_encoded_slashes: raw.keep_encoded_slashes,
        underscores_in_headers: raw.underscores_in_headers,
        handshake_timeout: raw.handshake_timeout,
        header_read_timeout: raw.header_read_timeout,
        max_header_bytes: raw.max_header_bytes,
        max_connections: NonZeroUsize::new(raw.max_connections),
        h2_max_concurrent_streams: raw.h2_max_concurrent_streams,
        h2_idle_timeout: raw.h2_idle_timeout,
        h2_keepalive_interval: Some(raw.h2_keepalive_interval).filter(|d| !d.is_zero()),
        h2_keepalive_timeout: raw.h2_keepalive_timeout,
        sections: Vec::new(),
        isolated: false,
        http3: raw.http3,
        http3_alt_svc_max_age: raw.http3_alt_svc_max_age,
    })
}

fn certificate(
    raw: &RawCertificate,
    path: &str,
    issues: &mut Issues,
) -> Option<crate::tls::CertSpec> {
    let before = issues.len();
    for (key, value) in [("cert", &raw.cert), ("key", &raw.key)] {
        if value.trim().is_empty() {
            issues.push(format!("{path}.{key}"), "a file path is required");
        }
    }
    for (i, h) in raw.hosts.iter().enumerate() {
        if let Err(e) = HostPattern::parse(h) {
            issues.push(format!("{path}.hosts[{i}]"), e.to_string());
        }
    }
    (issues.len() == before).then(|| crate::tls::CertSpec {
        cert: PathBuf::from(&raw.cert),
        key: PathBuf::from(&raw.key),
        hosts: raw.hosts.clone(),
        pem: None,
    })
}

pub(super) type ServiceRef<'a> = dyn Fn(&str, String, &mut Issues) -> Option<Arc<str>> + 'a;

fn host(
    raw: &RawHost,
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Option<HostConfig> {
    let pattern = HostPattern::parse(&raw.host)
        .map_err(|e| issues.push(format!("{path}.host"), e.to_string()))
        .ok();
    let default_service = match &raw.default_service {
        Some(s) => Some(service(s, format!("{path}.default_service"), issues)?),
        None => None,
    };
    Some(HostConfig {
        host: pattern?,
        redirect_https: raw.redirect_https,
        default_service,
    })
}

fn route(
    raw: &RawRoute,
    path: &str,
    service: &ServiceRef<'_>,
    issues: &mut Issues,
) -> Option<RouteConfig> {
    let host = match &raw.host {
        Some(h) => match HostPattern::parse(h) {
            Ok(p) => Some(Some(p)),
            Err(e) => {
                issues.push(format!("{path}.host"), e.to_string());
                None
            }
        },
        None => Some(None),
    };
    // A redirecting route forwards nothing: it needs no service (its name stays empty).
    let (target, backends) =
        if raw.redirect.is_some() && raw.service.is_none() && raw.backends.is_none() {
            (
                Some(Arc::from("")),
                Some(crate::ingress::BackendPolicy::default()),
            )
        } else {
            super::validate_backends::route_backends(raw, path, service, issues).unzip()
        };
    let before = issues.len();
    let filters = super::filters::filters(
        &super::filters::RawFilters {
            request_headers: raw.request_headers.as_ref(),
            response_headers: raw.response_headers.as_ref(),
            redirect: raw.redirect.as_ref(),
            rewrite: raw.rewrite.as_ref(),
            matched: (&raw.path, raw.path_type),
        },
        path,
        issues,
    );
    let allow_sources = raw
        .allow_sources
        .iter()
        .enumerate()
        .filter_map(|(i, t)| cidr(t, &format!("{path}.allow_sources[{i}]"), issues))
        .collect();
    if let Some(name) = &raw.sticky_cookie
        && !is_cookie_name(name)
    {
        issues.push(
            format!("{path}.sticky_cookie"),
            format!("invalid cookie name {name:?}: use letters, digits and !#$%&'*+-.^_`|~"),
        );
    }
    if let Some(name) = &raw.name
        && (name.is_empty() || name.len() > 253 || !name.bytes().all(|b| b.is_ascii_graphic()))
    {
        issues.push(
            format!("{path}.name"),
            format!("invalid route name {name:?}: use 1-253 visible ASCII characters"),
        );
    }
    let limits = super::policy::limits(
        raw.rate_limit.as_ref(),
        raw.max_connections_per_client,
        path,
        issues,
    );
    let cors = super::policy::cors(raw.cors.as_ref(), path, issues);
    let policy = super::upstream_policy::validate(
        raw.retry.as_ref(),
        raw.timeouts.as_ref(),
        raw.mirror.as_ref(),
        path,
        service,
        issues,
    );
    let conditions = super::matches::conditions(
        raw.method.as_deref(),
        &raw.headers,
        &raw.query,
        path,
        issues,
    );
    if raw.path_type == crate::ingress::PathType::RegularExpression
        && let Err(e) = crate::ingress::regex_paths::path_regex(&raw.path)
    {
        issues.push(format!("{path}.path"), e.to_string());
    }
    let host = host?;
    let name = raw.name.clone().unwrap_or_else(|| {
        let shown = host
            .as_ref()
            .map_or_else(|| "*".to_owned(), ToString::to_string);
        format!("{shown}{}", raw.path)
    });
    (issues.len() == before).then_some(())?;
    Some(RouteConfig {
        host,
        path: raw.path.clone(),
        path_type: raw.path_type,
        conditions: conditions?,
        service: target?,
        max_body_bytes: raw.max_body_bytes,
        allow_sources,
        sticky_cookie: raw.sticky_cookie.as_deref().map(Arc::from),
        name: name.into(),
        backends: backends?,
        filters,
        limits,
        cors,
        upstream: policy?,
        listeners: None,
        source: crate::config::RouteSource::File,
    })
}

/// A cookie name is an RFC 9110 token (RFC 6265 §4.1.1).
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// In a file, two routes for the same requests are a mistake, not a race between two teams'
/// Ingresses: report them (and invalid paths) as errors with their `routes[i]` path.
fn check_route_table(http: &HttpConfig, raw: &RawConfig, issues: &mut Issues) {
    if http.routes.len() != raw.routes.len() {
        return; // indices would not line up; the broken routes were reported already
    }
    let (_, conflicts) = crate::ingress::HttpRoutes::build_checked(http);
    for conflict in conflicts {
        let at = match &conflict {
            Conflict::Invalid { rule, .. } | Conflict::Duplicate { rule, .. } => {
                format!("routes[{rule}]")
            }
            Conflict::DuplicateHostDefault { .. } => "hosts".to_owned(),
        };
        issues.push(at, conflict.to_string());
    }
}

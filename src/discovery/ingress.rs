//! Ingresses (with their Services, TLS Secrets and annotations) → routes, hosts, certificates.
//!
//! Ingresses are translated oldest first (creation time, then namespace and name), so when
//! two of them disagree — the same host and path, one host's default backend, one Service's
//! backend settings — the oldest wins, deterministically, and the newer one is logged and
//! counted. Every problem is confined to the smallest unit it touches: a path naming a missing
//! Service or port is skipped (the Ingress's other paths still work), a TLS entry whose Secret
//! is missing or invalid is skipped (its hosts are then served with another certificate that
//! matches, or the default), an unknown `pathType` skips that path. Nothing here can fail the
//! whole translation.
//!
//! This pass is whole (O(Ingresses)): it reruns when an Ingress, IngressClass, Service or
//! Secret changes, not on EndpointSlice changes (the frequent ones), and routes are rebuilt
//! whole by `App::apply` anyway. Secrets are parsed and checked once per resourceVersion.

use super::annotations::{self, BackendSettings};
use super::annotations_upstream;
use super::filter_notes::routes as filter_routes;
use super::report::{ObjectReport, Reporter};
use super::state::{Key, Store, key_of};
use super::translate::service_name;
use crate::config::{HostConfig, RouteConfig};
use crate::ingress::{HostPattern, PathType};
use crate::tls::CertSpec;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What the Ingresses add to the config.
#[derive(Debug, Default)]
pub(super) struct IngressParts {
    /// Routes, oldest Ingress first.
    pub(super) routes: Vec<RouteConfig>,
    /// `namespace/name` of the Ingress of each route.
    pub(super) origins: Vec<Arc<str>>,
    /// Per-host settings (redirects, default backends).
    pub(super) hosts: Vec<HostConfig>,
    /// Certificates from TLS Secrets.
    pub(super) certificates: Vec<CertSpec>,
    /// The default backend of the oldest Ingress without host rules.
    pub(super) default_service: Option<Arc<str>>,
    /// Backend settings from annotations, by service name.
    pub(super) overrides: HashMap<Arc<str>, BackendSettings>,
    /// The Ingresses served (for the status writer).
    pub(super) served: Vec<Key>,
    /// Hosts passed through (`ssl-passthrough`), oldest Ingress first.
    pub(super) passthrough: Vec<crate::config::PassthroughConfig>,
    /// The `--default-ssl-certificate` Secret's certificate.
    pub(super) default_certificate: Option<CertSpec>,
}

/// Certificates checked once per Secret resourceVersion and host list: the spec, or why the
/// Secret is unusable.
pub(super) type CertCache = HashMap<(Key, Vec<String>), (String, Result<CertSpec, String>)>;

/// What the translation reads.
pub(super) struct Input<'a> {
    pub(super) services: &'a Store<Service>,
    pub(super) secrets: &'a Store<Secret>,
    pub(super) certs: &'a mut CertCache,
    pub(super) report: &'a mut Reporter,
    /// `--enable-ssl-passthrough`: honour `ssl-passthrough`.
    pub(super) ssl_passthrough: bool,
}

/// Translates the served Ingresses, given oldest first.
pub(super) fn translate(ingresses: &[&Arc<Ingress>], input: Input<'_>) -> IngressParts {
    let mut out = IngressParts::default();
    let mut hosts: BTreeMap<HostPattern, HostConfig> = BTreeMap::new();
    let mut override_owner: HashMap<Arc<str>, Arc<str>> = HashMap::new();
    let mut canaries = Vec::new();
    for ing in ingresses {
        let key = key_of(&***ing);
        let origin: Arc<str> = Arc::from(format!("{}/{}", key.0, key.1));
        let rv = ing.metadata.resource_version.clone().unwrap_or_default();
        let mut rep = input.report.for_object("Ingress", &key, &rv);
        let Some(spec) = &ing.spec else { continue };
        out.served.push(key.clone());
        let notes = annotations::parse(ing.metadata.annotations.as_ref());
        for a in &notes.unsupported {
            rep.unsupported(a);
        }
        if notes.backends.canary {
            canaries.extend(super::canary::rules(
                ing,
                &key,
                &notes.backends,
                input.services,
                &mut rep,
            ));
            continue;
        }
        let policy = notes.backends.policy(&key.0, input.services, &mut rep);
        let mut backends: Vec<Arc<str>> = Vec::new();
        let mut resolve =
            |b: &IngressBackend, rep: &mut super::report::ObjectReport<'_>| match backend(
                &key.0,
                b,
                input.services,
            ) {
                Ok(name) => {
                    backends.push(Arc::clone(&name));
                    Some(name)
                }
                Err((reason, detail)) => {
                    rep.skip(reason, &detail);
                    None
                }
            };
        let upstream = annotations_upstream::upstream_policy(&notes.upstream, &mut rep, |ns, b| {
            backend(ns, b, input.services)
        });
        let mut rule_hosts = Vec::new();
        let mut roots = Vec::new();
        for rule in spec.rules.iter().flatten() {
            let Ok(host) = rule_host(rule.host.as_deref(), &mut rep) else {
                continue;
            };
            rule_hosts.push(host.clone());
            for p in rule.http.iter().flat_map(|h| &h.paths) {
                let path_type = match p.path_type.as_str() {
                    "Exact" => PathType::Exact,
                    "Prefix" => PathType::Prefix,
                    "ImplementationSpecific" => PathType::ImplementationSpecific,
                    other => {
                        rep.skip("invalid_path", &format!("unknown pathType {other:?}"));
                        continue;
                    }
                };
                let Some(service) = resolve(&p.backend, &mut rep) else {
                    continue;
                };
                let path = p.path.clone().unwrap_or_else(|| "/".to_owned());
                let filters = match notes.filters.for_path(&path, notes.use_regex) {
                    Ok(f) => f,
                    Err(detail) => {
                        rep.skip("invalid_annotation", &detail);
                        continue;
                    }
                };
                if path == "/" {
                    roots.push((host.clone(), Arc::clone(&service)));
                }
                // After the rewrite and the passthrough roots, which read the path as written.
                let Some((path, path_type)) =
                    super::regex_path::apply(notes.use_regex, path, path_type, &mut rep)
                else {
                    continue;
                };
                let route = RouteConfig {
                    host: host.clone(),
                    path,
                    path_type,
                    conditions: Default::default(),
                    service,
                    max_body_bytes: notes.max_body_bytes.flatten(),
                    allow_sources: notes.extras.allow_sources.clone(),
                    sticky_cookie: notes.extras.sticky_cookie.clone(),
                    name: Arc::clone(&origin),
                    backends: policy.clone(),
                    filters,
                    limits: notes.extras.limits.clone(),
                    cors: notes.extras.cors.clone(),
                    upstream: upstream.clone(),
                    listeners: None,
                    source: crate::config::RouteSource::Ingress(Arc::clone(&origin)),
                };
                out.routes.push(route);
                out.origins.push(Arc::clone(&origin));
                filter_routes::push_aliases(&mut out, &notes.filters, &origin);
            }
        }
        filter_routes::push_app_roots(&mut out, &rule_hosts, &notes.filters, &origin);
        if let Some(default) = &spec.default_backend
            && let Some(service) = resolve(default, &mut rep)
        {
            let named: Vec<&HostPattern> = rule_hosts.iter().flatten().collect();
            if named.is_empty() {
                out.default_service.get_or_insert(service);
            } else {
                for h in named {
                    let entry = hosts.entry(h.clone()).or_insert_with(|| host_config(h));
                    entry
                        .default_service
                        .get_or_insert_with(|| Arc::clone(&service));
                }
            }
        }
        if notes.ssl_passthrough {
            super::edge::passthrough(
                &rule_hosts,
                &roots,
                input.ssl_passthrough,
                &mut rep,
                &mut out.passthrough,
            );
        }
        let mut tls_hosts = Vec::new();
        for tls in spec.tls.iter().flatten() {
            let mut names: Vec<String> = tls.hosts.iter().flatten().cloned().collect();
            if names.is_empty() {
                // No hosts listed: the certificate is for the Ingress's own rule hosts.
                names = rule_hosts.iter().flatten().map(|h| h.to_string()).collect();
            }
            tls_hosts.extend(names.iter().filter_map(|h| HostPattern::parse(h).ok()));
            let Some(secret) = tls.secret_name.as_deref() else {
                continue; // no secretName: served with the default certificate
            };
            let skey = (key.0.clone(), secret.to_owned());
            let valid: Vec<String> = names
                .into_iter()
                .filter(|h| {
                    let ok = HostPattern::parse(h).is_ok();
                    if !ok {
                        rep.skip("invalid_host", &format!("tls host {h:?}"));
                    }
                    ok
                })
                .collect();
            if valid.is_empty() {
                rep.skip(
                    "invalid_secret",
                    &format!("tls entry for {secret} names no hosts"),
                );
                continue;
            }
            match cert_of(&skey, valid, input.secrets, input.certs) {
                Ok(spec) => out.certificates.push(spec),
                Err((reason, detail)) => rep.skip(reason, &detail),
            }
        }
        let redirect_tls = notes.ssl_redirect.unwrap_or(true);
        for h in rule_hosts.iter().flatten() {
            let wants = notes.force_ssl_redirect || (redirect_tls && tls_hosts.contains(h));
            if wants {
                hosts
                    .entry(h.clone())
                    .or_insert_with(|| host_config(h))
                    .redirect_https = true;
            }
        }
        if !notes.backend.is_empty() {
            for service in backends {
                match override_owner.get(&service) {
                    Some(owner) if out.overrides.get(&service) != Some(&notes.backend) => {
                        rep.skip(
                            "conflicting_settings",
                            &format!("backend settings for {service} already set by {owner}"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        override_owner.insert(Arc::clone(&service), Arc::clone(&origin));
                        out.overrides.insert(service, notes.backend.clone());
                    }
                }
            }
        }
    }
    out.hosts = hosts.into_values().collect();
    super::canary::apply(&mut out.routes, canaries, input.report);
    out
}

fn host_config(h: &HostPattern) -> HostConfig {
    HostConfig {
        host: h.clone(),
        redirect_https: false,
        default_service: None,
    }
}

/// The service name an Ingress backend points at, or why it cannot be used.
pub(super) fn backend(
    namespace: &str,
    b: &IngressBackend,
    services: &Store<Service>,
) -> Result<Arc<str>, (&'static str, String)> {
    let Some(sb) = &b.service else {
        return Err((
            "unsupported_backend",
            "resource backends are not supported".into(),
        ));
    };
    let Some(svc) = services.get(&(namespace.to_owned(), sb.name.clone())) else {
        return Err((
            "missing_service",
            format!("service {namespace}/{} not found", sb.name),
        ));
    };
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Err((
            "external_name",
            format!("service {namespace}/{} is ExternalName", sb.name),
        ));
    }
    let want = sb.port.as_ref();
    let port = spec.and_then(|s| s.ports.as_ref()).and_then(|ports| {
        ports.iter().find(|p| match want {
            Some(w) if w.number.is_some() => w.number == Some(p.port),
            Some(w) => w.name.is_some() && w.name == p.name,
            None => ports.len() == 1,
        })
    });
    let Some(port) = port else {
        return Err((
            "missing_port",
            format!("service {namespace}/{} has no port {want:?}", sb.name),
        ));
    };
    service_name(namespace, &sb.name, port)
        .ok_or_else(|| ("invalid_name", format!("service {namespace}/{}", sb.name)))
}

/// The checked certificate of a TLS Secret for `hosts` (cached by resourceVersion).
pub(super) fn cert_of(
    key: &Key,
    hosts: Vec<String>,
    secrets: &Store<Secret>,
    cache: &mut CertCache,
) -> Result<CertSpec, (&'static str, String)> {
    let name = format!("secret/{}/{}", key.0, key.1);
    let Some(secret) = secrets.get(key) else {
        return Err(("missing_secret", format!("{name} not found")));
    };
    let rv = secret.metadata.resource_version.clone().unwrap_or_default();
    let cache_key = (key.clone(), hosts);
    if let Some((seen, result)) = cache.get(&cache_key)
        && *seen == rv
    {
        return result.clone().map_err(|e| ("invalid_secret", e));
    }
    let result = check_secret(secret, &name, cache_key.1.clone());
    cache.insert(cache_key, (rv, result.clone()));
    result.map_err(|e| ("invalid_secret", e))
}

/// Loads the Secret's pair the way the router will (as the default, so a certificate without
/// DNS names is still accepted when hosts are listed or it ends up the default).
fn check_secret(secret: &Secret, name: &str, hosts: Vec<String>) -> Result<CertSpec, String> {
    if secret.type_.as_deref() != Some("kubernetes.io/tls") {
        return Err(format!("{name}: not of type kubernetes.io/tls"));
    }
    let get = |k: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| b.0.clone())
    };
    let (Some(cert), Some(key)) = (get("tls.crt"), get("tls.key")) else {
        return Err(format!("{name}: needs tls.crt and tls.key"));
    };
    let spec = CertSpec::from_pem(name, cert, key, hosts);
    crate::tls::CertStore::load(std::slice::from_ref(&spec), Some(0)).map_err(|e| e.to_string())?;
    Ok(spec)
}

/// The host of an Ingress rule (`None`: any host), or `Err` when it is invalid (reported and
/// counted as `invalid_host`).
pub(super) fn rule_host(
    host: Option<&str>,
    rep: &mut ObjectReport<'_>,
) -> Result<Option<HostPattern>, ()> {
    match host.filter(|h| !h.is_empty()) {
        None => Ok(None),
        Some(h) => HostPattern::parse(h)
            .map(Some)
            .map_err(|e| rep.skip("invalid_host", &format!("rule host {h:?}: {e}"))),
    }
}

//! The TLS edge from the cluster: `--default-ssl-certificate` (the certificate for unmatched
//! SNI, from a TLS Secret) and `ssl-passthrough` (an Ingress's hosts passed through undecrypted
//! on the TLS listeners, with `--enable-ssl-passthrough`), as ingress-nginx has them.
//!
//! - The default certificate's Secret must be in the watched namespaces (the Secret watcher
//!   sees only those); `--watch-namespace` set to another one is refused at start. A Secret that
//!   is missing or invalid is reported (`kind="Secret"`) and the generated certificate is
//!   served meanwhile. A `default = true` certificate in the file wins over the flag.
//! - As in ingress-nginx, passthrough needs the controller flag: without it the annotation is
//!   reported unsupported and the Ingress is served as if it were not there. With it, each
//!   rule host goes to the backend of that host's `/` path (a rule without a host, or without a
//!   `/` path, is skipped and reported). A host an older Ingress already passes through is
//!   skipped (`conflicting_settings`). The HTTP routes of the Ingress stay (plain HTTP still
//!   reaches them on the HTTP listeners).

use super::DiscoveryError;
use super::KubeOptions;
use super::KubeParts;
use super::ingress::{CertCache, cert_of};
use super::report::{ObjectReport, Reporter};
use super::state::{Key, Store};
use crate::config::{Config, PassthroughConfig};
use crate::ingress::HostPattern;
use crate::tls::CertSpec;
use k8s_openapi::api::core::v1::Secret;
use std::sync::Arc;

/// The `--default-ssl-certificate` Secret's key, checked against what is watched.
pub(super) fn default_certificate_key(
    options: &KubeOptions,
) -> Result<Option<Key>, DiscoveryError> {
    let Some(value) = options.default_certificate.as_deref() else {
        return Ok(None);
    };
    let err = |reason| DiscoveryError::DefaultCertificate {
        value: value.to_owned(),
        reason,
    };
    let (ns, name) = value
        .split_once('/')
        .ok_or_else(|| err("expected namespace/name"))?;
    if ns.is_empty() || name.is_empty() || name.contains('/') {
        return Err(err("expected namespace/name"));
    }
    if options.namespace.as_deref().is_some_and(|w| w != ns) {
        return Err(err(
            "the Secret must be in the namespace given to --watch-namespace",
        ));
    }
    Ok(Some((ns.to_owned(), name.to_owned())))
}

/// The default certificate's spec, or `None` (reported) when its Secret is missing or bad.
pub(super) fn default_certificate(
    key: Option<&Key>,
    secrets: &Store<Secret>,
    certs: &mut CertCache,
    report: &mut Reporter,
) -> Option<CertSpec> {
    match cert_of(key?, Vec::new(), secrets, certs) {
        Ok(spec) => Some(spec),
        Err((reason, detail)) => {
            let detail = format!("--default-ssl-certificate {detail} (serving the generated one)");
            report.once("Secret", reason, &detail);
            None
        }
    }
}

/// The passthrough entries of one `ssl-passthrough` Ingress: `hosts` are its rule hosts,
/// `roots` the services of their `/` paths.
pub(super) fn passthrough(
    hosts: &[Option<HostPattern>],
    roots: &[(Option<HostPattern>, Arc<str>)],
    enabled: bool,
    rep: &mut ObjectReport<'_>,
    out: &mut Vec<PassthroughConfig>,
) {
    if !enabled {
        rep.unsupported("ssl-passthrough=true (needs the --enable-ssl-passthrough flag)");
        return;
    }
    for host in hosts {
        let Some(host) = host else {
            rep.skip(
                "invalid_passthrough",
                "ssl-passthrough on a rule without a host",
            );
            continue;
        };
        let Some((_, service)) = roots.iter().find(|(h, _)| h.as_ref() == Some(host)) else {
            rep.skip(
                "invalid_passthrough",
                &format!("ssl-passthrough host {host} has no usable / path"),
            );
            continue;
        };
        if out.iter().any(|p| p.hosts.contains(host)) {
            rep.skip(
                "conflicting_settings",
                &format!("{host} is already passed through by an older ingress"),
            );
            continue;
        }
        out.push(PassthroughConfig {
            hosts: vec![host.clone()],
            service: Arc::clone(service),
            listeners: Vec::new(),
            deep_wildcards: false,
        });
    }
}

/// Adds the cluster's passthrough names and default certificate to the merged config (the
/// file's entries first; the file's default certificate wins).
pub(super) fn merge(config: &mut Config, parts: &KubeParts) {
    config
        .http
        .passthrough
        .extend(parts.passthrough.iter().cloned());
    if config.http.default_certificate.is_none()
        && let Some(spec) = &parts.default_certificate
    {
        config.http.default_certificate = Some(config.http.certificates.len());
        config.http.certificates.push(spec.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(value: &str, namespace: Option<&str>) -> KubeOptions {
        KubeOptions {
            default_certificate: Some(value.to_owned()),
            namespace: namespace.map(str::to_owned),
            ..KubeOptions::default()
        }
    }

    #[test]
    fn the_default_certificate_flag_is_namespace_slash_name_in_a_watched_namespace() {
        let key = default_certificate_key(&options("infra/tls", None)).unwrap();
        assert_eq!(key, Some(("infra".to_owned(), "tls".to_owned())));
        let key = default_certificate_key(&options("infra/tls", Some("infra"))).unwrap();
        assert!(key.is_some());
        for bad in ["tls", "/tls", "infra/", "a/b/c"] {
            let err = default_certificate_key(&options(bad, None)).unwrap_err();
            assert!(err.to_string().contains("expected namespace/name"), "{err}");
        }
        let err = default_certificate_key(&options("infra/tls", Some("shop"))).unwrap_err();
        assert!(err.to_string().contains("--watch-namespace"), "{err}");
        assert_eq!(
            default_certificate_key(&KubeOptions::default()).unwrap(),
            None
        );
    }

    fn host(h: &str) -> Option<HostPattern> {
        Some(HostPattern::parse(h).unwrap())
    }

    #[test]
    fn passthrough_takes_each_host_to_its_root_path_backend_once() {
        let mut reporter = Reporter::default();
        let key = ("shop".to_owned(), "db".to_owned());
        let mut rep = reporter.for_object("Ingress", &key, "1");
        let hosts = [
            host("db.test"),
            None,
            host("noroot.test"),
            host("*.raw.test"),
        ];
        let roots = [
            (host("db.test"), Arc::from("shop/db:tls")),
            (host("*.raw.test"), Arc::from("shop/raw:tls")),
        ];
        let mut out = Vec::new();
        passthrough(&hosts, &roots, true, &mut rep, &mut out);
        let got: Vec<(String, &str)> = out
            .iter()
            .map(|p| (p.hosts[0].to_string(), &*p.service))
            .collect();
        assert_eq!(
            got,
            [
                ("db.test".to_owned(), "shop/db:tls"),
                ("*.raw.test".to_owned(), "shop/raw:tls")
            ]
        );
        // A newer Ingress naming db.test again does not take it over.
        passthrough(&hosts[..1], &roots[1..], true, &mut rep, &mut out);
        passthrough(&hosts[..1], &roots, true, &mut rep, &mut out);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn passthrough_without_the_flag_adds_nothing() {
        let mut reporter = Reporter::default();
        let key = ("shop".to_owned(), "db".to_owned());
        let mut rep = reporter.for_object("Ingress", &key, "1");
        let mut out = Vec::new();
        let roots = [(host("db.test"), Arc::from("shop/db:tls"))];
        passthrough(&[host("db.test")], &roots, false, &mut rep, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn the_flag_certificate_becomes_the_default_unless_the_file_has_one() {
        let spec = CertSpec::from_pem("secret/infra/tls", Vec::new(), Vec::new(), Vec::new());
        let parts = KubeParts {
            default_certificate: Some(spec.clone()),
            passthrough: vec![PassthroughConfig {
                hosts: vec![HostPattern::parse("db.test").unwrap()],
                service: Arc::from("shop/db:tls"),
                listeners: Vec::new(),
                deep_wildcards: false,
            }],
            ..KubeParts::default()
        };
        let mut config = Config::parse("[admin]\n", "t").unwrap();
        merge(&mut config, &parts);
        assert_eq!(config.http.certificates, std::slice::from_ref(&spec));
        assert_eq!(config.http.default_certificate, Some(0));
        assert_eq!(config.http.passthrough, parts.passthrough);
        let mut with_own = Config::parse("[admin]\n", "t").unwrap();
        with_own.http.certificates = vec![CertSpec::from_pem(
            "file",
            Vec::new(),
            Vec::new(),
            Vec::new(),
        )];
        with_own.http.default_certificate = Some(0);
        merge(&mut with_own, &parts);
        assert_eq!(
            with_own.http.certificates.len(),
            1,
            "the file's default wins"
        );
        assert_eq!(with_own.http.default_certificate, Some(0));
    }
}

//! Loading certificates and finding the one for a server name.
//!
//! A [`CertStore`] is immutable: it is built whole by [`CertStore::load`] and replaced whole on
//! reload (see the [module docs](super)). Loading checks everything a handshake would trip over
//! later — PEM syntax, a usable key, the key matching the leaf certificate, valid host names —
//! so a broken file is reported once, at load time, with its path, instead of failing
//! handshakes one by one.
//!
//! Host names come from the `hosts` list when one is given, otherwise from the DNS names in the
//! certificate's subjectAltName (as HAProxy does with `crt`). Lookup is exact name first, then
//! a wildcard covering exactly one label (`*.example.com` matches `foo.example.com`, not
//! `example.com` nor `a.b.example.com`, per RFC 6125 §6.4.3), then the default certificate:
//! the configured one, else the generated one of [`super::default_cert`] (never "the first
//! certificate", which would show a stranger another host's names). When two certificates
//! claim the same name, the one listed first wins.
//!
//! [`CertStore::changed_on_disk`] is for reload polling. It compares each file's metadata (size,
//! mtime and, on Unix, device and inode — so Kubernetes' symlink swap of a Secret volume is
//! seen) with what was recorded before the file was read. Equal metadata proves equal content
//! only when the file's mtime is older than the filesystem's timestamp granularity at the time
//! of the comparison; for a file written just before it was loaded (the "racily clean" case git
//! knows), the content hash is compared as well until the file is old enough. That bookkeeping
//! lives in [`stamp`].

mod stamp;

use super::TlsError;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use stamp::{FileStamp, read_file};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One certificate to serve: a PEM chain, its key, and the names it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSpec {
    /// PEM file with the leaf certificate first, then intermediates. With [`pem`](Self::pem)
    /// set it only names the source in messages (e.g. `secret/ns/name/tls.crt`).
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1); may be the same file as `cert`.
    /// With [`pem`](Self::pem) set it only names the source in messages.
    pub key: PathBuf,
    /// Server names (exact or `*.one-label` wildcards); empty means the certificate's DNS SANs.
    pub hosts: Vec<String>,
    /// In-memory PEM (a Kubernetes TLS Secret) used instead of reading the files. Checked
    /// exactly like files; it is never "changed on disk".
    pub pem: Option<Arc<PemPair>>,
}

/// A certificate chain and its key as PEM bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemPair {
    /// The chain, leaf first.
    pub cert: Vec<u8>,
    /// The private key.
    pub key: Vec<u8>,
}

impl CertSpec {
    /// A spec for in-memory PEM; `origin` names it in error messages.
    pub fn from_pem(origin: &str, cert: Vec<u8>, key: Vec<u8>, hosts: Vec<String>) -> CertSpec {
        CertSpec {
            cert: PathBuf::from(format!("{origin}/tls.crt")),
            key: PathBuf::from(format!("{origin}/tls.key")),
            hosts,
            pem: Some(Arc::new(PemPair { cert, key })),
        }
    }
}

/// The certificate a ClientHello gets, and whether it is the default (no name matched).
#[derive(Debug, Clone)]
pub struct Picked {
    /// The certificate and key.
    pub key: Arc<CertifiedKey>,
    /// True when no certificate matched the SNI (or none was sent): the default was served.
    pub fallback: bool,
}

/// Certificates indexed by server name, plus a default. Immutable once loaded.
pub struct CertStore {
    keys: Vec<Arc<CertifiedKey>>,
    /// Served when no name matches: `keys[configured]`, or the generated certificate.
    fallback: Arc<CertifiedKey>,
    /// Lowercase exact name → index into `keys`.
    exact: HashMap<Box<str>, usize>,
    /// Lowercase parent of a wildcard (`example.com` for `*.example.com`) → index into `keys`.
    wildcard: HashMap<Box<str>, usize>,
    default: Option<usize>,
    files: Vec<FileStamp>,
}

impl CertStore {
    /// Reads, checks and indexes every spec. `default` is the index of the certificate served
    /// when no name matches (unknown or missing SNI); `None` means the generated default
    /// certificate ([`super::default_cert`]).
    ///
    /// An empty `specs` gives a store that serves only the default (a TLS listener whose
    /// certificates have not arrived yet still completes handshakes, and HTTP answers 404).
    pub fn load(specs: &[CertSpec], default: Option<usize>) -> Result<CertStore, TlsError> {
        if let Some(index) = default
            && index >= specs.len()
        {
            return Err(TlsError::DefaultOutOfRange {
                index,
                count: specs.len(),
            });
        }
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let mut store = CertStore {
            keys: Vec::with_capacity(specs.len()),
            fallback: super::default_cert::generated()?,
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            default,
            files: Vec::with_capacity(specs.len() * 2),
        };
        for (index, spec) in specs.iter().enumerate() {
            let loaded = load_one(spec, default == Some(index), &provider)?;
            for host in &loaded.hosts {
                let (map, name) = match host.strip_prefix("*.") {
                    Some(parent) => (&mut store.wildcard, parent),
                    None => (&mut store.exact, host.as_str()),
                };
                // First listed wins, so adding a certificate never steals an existing name.
                map.entry(name.into()).or_insert(index);
            }
            store.keys.push(Arc::new(loaded.key));
            store.files.extend(loaded.files);
        }
        if let Some(key) = default.and_then(|index| store.keys.get(index)) {
            store.fallback = Arc::clone(key);
        }
        Ok(store)
    }

    /// The certificate for this exact host name or its one-label wildcard, ignoring case and a
    /// trailing dot. Does not fall back to the default.
    pub fn for_host(&self, host: &str) -> Option<&Arc<CertifiedKey>> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let host: Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let index = self.exact.get(&*host).or_else(|| {
            let (label, parent) = host.split_once('.')?;
            if label.is_empty() {
                return None;
            }
            self.wildcard.get(parent)
        })?;
        self.keys.get(*index)
    }

    /// The certificate for a ClientHello's SNI: [`for_host`](Self::for_host), else the default.
    pub fn for_sni(&self, server_name: Option<&str>) -> Arc<CertifiedKey> {
        self.pick(server_name).key
    }

    /// Like [`for_sni`](Self::for_sni), saying whether the default was the answer.
    pub fn pick(&self, server_name: Option<&str>) -> Picked {
        match server_name.and_then(|name| self.for_host(name)) {
            Some(key) => Picked {
                key: Arc::clone(key),
                fallback: false,
            },
            None => Picked {
                key: Arc::clone(&self.fallback),
                fallback: true,
            },
        }
    }

    /// How many certificates were loaded (the generated default not counted).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The DER leaf certificate of the `index`th spec loaded (for the admin page: names and
    /// expiry; never the key).
    pub fn leaf(&self, index: usize) -> Option<&[u8]> {
        Some(self.keys.get(index)?.cert.first()?.as_ref())
    }

    /// True when no certificate was loaded: every handshake gets the default.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// True when any certificate or key file differs from what was loaded (rewritten, replaced,
    /// or gone). Costs one `stat` per file, plus a read for files written within a couple of
    /// seconds of loading. A missing file counts as changed: the reload that follows then fails
    /// with an error naming it, and the caller keeps this store.
    pub fn changed_on_disk(&self) -> bool {
        self.files.iter().any(FileStamp::changed)
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut exact: Vec<&str> = self.exact.keys().map(|k| &**k).collect();
        exact.sort_unstable();
        let mut wildcard: Vec<String> = self.wildcard.keys().map(|k| format!("*.{k}")).collect();
        wildcard.sort_unstable();
        f.debug_struct("CertStore")
            .field("certificates", &self.keys.len())
            .field("exact", &exact)
            .field("wildcard", &wildcard)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// One spec, read and checked.
struct Loaded {
    key: CertifiedKey,
    /// Normalized (lowercase, no trailing dot) names, wildcards as `*.parent`.
    hosts: Vec<String>,
    files: Vec<FileStamp>,
}

fn load_one(
    spec: &CertSpec,
    is_default: bool,
    provider: &CryptoProvider,
) -> Result<Loaded, TlsError> {
    let mut files = Vec::with_capacity(2);
    let cert_pem = match &spec.pem {
        Some(pem) => pem.cert.clone(),
        None => {
            let (bytes, stamp) = read_file(&spec.cert)?;
            files.push(stamp);
            bytes
        }
    };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: spec.cert.clone(),
            source,
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: spec.cert.clone(),
        });
    };
    let leaf =
        webpki::EndEntityCert::try_from(leaf).map_err(|source| TlsError::BadCertificate {
            path: spec.cert.clone(),
            source,
        })?;
    let hosts = if spec.hosts.is_empty() {
        let names: Vec<String> = leaf.valid_dns_names().map(normalize).collect();
        if names.is_empty() && !is_default {
            return Err(TlsError::NoHosts {
                path: spec.cert.clone(),
            });
        }
        names
    } else {
        spec.hosts
            .iter()
            .map(|host| {
                validate_host(host).map_err(|reason| TlsError::InvalidHost {
                    cert: spec.cert.clone(),
                    host: host.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?
    };

    let key_pem = if let Some(pem) = &spec.pem {
        pem.key.clone()
    } else if spec.key == spec.cert {
        cert_pem
    } else {
        let (key_pem, key_stamp) = read_file(&spec.key)?;
        files.push(key_stamp);
        key_pem
    };
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoKey {
            path: spec.key.clone(),
        },
        source => TlsError::Pem {
            path: spec.key.clone(),
            source,
        },
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|source| TlsError::UnusableKey {
            path: spec.key.clone(),
            source,
        })?;
    let key = CertifiedKey::new(chain, signing_key);
    match key.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: spec.cert.clone(),
                key: spec.key.clone(),
            });
        }
        // aws-lc-rs keys always know their public key, so `Unknown` cannot happen with our
        // provider; refuse it anyway rather than serve a pair nobody checked.
        Err(source) => {
            return Err(TlsError::KeyCheck {
                cert: spec.cert.clone(),
                key: spec.key.clone(),
                source,
            });
        }
    }
    Ok(Loaded { key, hosts, files })
}

/// Lowercase, without a trailing dot: the form names are indexed and looked up in.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Checks a configured host and returns its normalized form.
fn validate_host(host: &str) -> Result<String, &'static str> {
    let name = normalize(host);
    match name.strip_prefix("*.") {
        Some(parent) if DnsName::try_from(parent).is_ok() => Ok(name),
        Some(_) => Err("a wildcard must be `*.` followed by a valid dns name"),
        None if name.contains('*') => {
            Err("a wildcard must be a whole leading label: `*.example.com`")
        }
        None if DnsName::try_from(name.as_str()).is_ok() => Ok(name),
        None => Err("not a valid dns name (letters, digits, `-`, `_`, dot-separated labels)"),
    }
}

#[cfg(test)]
mod tests;

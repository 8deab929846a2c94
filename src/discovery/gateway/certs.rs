//! HTTPS listeners' `certificateRefs` → certificates for the shared SNI store, and per
//! listener whether its refs resolve (for its `ResolvedRefs` and `Programmed` conditions).
//!
//! A ref must be a core `Secret` (else `InvalidCertificateRef`), in the Gateway's namespace or
//! in one whose ReferenceGrant lets Gateways of the Gateway's namespace refer to it (else
//! `RefNotPermitted`), and hold a usable `kubernetes.io/tls` pair (else
//! `InvalidCertificateRef`); checked once per Secret version, like an Ingress's
//! ([`crate::discovery::ingress::cert_of`]). The certificate serves the listener's `hostname`,
//! or the certificate's own DNS names when the listener has none. Certificates go into the one
//! store every TLS listener shares (SNI picks), so a Gateway's certificate can also answer
//! on another TLS listener for the same name.

use super::types::{GROUP, Gateway, ReferenceGrant};
use crate::discovery::ingress::{CertCache, cert_of};
use crate::discovery::report::Reporter;
use crate::discovery::state::{Key, Store};
use crate::tls::CertSpec;
use k8s_openapi::api::core::v1::Secret;
use std::collections::HashMap;

/// Per (Gateway, listener name): the first problem of its refs, and whether one resolved.
pub type RefState = HashMap<(Key, String), (Option<&'static str>, bool)>;

/// What the certificates are read from.
pub(in crate::discovery) struct CertInput<'a> {
    /// ReferenceGrants.
    pub(in crate::discovery) grants: &'a Store<ReferenceGrant>,
    /// TLS Secrets.
    pub(in crate::discovery) secrets: &'a Store<Secret>,
}

/// The certificates of the HTTPS listeners of `served` Gateways, and each listener's state.
pub(in crate::discovery) fn certificates<'g>(
    served: impl Iterator<Item = (&'g Key, &'g Gateway)>,
    input: &CertInput<'_>,
    cache: &mut CertCache,
    report: &mut Reporter,
) -> (Vec<CertSpec>, RefState) {
    let (mut certs, mut state) = (Vec::new(), RefState::new());
    for (key, gw) in served {
        let generation = gw.metadata.generation.unwrap_or_default().to_string();
        let mut rep = report.for_object("Gateway", key, &generation);
        for l in gw.spec.listeners.iter().filter(|l| l.protocol == "HTTPS") {
            let refs = l.tls.as_ref().map(|t| t.certificate_refs.as_slice());
            let mut problem = None;
            let mut resolved = false;
            for r in refs.unwrap_or_default() {
                let group = r.group.as_deref().unwrap_or_default();
                let ns = r.namespace.as_deref().unwrap_or(&key.0);
                let outcome = if !group.is_empty()
                    || r.kind.as_deref().unwrap_or("Secret") != "Secret"
                {
                    Err("InvalidCertificateRef")
                } else if !permitted(input.grants, &key.0, ns, &r.name) {
                    Err("RefNotPermitted")
                } else {
                    let hosts = l.hostname.iter().cloned().collect();
                    let skey = (ns.to_owned(), r.name.clone());
                    cert_of(&skey, hosts, input.secrets, cache).map_err(|_| "InvalidCertificateRef")
                };
                match outcome {
                    Ok(spec) => {
                        certs.push(spec);
                        resolved = true;
                    }
                    Err(reason) => {
                        let detail = format!(
                            "listener {}: certificateRef {ns}/{}: {reason}",
                            l.name, r.name
                        );
                        rep.skip("invalid_certificate_ref", &detail);
                        problem.get_or_insert(reason);
                    }
                }
            }
            if refs.is_none_or(<[_]>::is_empty) {
                problem = Some("InvalidCertificateRef");
            }
            state.insert((key.clone(), l.name.clone()), (problem, resolved));
        }
    }
    (certs, state)
}

/// Whether a Gateway of `from_ns` may use Secret `ns/name`.
fn permitted(grants: &Store<ReferenceGrant>, from_ns: &str, ns: &str, name: &str) -> bool {
    let from = super::grants::End {
        group: GROUP,
        kind: "Gateway",
        namespace: from_ns,
        name: "",
    };
    let to = super::grants::End {
        group: "",
        kind: "Secret",
        namespace: ns,
        name,
    };
    super::grants::permits(grants.iter().map(|(_, g)| &**g), from, to)
}

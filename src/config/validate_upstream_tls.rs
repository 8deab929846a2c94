//! Validation of a service's upstream TLS keys: `upstream_verify_names` (each a DNS name, an
//! IP address or an absolute URI) and an inline PEM `upstream_ca` (it must hold a
//! certificate; a file is read only when the client is built, as before, so a CA file may
//! be rotated without a reload).

use super::file::RawService;
use super::validate::Issues;
use super::{SubjectName, Trust, UpstreamProtocol};

/// The `upstream_verify_names` of one service; `None` if any is refused.
pub(super) fn verify_names(
    raw: &RawService,
    path: &str,
    issues: &mut Issues,
) -> Option<Vec<SubjectName>> {
    let before = issues.len();
    let tls = matches!(
        raw.upstream_protocol,
        UpstreamProtocol::Https | UpstreamProtocol::H2
    );
    let checked = tls && raw.upstream_verify;
    if !raw.upstream_verify_names.is_empty() && !checked {
        issues.push(
            format!("{path}.upstream_verify_names"),
            "only with upstream_protocol \"https\" or \"h2\" and upstream_verify = true",
        );
    }
    if let Some(Trust::Pem(pem)) = raw.upstream_ca.as_deref().map(Trust::parse)
        && crate::upstream::trust::pem_certificates(&pem).is_err()
    {
        issues.push(
            format!("{path}.upstream_ca"),
            "inline PEM holds no usable certificate",
        );
    }
    let names = raw
        .upstream_verify_names
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            SubjectName::parse(name)
                .map_err(|e| {
                    issues.push(format!("{path}.upstream_verify_names[{i}]"), e.to_string())
                })
                .ok()
        })
        .collect();
    (issues.len() == before).then_some(names)
}

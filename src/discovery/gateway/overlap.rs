//! The listener condition `OverlappingTLSConfig` (reason `OverlappingHostnames`): HTTPS
//! listeners of one Gateway on one port whose hostnames overlap without being equal (one is a
//! wildcard covering the other: `*.example.com` and `foo.example.com` or `*.a.example.com`,
//! never `example.com`). A client's connection made for one of them may then carry requests
//! for the other, so the spec asks that both be flagged (conformance
//! GatewayOverlappingTLSConfigHostnames). Equal hostnames are `Conflicted` instead
//! ([`super::gateway_status::conflicted`]); a listener without hostname flags nothing. The
//! condition is written only where it is True, as the suite expects it absent elsewhere.

use super::hostname::{Intersection, intersect};
use super::types::Gateway;

/// The names of the HTTPS listeners of `gw` whose hostname overlaps another's on their port.
pub(super) fn overlapping(gw: &Gateway) -> Vec<&str> {
    let https: Vec<(i32, &str, &str)> = gw
        .spec
        .listeners
        .iter()
        .filter(|l| l.protocol == "HTTPS")
        .filter_map(|l| Some((l.port, l.hostname.as_deref()?, l.name.as_str())))
        .collect();
    https
        .iter()
        .filter(|(port, host, _)| {
            https.iter().any(|(p, h, _)| {
                p == port
                    && !h.eq_ignore_ascii_case(host)
                    && intersect(Some(h), &[(*host).to_owned()]) != Intersection::Empty
            })
        })
        .map(|(_, _, name)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards_overlap_the_names_they_cover_on_one_port() {
        let l = |name: &str, port: u16, host: &str| json!({"name": name, "port": port, "protocol": "HTTPS", "hostname": host});
        let gw: Gateway = serde_json::from_value(json!({
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {"gatewayClassName": "c", "listeners": [
                l("foo", 443, "foo.example.com"), l("bar", 443, "bar.bar.example.com"),
                l("wildcard", 443, "*.example.com"), l("apex", 443, "example.com"),
                l("other-port", 9443, "foo.example.com"),
                l("w-other", 443, "*.other.com"), l("w-bar-other", 443, "*.bar.other.com"),
                {"name": "plain", "port": 443, "protocol": "HTTP", "hostname": "x.example.com"},
                {"name": "any", "port": 443, "protocol": "HTTPS"}]}}))
        .unwrap_or_default();
        assert_eq!(
            overlapping(&gw),
            ["foo", "bar", "wildcard", "w-other", "w-bar-other"]
        );
    }
}

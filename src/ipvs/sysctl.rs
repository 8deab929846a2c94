//! The sysctls the IPVS data plane needs, set where the process may.
//!
//! - `net.ipv4.vs.expire_nodest_conn=1`: packets of a connection whose destination was
//!   deleted expire the connection instead of being dropped forever (so the drain deadline
//!   really ends a connection);
//! - `net.ipv4.vs.expire_quiescent_template=1`: persistence templates of a weight-0
//!   destination expire, so persistent clients move off a draining server;
//! - `net.ipv4.ip_forward=1`: NAT (masq) forwards between interfaces.
//!
//! `net.ipv4.vs.conn_reuse_mode` is left alone and documented in the README: mode 1 (the
//! default) reschedules a new connection that reuses the source port of an old one (good
//! for drains) but costs a 1 s SYN delay on kernels before 5.9 without conntrack.
//!
//! Each setting that cannot be written (read-only /proc/sys in a container, no
//! CAP_NET_ADMIN) is named in one warning; nothing fails.

use std::path::Path;

/// `(sysctl name, value)` Switchyard sets.
pub const WANTED: [(&str, &str); 3] = [
    ("net.ipv4.vs.expire_nodest_conn", "1"),
    ("net.ipv4.vs.expire_quiescent_template", "1"),
    ("net.ipv4.ip_forward", "1"),
];

fn path_of(name: &str) -> std::path::PathBuf {
    Path::new("/proc/sys").join(name.replace('.', "/"))
}

/// Sets [`WANTED`]; returns the names that could not be set, with why.
pub fn apply() -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for (name, value) in WANTED {
        let path = path_of(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.trim() == value {
            continue;
        }
        if let Err(error) = std::fs::write(&path, value) {
            failed.push((name.to_owned(), error.to_string()));
        }
    }
    if failed.is_empty() {
        tracing::info!(
            "ipvs sysctls set: expire_nodest_conn=1 expire_quiescent_template=1 ip_forward=1"
        );
    } else {
        let list: Vec<String> = failed.iter().map(|(n, e)| format!("{n} ({e})")).collect();
        tracing::warn!(failed = %list.join(", "), "could not set ipvs sysctls; set them on the host");
    }
    failed
}

/// Whether the process has CAP_NET_ADMIN in its effective set (bit 12 of `CapEff`).
pub fn has_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv4.vs.expire_nodest_conn"),
            Path::new("/proc/sys/net/ipv4/vs/expire_nodest_conn")
        );
    }
}

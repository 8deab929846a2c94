//! The fixed hash used by the hash schedulers.
//!
//! It must not be `RandomState`: two router VMs (and one router across restarts) must send a
//! client to the same endpoint, so the function and its seed are fixed: xxh3 with seed 0.

use std::net::IpAddr;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Hash of a client address; stable across processes and machines.
pub fn hash_ip(ip: IpAddr) -> u64 {
    hash_ip_seeded(ip, 0)
}

/// Hash of a client address with a seed (for a second, independent hash).
pub(crate) fn hash_ip_seeded(ip: IpAddr, seed: u64) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => xxh3_64_with_seed(&v4.octets(), seed),
        IpAddr::V6(v6) => xxh3_64_with_seed(&v6.octets(), seed),
    }
}

/// Hash of an endpoint address (ip and port), for the Maglev permutation.
pub(crate) fn hash_addr(addr: std::net::SocketAddr, seed: u64) -> u64 {
    let mut buf = [0u8; 18];
    let len = match addr.ip().to_canonical() {
        IpAddr::V4(v4) => {
            buf[..4].copy_from_slice(&v4.octets());
            4
        }
        IpAddr::V6(v6) => {
            buf[..16].copy_from_slice(&v6.octets());
            16
        }
    };
    buf[len..len + 2].copy_from_slice(&addr.port().to_be_bytes());
    xxh3_64_with_seed(&buf[..len + 2], seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_fixed_across_processes() {
        // Pinned values: if these change (new xxh3 version, new seed), every sh/mh client
        // moves to another endpoint after an upgrade. That must be a deliberate decision.
        assert_eq!(hash_ip("192.0.2.7".parse().unwrap()), PINNED_V4);
        assert_eq!(hash_ip("::ffff:192.0.2.7".parse().unwrap()), PINNED_V4);
        assert_ne!(hash_ip("192.0.2.8".parse().unwrap()), PINNED_V4);
    }

    const PINNED_V4: u64 = 6_118_176_507_351_991_745;
}

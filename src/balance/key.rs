//! What a hash scheduler (`sh`, `mh`) hashes to choose an endpoint: the client's address (L4,
//! and HTTP routes without `hash_on`), or a key a route computed from the request (a header,
//! a cookie, the path; see `ingress::backends::HashOn`).
//!
//! A client address keeps the exact hashes it always had (`hash_ip`, `hash_ip_seeded`), so
//! adding keys moved no client. A request key is hashed once, when the request is prepared;
//! its reseeded hashes (for the Maglev fallback) hash that hash again with the seed. The
//! other schedulers ignore the key.

use super::hash::hash_ip_seeded;
use std::net::IpAddr;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The affinity key of one connection or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// The client's address.
    Client(IpAddr),
    /// The hash of a key taken from the request ([`Key::of_bytes`]).
    Hashed(u64),
}

impl Key {
    /// The key of some request bytes (a header value, a cookie, a path): stable across
    /// processes and machines (xxh3, seed 0), like the address hash.
    pub fn of_bytes(bytes: &[u8]) -> Key {
        Key::Hashed(xxh3_64_with_seed(bytes, 0))
    }

    /// The key's hash, which picks the first choice.
    pub fn hash(self) -> u64 {
        self.hash_seeded(0)
    }

    /// An independent hash of the key for `seed` (0: [`Key::hash`]), for fallbacks.
    pub(crate) fn hash_seeded(self, seed: u64) -> u64 {
        match self {
            Key::Client(ip) => hash_ip_seeded(ip, seed),
            Key::Hashed(h) if seed == 0 => h,
            Key::Hashed(h) => xxh3_64_with_seed(&h.to_le_bytes(), seed),
        }
    }
}

impl From<IpAddr> for Key {
    fn from(ip: IpAddr) -> Key {
        Key::Client(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::hash_ip;

    #[test]
    fn a_client_address_hashes_as_it_always_did() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(Key::from(ip).hash(), hash_ip(ip));
        assert_eq!(Key::from(ip).hash_seeded(3), hash_ip_seeded(ip, 3));
    }

    #[test]
    fn request_keys_are_stable_distinct_and_reseed_independently() {
        let (a, b) = (Key::of_bytes(b"alice"), Key::of_bytes(b"bob"));
        assert_eq!(a, Key::of_bytes(b"alice"));
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash(), xxh3_64_with_seed(b"alice", 0), "fixed: seed 0");
        let seeded: std::collections::HashSet<u64> = (0..9).map(|s| a.hash_seeded(s)).collect();
        assert_eq!(seeded.len(), 9, "each seed gives another hash");
    }
}

//! The per-client state of a route's limits: a fixed-size, set-associative table of client
//! addresses, each with its token bucket and its count of requests in flight.
//!
//! **Why this shape.** The table must stay bounded however many addresses send requests (an
//! IPv6 /64 alone has 2^64), and must not put one lock in front of every request. So it is
//! [`SETS`] sets of [`WAYS`] slots, each set behind its own small mutex: a request locks one
//! set, picked by a keyed hash of its address (an attacker cannot aim addresses at a victim's
//! set without the key), for a few dozen nanoseconds. Two requests contend only when their
//! addresses share a set at the same instant. The memory is allocated once, on the route's
//! first request (so checking a config, or a route nobody uses, costs none): [`CAPACITY`]
//! slots of 40 bytes, 2,048 sets of 168 bytes, 336 KiB per table, whatever the traffic.
//!
//! **Eviction.** A client not in its set takes a free slot, else the slot touched longest ago
//! among those with nothing in flight, else the slot touched longest ago. An evicted client
//! comes back with a full bucket and no requests counted, so under more than [`CAPACITY`]
//! active clients (or an unlucky set) a client may get more than its rate; never less. A
//! release for an evicted client finds nothing and changes nothing.
//!
//! **The bucket** is GCRA (the generic cell rate algorithm), which is a token bucket kept as
//! one number, the theoretical arrival time `tat`: a request at `now` passes when
//! `max(tat, now) + interval - now <= burst * interval`, and then moves `tat` there. Times are
//! integer nanoseconds since the table was made, passed in by the caller, so tests drive the
//! clock themselves.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Slots per set.
pub const WAYS: usize = 4;
/// Sets per table (a power of two).
pub const SETS: usize = 2048;
/// Clients one table holds at once.
pub const CAPACITY: usize = SETS * WAYS;

/// A token bucket's shape: one token every `interval_ns`, at most `burst` held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Nanoseconds per token (the inverse of the rate).
    pub interval_ns: u64,
    /// Tokens held at most (requests that may pass at once).
    pub burst: u32,
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over the rate: the next token comes after this many nanoseconds.
    Rate {
        /// Nanoseconds until the request would pass.
        wait_ns: u64,
    },
    /// Too many requests of this client in flight.
    Connections,
}

#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    /// The client's address as two words (IPv4 as its IPv6-mapped form).
    key: [u64; 2],
    /// Theoretical arrival time, nanoseconds.
    tat: u64,
    /// Last time the slot was used, nanoseconds.
    touched: u64,
    /// Requests of this client in flight.
    in_flight: u32,
    /// Whether the slot holds a client.
    live: bool,
}

/// One table of clients (see the module doc).
pub struct ClientTable {
    /// The sets, allocated on first use.
    sets: OnceLock<Box<[Mutex<[Slot; WAYS]>]>>,
    /// How many sets (a power of two).
    count: usize,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for ClientTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTable")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for ClientTable {
    fn default() -> Self {
        ClientTable::with_sets(SETS)
    }
}

/// Where a client's slot is: its set, and its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    set: usize,
    key: [u64; 2],
}

impl ClientTable {
    /// A table of `sets` sets (rounded up to a power of two).
    pub fn with_sets(sets: usize) -> Self {
        ClientTable {
            sets: OnceLock::new(),
            count: sets.max(1).next_power_of_two(),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn sets(&self) -> &[Mutex<[Slot; WAYS]>] {
        self.sets.get_or_init(|| {
            (0..self.count)
                .map(|_| Mutex::new([Slot::default(); WAYS]))
                .collect()
        })
    }

    /// Clients the table holds at once.
    pub fn capacity(&self) -> usize {
        self.count * WAYS
    }

    /// Clients held now (walks the whole table: for tests and debugging).
    pub fn len(&self) -> usize {
        self.sets()
            .iter()
            .map(|s| lock(s).iter().filter(|slot| slot.live).count())
            .sum()
    }

    /// Whether no client is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where `ip`'s slot is (or would be).
    pub fn place(&self, ip: IpAddr) -> Place {
        let bits = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().to_bits(),
            IpAddr::V6(v6) => v6.to_bits(),
        };
        let key = [(bits >> 64) as u64, bits as u64];
        let set = (self.hasher.hash_one(key) as usize) & (self.count - 1);
        Place { set, key }
    }

    /// Admits a request of the client at `place` at time `now` (nanoseconds): takes a token
    /// from its bucket (`rate`), and counts it in flight when `max_in_flight` is set (the
    /// caller then releases it with [`ClientTable::release`]). Nothing changes when refused.
    pub fn admit(
        &self,
        place: Place,
        now: u64,
        rate: Option<Bucket>,
        max_in_flight: Option<u32>,
    ) -> Result<(), Refused> {
        let mut set = lock(&self.sets()[place.set]);
        let slot = find_or_take(&mut set, place.key, now);
        let tat = match rate {
            Some(bucket) => Some(take(slot.tat, now, bucket)?),
            None => None,
        };
        if let Some(max) = max_in_flight {
            if slot.in_flight >= max {
                return Err(Refused::Connections);
            }
            slot.in_flight += 1;
        }
        if let Some(tat) = tat {
            slot.tat = tat;
        }
        slot.touched = now;
        Ok(())
    }

    /// Ends a request counted in flight by [`ClientTable::admit`] (nothing, if the client was
    /// evicted meanwhile).
    pub fn release(&self, place: Place) {
        let mut set = lock(&self.sets()[place.set]);
        if let Some(slot) = set.iter_mut().find(|s| s.live && s.key == place.key) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
    }

    /// The requests in flight of the client at `place` (for tests).
    pub fn in_flight(&self, place: Place) -> u32 {
        let set = lock(&self.sets()[place.set]);
        set.iter()
            .find(|s| s.live && s.key == place.key)
            .map_or(0, |s| s.in_flight)
    }
}

fn lock(set: &Mutex<[Slot; WAYS]>) -> std::sync::MutexGuard<'_, [Slot; WAYS]> {
    // A set holds plain numbers, each write complete: one left by a panicking holder is fine.
    set.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The client's slot in its set, or a slot given to it (see the module doc on eviction).
fn find_or_take(set: &mut [Slot; WAYS], key: [u64; 2], now: u64) -> &mut Slot {
    let index = set
        .iter()
        .position(|s| s.live && s.key == key)
        .or_else(|| set.iter().position(|s| !s.live))
        .or_else(|| {
            let idle = set.iter().enumerate().filter(|(_, s)| s.in_flight == 0);
            idle.min_by_key(|(_, s)| s.touched).map(|(i, _)| i)
        })
        .unwrap_or_else(|| {
            let all = set.iter().enumerate();
            all.min_by_key(|(_, s)| s.touched).map_or(0, |(i, _)| i)
        });
    let slot = &mut set[index];
    if !(slot.live && slot.key == key) {
        // A new client starts with a full bucket: its `tat` is now.
        *slot = Slot {
            key,
            tat: now,
            touched: now,
            in_flight: 0,
            live: true,
        };
    }
    slot
}

/// GCRA: the new theoretical arrival time if a request at `now` passes, else how long until
/// it would.
fn take(tat: u64, now: u64, bucket: Bucket) -> Result<u64, Refused> {
    let tolerance = bucket.interval_ns.saturating_mul(u64::from(bucket.burst));
    let next = tat.max(now).saturating_add(bucket.interval_ns);
    let ahead = next - now;
    if ahead <= tolerance {
        Ok(next)
    } else {
        Err(Refused::Rate {
            wait_ns: ahead - tolerance,
        })
    }
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;

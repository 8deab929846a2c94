use super::*;
use std::net::{Ipv4Addr, Ipv6Addr};

const MS: u64 = 1_000_000;
/// rps = 10, burst = 5.
const TEN_PER_SECOND: Bucket = Bucket {
    interval_ns: 100 * MS,
    burst: 5,
};

fn ip(n: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(n))
}

#[test]
fn a_burst_passes_whole_and_the_next_request_waits_one_interval() {
    let table = ClientTable::default();
    let client = table.place(ip(1));
    for i in 0..5 {
        assert_eq!(
            table.admit(client, 0, Some(TEN_PER_SECOND), None),
            Ok(()),
            "request {i}"
        );
    }
    assert_eq!(
        table.admit(client, 0, Some(TEN_PER_SECOND), None),
        Err(Refused::Rate { wait_ns: 100 * MS })
    );
    // 99 ms later the token is not there yet; at 100 ms it is, and only one.
    assert_eq!(
        table.admit(client, 99 * MS, Some(TEN_PER_SECOND), None),
        Err(Refused::Rate { wait_ns: MS })
    );
    assert_eq!(
        table.admit(client, 100 * MS, Some(TEN_PER_SECOND), None),
        Ok(())
    );
    assert!(
        table
            .admit(client, 100 * MS, Some(TEN_PER_SECOND), None)
            .is_err()
    );
}

#[test]
fn tokens_refill_at_the_rate_and_never_beyond_the_burst() {
    let table = ClientTable::default();
    let client = table.place(ip(1));
    for _ in 0..5 {
        table.admit(client, 0, Some(TEN_PER_SECOND), None).unwrap();
    }
    // Ten seconds idle refill to the burst (5), not to 100.
    let later = 10_000 * MS;
    let passed = (0..20)
        .filter(|_| {
            table
                .admit(client, later, Some(TEN_PER_SECOND), None)
                .is_ok()
        })
        .count();
    assert_eq!(passed, 5);
    // Steady: one request every 100 ms passes forever.
    for i in 1..=50 {
        assert_eq!(
            table.admit(client, later + i * 100 * MS, Some(TEN_PER_SECOND), None),
            Ok(()),
            "tick {i}"
        );
    }
}

#[test]
fn the_sets_are_allocated_on_first_use() {
    let table = ClientTable::default();
    assert!(table.sets.get().is_none());
    assert_eq!(table.capacity(), CAPACITY);
    let _ = table.admit(table.place(ip(1)), 0, None, None);
    assert_eq!(table.sets.get().map(|s| s.len()), Some(SETS));
}

#[test]
fn clients_have_buckets_of_their_own() {
    let table = ClientTable::default();
    let (a, b) = (table.place(ip(1)), table.place(ip(2)));
    for _ in 0..5 {
        table.admit(a, 0, Some(TEN_PER_SECOND), None).unwrap();
    }
    assert!(table.admit(a, 0, Some(TEN_PER_SECOND), None).is_err());
    assert_eq!(table.admit(b, 0, Some(TEN_PER_SECOND), None), Ok(()));
}

#[test]
fn ipv4_and_its_mapped_form_are_one_client() {
    let table = ClientTable::default();
    let v4 = table.place(ip(0x0a00_0001));
    let mapped = table.place(IpAddr::V6(Ipv4Addr::from(0x0a00_0001).to_ipv6_mapped()));
    assert_eq!(v4, mapped);
    assert_ne!(v4, table.place(IpAddr::V6(Ipv6Addr::LOCALHOST)));
}

#[test]
fn requests_in_flight_are_capped_and_released() {
    let table = ClientTable::default();
    let client = table.place(ip(7));
    assert_eq!(table.admit(client, 0, None, Some(2)), Ok(()));
    assert_eq!(table.admit(client, 0, None, Some(2)), Ok(()));
    assert_eq!(
        table.admit(client, 0, None, Some(2)),
        Err(Refused::Connections)
    );
    table.release(client);
    assert_eq!(table.in_flight(client), 1);
    assert_eq!(table.admit(client, 0, None, Some(2)), Ok(()));
    assert_eq!(table.in_flight(client), 2);
}

#[test]
fn a_refusal_for_connections_takes_no_token() {
    let table = ClientTable::default();
    let client = table.place(ip(7));
    let one = Bucket {
        interval_ns: 1_000 * MS,
        burst: 1,
    };
    table.admit(client, 0, Some(one), Some(1)).unwrap();
    assert_eq!(
        table.admit(client, 1_000 * MS, Some(one), Some(1)),
        Err(Refused::Connections)
    );
    table.release(client);
    assert_eq!(table.admit(client, 1_000 * MS, Some(one), Some(1)), Ok(()));
}

#[test]
fn a_million_clients_keep_the_table_at_its_fixed_size() {
    let table = ClientTable::with_sets(256);
    assert_eq!(table.capacity(), 256 * WAYS);
    for n in 0..1_000_000u32 {
        let place = table.place(ip(n));
        table
            .admit(place, u64::from(n), Some(TEN_PER_SECOND), Some(10))
            .unwrap();
        table.release(place);
    }
    assert_eq!(table.len(), table.capacity());
    assert_eq!(
        std::mem::size_of_val(table.sets()),
        256 * std::mem::size_of::<Mutex<[Slot; WAYS]>>()
    );
    assert_eq!(std::mem::size_of::<Mutex<[Slot; WAYS]>>(), 168);
}

#[test]
fn an_evicted_client_comes_back_with_a_full_bucket_and_a_release_after_eviction_is_harmless() {
    // One set: four slots, all busy, so the one touched longest ago goes.
    let table = ClientTable::with_sets(1);
    let victim = table.place(ip(1));
    for _ in 0..5 {
        table.admit(victim, 0, Some(TEN_PER_SECOND), None).unwrap();
    }
    table.admit(victim, 0, None, Some(5)).unwrap();
    for n in 2..=4 {
        table.admit(table.place(ip(n)), 1, None, Some(1)).unwrap();
    }
    assert_eq!(table.in_flight(victim), 1);
    table.admit(table.place(ip(5)), 2, None, None).unwrap();
    assert_eq!(table.in_flight(victim), 0, "evicted");
    table.release(victim);
    assert_eq!(table.in_flight(table.place(ip(5))), 0);
    assert_eq!(
        table.admit(victim, 3, Some(TEN_PER_SECOND), None),
        Ok(()),
        "a full bucket again"
    );
}

#[test]
fn idle_clients_are_evicted_before_busy_ones() {
    let table = ClientTable::with_sets(1);
    let busy = table.place(ip(1));
    table.admit(busy, 0, None, Some(1)).unwrap();
    for n in 2..=20 {
        table
            .admit(table.place(ip(n)), u64::from(n), None, None)
            .unwrap();
    }
    assert_eq!(table.in_flight(busy), 1);
}

#[test]
fn bucket_arithmetic_saturates_instead_of_overflowing() {
    assert_eq!(
        take(u64::MAX, 0, TEN_PER_SECOND),
        Err(Refused::Rate {
            wait_ns: u64::MAX - 500 * MS
        })
    );
    let slowest = Bucket {
        interval_ns: u64::MAX,
        burst: 2,
    };
    assert_eq!(take(0, 0, slowest), Ok(u64::MAX));
}

#[test]
fn threads_sharing_a_client_never_pass_its_cap_and_leave_nothing_counted() {
    let table = std::sync::Arc::new(ClientTable::with_sets(4));
    let client = table.place(ip(9));
    let passed = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (table, passed) = (table.clone(), passed.clone());
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    if table.admit(client, 0, None, Some(3)).is_ok() {
                        assert!(table.in_flight(client) <= 3);
                        passed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        table.release(client);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(table.in_flight(client), 0);
    assert!(passed.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // A bucket shared by threads hands out exactly its burst.
    let bucket = Bucket {
        interval_ns: 60_000 * MS,
        burst: 100,
    };
    let fresh = table.place(ip(10));
    let taken: usize = (0..4)
        .map(|_| {
            let table = table.clone();
            std::thread::spawn(move || {
                (0..100)
                    .filter(|_| table.admit(fresh, 0, Some(bucket), None).is_ok())
                    .count()
            })
        })
        .map(|t| t.join().unwrap())
        .sum();
    assert_eq!(taken, 100);
}

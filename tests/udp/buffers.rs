//! Socket buffers (`udp_recv_buffer`) and the datagrams the kernel drops at our sockets.
//!
//! These tests run on the default single-threaded test runtime on purpose: the app's tasks
//! run only when the test awaits, so a loop of blocking `send_to`s without an await is a burst
//! the proxy cannot read during. That is how the proxy is made to fall behind,
//! deterministically. What the kernel did is read back from `/proc/net/udp`.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// `(rx_queue, drops)` of the IPv4 UDP socket bound to exactly `addr`, from `/proc/net/udp`:
/// the bytes queued at it (kernel accounting: size plus bookkeeping) and the datagrams the
/// kernel dropped at it since it was opened.
fn proc_udp(addr: SocketAddr) -> (u64, u64) {
    let SocketAddr::V4(v4) = addr else {
        panic!("{addr} is not IPv4");
    };
    // The kernel prints the address as the hex of its in-memory (network order) u32.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let text = std::fs::read_to_string("/proc/net/udp").unwrap();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(local.as_str()))
        .unwrap_or_else(|| panic!("{addr} ({local}) not in /proc/net/udp"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (_, rx_queue) = fields[4].split_once(':').unwrap();
    (
        u64::from_str_radix(rx_queue, 16).unwrap(),
        fields[fields.len() - 1].parse().unwrap(),
    )
}

/// Datagrams the loopback device's per-CPU backlogs dropped, machine-wide (the second column
/// of `/proc/net/softnet_stat`, hex, one line per CPU): the one place on the way from the test
/// to the proxy where a datagram can vanish without reaching a socket.
fn softnet_drops() -> u64 {
    let text = std::fs::read_to_string("/proc/net/softnet_stat").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
        .sum()
}

/// A UDP backend that only counts what it receives.
async fn counting_sink() -> (SocketAddr, Arc<AtomicU64>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while socket.recv(&mut buf).await.is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    (addr, count)
}

/// Every `switchyard_udp_datagrams_dropped_total` of `service`, by reason.
async fn udp_drops(admin: SocketAddr, service: &str) -> Vec<(String, f64)> {
    let (_, text) = admin_get(admin, "/metrics").await;
    let prefix = format!("switchyard_udp_datagrams_dropped_total{{service=\"{service}\",reason=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (reason, value) = rest.split_once("\"} ")?;
            Some((reason.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// Polls (yielding to the app) until `done`, for at most 5 s; whether it came.
async fn wait_for(mut done: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done().await {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

#[tokio::test]
async fn kernel_drops_at_a_full_receive_queue_are_counted_and_every_datagram_accounted_for() {
    const BURSTS: u64 = 200;
    const BURST: u64 = 100;
    let (sink, received) = counting_sink().await;
    let app = start(&service(
        "udp-overflow",
        "udp",
        "rr",
        &[(sink, 1)],
        "udp_recv_buffer = 4096",
    ))
    .await;
    let (addr, admin) = (
        app.local_addr("udp-overflow").await.unwrap(),
        app.admin_addr(),
    );
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    let backlog_before = softnet_drops();

    // 20,000 datagrams in bursts of 100; between bursts the proxy may read what its 4 KiB
    // queue kept (a handful: the kernel counts each 100-byte datagram as 832 bytes).
    let mut sent = 0;
    for _ in 0..BURSTS {
        for _ in 0..BURST {
            client.send(&[b'x'; 100]).unwrap();
            sent += 1;
        }
        tokio::task::yield_now().await;
    }
    // Drops after the last datagram the proxy read are reported with the next one: let the
    // queue empty, then send one more.
    assert!(
        wait_for(async || proc_udp(addr).0 == 0).await,
        "the service's queue empties"
    );
    client.send(b"last").unwrap();
    sent += 1;
    let accounted = async || {
        let dropped: f64 = udp_drops(admin, "udp-overflow")
            .await
            .iter()
            .map(|d| d.1)
            .sum();
        received.load(Ordering::Relaxed) + dropped as u64
    };
    // Checked below, with the numbers.
    wait_for(async || accounted().await >= sent).await;

    let drops = udp_drops(admin, "udp-overflow").await;
    let kernel = drops
        .iter()
        .find(|d| d.0 == "kernel_overflow")
        .map_or(0.0, |d| d.1) as u64;
    let (queued, kernel_says) = proc_udp(addr);
    let (_, sink_dropped) = proc_udp(sink);
    let through = received.load(Ordering::Relaxed);
    let lost_in_backlog = softnet_drops().saturating_sub(backlog_before);
    eprintln!(
        "sent {sent}: {through} reached the endpoint, dropped {drops:?}; kernel: {kernel_says} \
         dropped at the service's socket, {sink_dropped} at the endpoint's, \
         {lost_in_backlog} in loopback backlogs (machine-wide)"
    );
    assert_eq!(queued, 0);
    assert!(
        kernel > 0,
        "a 4 KiB queue overflowed under 100-datagram bursts"
    );
    assert_eq!(
        kernel, kernel_says,
        "the metric is the kernel's own count for the socket"
    );
    // On loopback a datagram reaches a socket or is dropped at one, unless a loopback
    // backlog dropped it first (machine-wide, usually 0): that is the tolerance.
    let others: f64 = drops
        .iter()
        .filter(|d| d.0 != "kernel_overflow")
        .map(|d| d.1)
        .sum();
    let accounted = through + sink_dropped + kernel + others as u64;
    assert!(
        accounted <= sent && sent - accounted <= lost_in_backlog,
        "sent {sent}, accounted for {accounted}, {lost_in_backlog} lost in backlogs"
    );
}

/// Fills the queue of the socket bound to `to`, whose limit is `limit` bytes, with datagrams of
/// 1000 bytes sent without yielding (the proxy cannot read meanwhile), and returns the bytes
/// then queued there. Each counts as at least its size, so `limit / 1000` and some fill it.
fn fill_and_measure(to: SocketAddr, limit: u64) -> u64 {
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..limit / 1000 + 16 {
        client.send_to(&[b'y'; 1000], to).unwrap();
    }
    proc_udp(to).0
}

/// A `/proc/sys/net/core` value.
fn sysctl(name: &str) -> u64 {
    let path = format!("/proc/sys/net/core/{name}");
    std::fs::read_to_string(&path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Whether this process has CAP_NET_ADMIN (bit 12 of `CapEff`), so that buffer sizes are
/// set with SO_RCVBUFFORCE, past `net.core.rmem_max`.
fn net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap();
    u64::from_str_radix(caps.trim(), 16).unwrap() & (1 << 12) != 0
}

#[tokio::test]
async fn the_receive_buffer_asked_for_is_the_one_the_service_socket_gets_also_after_a_reload() {
    const MIB: u64 = 1024 * 1024;
    let (sink, _) = counting_sink().await;
    let services = |small: &str| {
        [
            service("udp-buf-small", "udp", "rr", &[(sink, 1)], small),
            service("udp-buf-default", "udp", "rr", &[(sink, 1)], ""),
            service(
                "udp-buf-large",
                "udp",
                "rr",
                &[(sink, 1)],
                "udp_recv_buffer = 1048576",
            ),
        ]
        .concat()
    };
    // The queue's limit: twice what was asked (the kernel's bookkeeping half), capped at twice
    // net.core.rmem_max unless we may force; without a setting, net.core.rmem_default.
    let (rmem_max, rmem_default) = (sysctl("rmem_max"), sysctl("rmem_default"));
    let limit = |asked: u64| {
        2 * if net_admin() {
            asked
        } else {
            asked.min(rmem_max)
        }
    };
    // A full queue is within one datagram (2,304 bytes here) of its limit, either way.
    let full = |queued: u64, limit: u64| queued.abs_diff(limit) <= 4096;

    let app = start(&services("udp_recv_buffer = 4096")).await;
    let addr = async |name| app.local_addr(name).await.unwrap();
    let (small, default, large) = (
        addr("udp-buf-small").await,
        addr("udp-buf-default").await,
        addr("udp-buf-large").await,
    );
    let limits = [limit(4096), rmem_default, limit(MIB)];
    let measured = [
        fill_and_measure(small, limits[0]),
        fill_and_measure(default, limits[1]),
        fill_and_measure(large, limits[2]),
    ];
    eprintln!(
        "queued bytes (4 KiB asked, no setting, 1 MiB asked): {measured:?}, limits {limits:?}"
    );
    for (what, queued, limit) in [
        ("4 KiB asked", measured[0], limits[0]),
        ("no setting", measured[1], limits[1]),
        ("1 MiB asked", measured[2], limits[2]),
    ] {
        assert!(
            full(queued, limit),
            "{what}: {queued} queued, limit {limit}"
        );
    }
    for (name, at) in [("small", small), ("default", default), ("large", large)] {
        assert!(
            wait_for(async || proc_udp(at).0 == 0).await,
            "the {name} queue empties"
        );
    }

    // A reload that changes the size resizes the kept socket.
    app.apply(&config(&services("udp_recv_buffer = 1048576")))
        .await
        .unwrap();
    assert_eq!(addr("udp-buf-small").await, small, "the listener is kept");
    let resized = fill_and_measure(small, limit(MIB));
    assert!(
        full(resized, limit(MIB)),
        "1 MiB asked on reload: {resized} queued, limit {}",
        limit(MIB)
    );
}

/// A UDP backend that answers "burst" with `n` numbered replies sent back to back without
/// yielding (the proxy cannot read meanwhile), and anything else with one "one".
async fn bursting_backend(n: usize) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            if &buf[..len] == b"burst" {
                for i in 0..n {
                    // Loopback frees a send's buffer at once: this never has to wait.
                    socket
                        .try_send_to(format!("{i:0100}").as_bytes(), from)
                        .unwrap();
                }
            } else {
                socket.send_to(b"one", from).await.unwrap();
            }
        }
    });
    addr
}

#[tokio::test]
async fn replies_the_kernel_drops_at_a_flows_socket_are_counted_too() {
    const REPLIES: u64 = 2000;
    let backend = bursting_backend(REPLIES as usize).await;
    let app = start(&service(
        "udp-reply-overflow",
        "udp",
        "rr",
        &[(backend, 1)],
        "udp_recv_buffer = 4096",
    ))
    .await;
    let (addr, admin) = (
        app.local_addr("udp-reply-overflow").await.unwrap(),
        app.admin_addr(),
    );
    let c = client(addr).await;
    c.send(b"burst").await.unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 65_535];
    // Bounded by the replies sent.
    while got < REPLIES {
        match tokio::time::timeout(Duration::from_millis(300), c.recv(&mut buf)).await {
            Ok(received) => {
                received.unwrap();
                got += 1;
            }
            Err(_) if got > 0 => break, // quiet: the flow's queue is empty
            Err(_) => panic!("no reply at all"),
        }
    }
    // The drops after the last reply read are reported with the next one.
    assert_eq!(ask(&c, "again").await, "one");
    let drops = udp_drops(admin, "udp-reply-overflow").await;
    let kernel = drops
        .iter()
        .find(|d| d.0 == "kernel_overflow")
        .map_or(0.0, |d| d.1) as u64;
    let (_, client_dropped) = proc_udp(c.local_addr().unwrap());
    eprintln!(
        "{REPLIES} replies: {got} reached the client, dropped {drops:?}, {client_dropped} at \
         the client's socket"
    );
    assert!(kernel > 0, "a 4 KiB flow queue overflowed");
    let others: f64 = drops
        .iter()
        .filter(|d| d.0 != "kernel_overflow")
        .map(|d| d.1)
        .sum();
    assert_eq!(
        got + kernel + others as u64 + client_dropped,
        REPLIES,
        "each reply reached the client or was counted where it was dropped"
    );
}

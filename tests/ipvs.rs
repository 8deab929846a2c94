//! Kernel IPVS tests. Most need a real kernel with IPVS and root: they run inside the VM
//! (`tests/ipvs-vm.sh`, `IN_IPVS_VM=1`) and print a skip reason anywhere else. The fallback
//! test runs where IPVS is absent (the host, or the VM booted with `--no-ipvs`).
#![allow(clippy::unwrap_used)]

mod common;
mod skip;
#[path = "ipvs_support/mod.rs"]
mod support;

use common::{admin_get, backend_of, config, tcp_backend};
use std::time::{Duration, Instant};
use support::*;
use switchyard::app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_services_from_a_config_as_ipvsadm_shows_them() {
    if !kernel_or_skip("programs_services_from_a_config_as_ipvsadm_shows_them") {
        return;
    }
    let app = app::start(config(SERVICES)).await.unwrap();
    let s = synced(&app).await;
    assert_eq!(s["dataplane"], "ipvs", "{s}");
    assert_eq!(ops(&s), "add_dest=4,add_service=3", "{s}");
    let l = ipvsadm("");
    println!("{}", l.join("\n"));
    assert!(has_line(&l, "TCP 10.96.0.1:80 wrr"), "{l:?}");
    assert!(has_line(&l, "-> 10.0.0.1:8080 Masq 3 0 0"), "{l:?}");
    assert!(has_line(&l, "-> 10.0.0.2:8080 Masq 1 0 0"), "{l:?}");
    assert!(has_line(&l, "UDP 10.96.0.2:53 rr"), "{l:?}");
    assert!(has_line(&l, "-> 10.0.0.3:53 Masq 1 0 0"), "{l:?}");
    assert!(has_line(&l, "TCP [fd00::1]:443 mh"), "{l:?}");
    assert!(
        l.iter()
            .any(|x| x.starts_with("TCP [fd00::1]:443") && x.contains("persistent 60"))
    );
    assert!(has_line(&l, "-> [fd00::2]:8443 Masq 2 0 0"), "{l:?}");
    // Every endpoint of the table is in the kernel: what ipvsadm shows is what the table says.
    let table = app.table().load();
    for svc in table.services() {
        for e in &svc.endpoints {
            let line = format!("-> {} Masq {}", e.address, e.weight);
            assert!(has_line(&l, &line), "{line} missing: {l:?}");
        }
    }
    let addrs = sh("ip -o addr show dev switchyard0");
    assert!(
        addrs.contains("10.96.0.1/32") && addrs.contains("fd00::1/128"),
        "{addrs}"
    );
    assert_eq!(
        app.local_addr("web").await,
        None,
        "no user-space listener for a kernel service"
    );
    let (_, metrics) = admin_get(app.admin_addr(), "/metrics").await;
    let line = "switchyard_ipvs_operations_total{kind=\"add_service\"}";
    assert!(
        common::metric(&metrics, line).unwrap_or(0.0) >= 3.0,
        "{line} < 3"
    );
    // Fixtures: the kernel's own replies, turned into src/ipvs/testdata/*.hex by the script.
    let handle = capture_fixtures().await;
    let t = handle.timeouts().await.unwrap();
    assert!(t.tcp > 0, "{t:?}");
    app.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_changes_apply_only_what_changed() {
    if !kernel_or_skip("endpoint_changes_apply_only_what_changed") {
        return;
    }
    let app = app::start(config(SERVICES)).await.unwrap();
    synced(&app).await;
    let reweighted = SERVICES.replacen("weight = 3", "weight = 5", 1);
    app.apply(&config(&reweighted)).await.unwrap();
    let s = synced(&app).await;
    assert_eq!(ops(&s), "set_dest=1", "{s}");
    // Only the changed service had its destinations dumped.
    assert_eq!(s["last_sync"]["full"], false, "{s}");
    assert_eq!(s["last_sync"]["dumped_services"], 1, "{s}");
    assert!(has_line(&ipvsadm(""), "-> 10.0.0.1:8080 Masq 5 0 0"));
    let added = reweighted.replacen(
        "[[services.endpoints]]\naddress = \"10.0.0.2:8080\"",
        "[[services.endpoints]]\naddress = \"10.0.0.2:8080\"\n[[services.endpoints]]\naddress = \"10.0.0.4:8080\"",
        1,
    );
    app.apply(&config(&added)).await.unwrap();
    assert_eq!(ops(&synced(&app).await), "add_dest=1");
    assert!(has_line(&ipvsadm(""), "-> 10.0.0.4:8080 Masq 1 0 0"));
    // Removing an endpoint without connections deletes it at once; removing a service
    // deletes it and its VIP.
    let removed = added.replacen(
        "[[services.endpoints]]\naddress = \"10.0.0.2:8080\"\n",
        "",
        1,
    );
    app.apply(&config(&removed)).await.unwrap();
    assert_eq!(ops(&synced(&app).await), "del_dest=1");
    let dns_start = removed.find("[[services]]\nname = \"dns\"").unwrap();
    let v6_start = removed.find("[[services]]\nname = \"v6\"").unwrap();
    let without_dns = format!("{}{}", &removed[..dns_start], &removed[v6_start..]);
    app.apply(&config(&without_dns)).await.unwrap();
    assert_eq!(ops(&synced(&app).await), "del_service=1");
    let l = ipvsadm("");
    assert!(
        !has_line(&l, "UDP 10.96.0.2:53") && !has_line(&l, "-> 10.0.0.2:8080"),
        "{l:?}"
    );
    assert!(!sh("ip -o addr show dev switchyard0").contains("10.96.0.2/32"));
    app.shutdown(Duration::from_millis(100)).await;
}

const DATAPATH: &str = r#"
[ipvs]
dataplane = "auto"
drain_timeout = "60s"
[[services]]
name = "vip"
listen = "10.96.0.10:80"
scheduler = "rr"
[[services.endpoints]]
address = "10.0.2.2:8080"
[[services.endpoints]]
address = "10.0.3.2:8080"
"#;

/// The client test of the issue: in IPVS mode the kernel NATs to the backends; without
/// IPVS (`--no-ipvs` boot) `auto` serves the same VIP from user space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_a_namespace_reaches_both_backends_through_the_vip() {
    if std::env::var("IN_IPVS_VM").ok().as_deref() != Some("1") {
        return skip::skip(
            "a_client_in_a_namespace_reaches_both_backends_through_the_vip",
            "needs the VM",
        );
    }
    reset();
    namespaces();
    let kernel = has_ipvs();
    if !kernel {
        // User space binds the VIP itself, so it must be local.
        sh("ip link add vip0 type dummy; ip addr add 10.96.0.10/32 dev vip0; ip link set vip0 up");
    }
    let app = app::start(config(DATAPATH)).await.unwrap();
    let s = synced_or_status(&app, kernel).await;
    assert_eq!(
        s["dataplane"],
        if kernel { "ipvs" } else { "userspace" },
        "{s}"
    );
    let got: Vec<String> = (0..4)
        .map(|_| get_from_client("http://10.96.0.10/"))
        .collect();
    println!("dataplane {}: {got:?}", s["dataplane"]);
    assert!(
        got.contains(&"backend-1".to_owned()) && got.contains(&"backend-2".to_owned()),
        "{got:?}"
    );
    if kernel {
        assert_ne!(got[0], got[1], "rr alternates: {got:?}");
        let conns = sh("ipvsadm -Lnc");
        assert!(conns.contains("10.96.0.10:80"), "{conns}");
    }
    app.shutdown(Duration::from_millis(100)).await;
    sh_quiet("ip link del vip0");
}

async fn synced_or_status(app: &app::App, kernel: bool) -> serde_json::Value {
    if kernel {
        synced(app).await
    } else {
        status(app).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoint_drains_at_weight_zero_and_goes_when_its_connection_ends() {
    if !kernel_or_skip("a_removed_endpoint_drains_at_weight_zero_and_goes_when_its_connection_ends")
    {
        return;
    }
    namespaces();
    let only_back1 = DATAPATH.replace("[[services.endpoints]]\naddress = \"10.0.3.2:8080\"\n", "");
    let app = app::start(config(&only_back1)).await.unwrap();
    synced(&app).await;
    // A client holds one connection to back1 open for a few seconds.
    sh(
        "(ip netns exec client bash -c 'exec 3<>/dev/tcp/10.96.0.10/80; sleep 6' >/dev/null 2>&1 &)",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_line(&ipvsadm("-t 10.96.0.10:80"), "-> 10.0.2.2:8080 Masq 1 1") {
        assert!(
            Instant::now() < deadline,
            "no active connection: {:?} {}",
            ipvsadm(""),
            sh("ipvsadm -Lnc; ps; ip netns exec client cat /proc/net/tcp")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let only_back2 = DATAPATH.replace("[[services.endpoints]]\naddress = \"10.0.2.2:8080\"\n", "");
    app.apply(&config(&only_back2)).await.unwrap();
    let s = synced(&app).await;
    assert_eq!(ops(&s), "add_dest=1,set_dest=1", "{s}");
    let l = ipvsadm("-t 10.96.0.10:80");
    assert!(
        has_line(&l, "-> 10.0.2.2:8080 Masq 0 1"),
        "draining at weight 0: {l:?}"
    );
    assert_eq!(
        get_from_client("http://10.96.0.10/"),
        "backend-2",
        "new connections avoid it"
    );
    assert_eq!(s["draining"].as_array().map(Vec::len), Some(1), "{s}");
    let started = Instant::now();
    while has_line(&ipvsadm("-t 10.96.0.10:80"), "-> 10.0.2.2:8080") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never deleted: {:?}",
            ipvsadm("")
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "drained destination deleted {:?} after the endpoint left",
        started.elapsed()
    );
    app.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_adopts_the_kernel_state_without_flushing_it() {
    if !kernel_or_skip("a_restart_adopts_the_kernel_state_without_flushing_it") {
        return;
    }
    sh(
        "ipvsadm -A -t 10.96.0.1:80 -s wrr && ipvsadm -a -t 10.96.0.1:80 -r 10.0.0.1:8080 -m -w 3 \
        && ipvsadm -a -t 10.96.0.1:80 -r 10.0.0.2:8080 -m -w 1 \
        && ipvsadm -a -t 10.96.0.1:80 -r 10.0.0.9:8080 -m -w 1 \
        && ipvsadm -A -t 192.168.50.1:80 -s rr && ipvsadm -a -t 192.168.50.1:80 -r 10.0.0.5:80 -m",
    );
    let app = app::start(config(SERVICES)).await.unwrap();
    let s = synced(&app).await;
    // web is adopted as is; only the stray 10.0.0.9 (owned range, not configured) goes.
    assert_eq!(ops(&s), "add_dest=2,add_service=2,del_dest=1", "{s}");
    app.shutdown(Duration::from_millis(100)).await;
    let before = ipvsadm("");
    let app = app::start(config(SERVICES)).await.unwrap();
    let s = synced(&app).await;
    assert_eq!(ops(&s), "", "a restart changes nothing: {s}");
    assert_eq!(ipvsadm(""), before);
    assert!(
        has_line(&before, "TCP 192.168.50.1:80 rr"),
        "foreign service kept: {before:?}"
    );
    app.shutdown(Duration::from_millis(100)).await;
}

/// Full resync cost at scale, printed for the README (IPVS_BENCH_SERVICES, default 10000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_resync_of_many_services_is_timed() {
    if !kernel_or_skip("full_resync_of_many_services_is_timed") {
        return;
    }
    use switchyard::ipvs::reconcile::{self, DesiredService, Policy};
    use switchyard::ipvs::{DestSpec, ServiceKey, ServiceSpec, apply};
    let n: u32 = std::env::var("IPVS_BENCH_SERVICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (handle, conn) = switchyard::ipvs::connect().await.unwrap();
    tokio::spawn(conn);
    let mut desired = reconcile::Desired::new();
    for i in 0..n {
        let vip = std::net::Ipv4Addr::from(0x0a60_0000 + i);
        let key = ServiceKey {
            protocol: switchyard::config::Protocol::Tcp,
            vip: (vip, 80).into(),
        };
        let dests = (0..10u32)
            .map(|e| {
                let addr = (std::net::Ipv4Addr::from(0x0af4_0000 + i * 16 + e), 8080).into();
                (
                    addr,
                    DestSpec {
                        addr,
                        forwarding: Default::default(),
                        weight: 1,
                    },
                )
            })
            .collect();
        let spec = ServiceSpec {
            key,
            scheduler: "wrr".into(),
            flags: 0,
            timeout: 0,
        };
        desired.insert(key, DesiredService { spec, dests });
    }
    let sync = |desired: reconcile::Desired| {
        let handle = handle.clone();
        async move {
            let t = Instant::now();
            let actual = apply::dump(&handle, &desired, &Policy::default(), None)
                .await
                .unwrap();
            let dumped = t.elapsed();
            let ops = reconcile::diff(&desired, &actual, &Policy::default());
            for (op, result) in apply::apply_all(&handle, &ops).await {
                assert!(result.is_ok(), "{op:?}: {result:?}");
            }
            (ops.len(), dumped, t.elapsed())
        }
    };
    let (n_ops, _, took) = sync(desired.clone()).await;
    println!("IPVS-BENCH initial program: {n} services x 10: {n_ops} ops in {took:?}");
    let (n_ops, dumped, took) = sync(desired.clone()).await;
    println!(
        "IPVS-BENCH full resync, nothing changed: {n_ops} ops, dump {dumped:?}, total {took:?}"
    );
    assert_eq!(n_ops, 0);
    let key = *desired.keys().nth(n as usize / 2).unwrap();
    desired
        .get_mut(&key)
        .unwrap()
        .dests
        .values_mut()
        .next()
        .unwrap()
        .weight = 7;
    let mut desired_copy = desired.clone();
    desired_copy.retain(|k, _| *k == key);
    let (n_ops, dumped, took) = sync(desired).await;
    println!(
        "IPVS-BENCH full resync, one weight changed: {n_ops} ops, dump {dumped:?}, total {took:?}"
    );
    assert_eq!(n_ops, 1);
    // What the reconciler does on a table change: the service list plus the changed service.
    let t = Instant::now();
    let scope = [key].into();
    let actual = apply::dump(&handle, &desired_copy, &Policy::default(), Some(&scope))
        .await
        .unwrap();
    let ops = reconcile::diff(&desired_copy, &actual, &Policy::default());
    println!(
        "IPVS-BENCH targeted sync of the changed service: {} dumped, {} op(s), {:?}",
        actual.len(),
        ops.len(),
        t.elapsed()
    );
    sh("ipvsadm -C");
}

/// Where IPVS is absent, `auto` runs the service in user space (here on loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_falls_back_to_user_space_without_ipvs() {
    if has_ipvs() {
        return skip::skip(
            "auto_falls_back_to_user_space_without_ipvs",
            "this kernel has IPVS",
        );
    }
    let backend = tcp_backend("b1").await;
    let port = common::dead_address().await.port();
    let text = format!(
        "[ipvs]\ndataplane = \"auto\"\n[[services]]\nname = \"s\"\nlisten = \"127.0.0.1:{port}\"\n[[services.endpoints]]\naddress = \"{backend}\"\n"
    );
    let app = app::start(config(&text)).await.unwrap();
    let s = status(&app).await;
    assert_eq!(s["dataplane"], "userspace", "{s}");
    println!("fallback reason: {}", s["reason"]);
    let addr = app.local_addr("s").await.expect("a user-space listener");
    assert_eq!(backend_of(addr).await, "b1");
    let (_, metrics) = admin_get(app.admin_addr(), "/metrics").await;
    assert!(
        metrics.contains("switchyard_ipvs_available 0"),
        "no ipvs_available 0"
    );
    app.shutdown(Duration::from_millis(100)).await;
}

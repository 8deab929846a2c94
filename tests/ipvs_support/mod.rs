//! Helpers for `tests/ipvs.rs`: gating, shell commands, `ipvsadm` parsing, network
//! namespaces, raw kernel replies for fixtures.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used)]

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage};
use netlink_packet_generic::GenlMessage;
use netlink_sys::{Socket, protocols::NETLINK_GENERIC};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use switchyard::app::App;
use switchyard::ipvs::genl::IpvsCtrl;

/// Kernel tests run only in the IPVS VM (root, ip_vs loaded, a throwaway kernel).
pub fn kernel_or_skip(test: &str) -> bool {
    let vm = std::env::var("IN_IPVS_VM").is_ok_and(|v| v == "1");
    let ipvs = Path::new("/sys/module/ip_vs").exists();
    if vm && ipvs {
        reset();
        return true;
    }
    super::skip::skip(
        test,
        &format!("needs IN_IPVS_VM=1 and ip_vs (vm={vm}, ip_vs={ipvs}); run tests/ipvs-vm.sh"),
    );
    false
}

/// Whether this kernel has IPVS loaded.
pub fn has_ipvs() -> bool {
    Path::new("/sys/module/ip_vs").exists()
}

/// Runs `script` with bash; panics with its output when it fails.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash").arg("-c").arg(script).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{script}` failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs `script`, ignoring failure.
pub fn sh_quiet(script: &str) {
    let _ = Command::new("bash").arg("-c").arg(script).output();
}

/// Empties IPVS, removes our interface and the test namespaces with what runs in them
/// (a namespace outlives its name while a process is inside, and so do its veth pairs).
pub fn reset() {
    sh_quiet(
        "ip link set lo up; ipvsadm -C; ip link del switchyard0; ip link del vip0; \
         for n in client back1 back2; do ip netns pids $n | xargs -r kill; ip netns del $n; done; \
         for l in c-host b1-host b2-host; do ip link del $l; done; true",
    );
}

/// `ipvsadm -Ln` (plus `args`) with runs of blanks squeezed, one string per line.
pub fn ipvsadm(args: &str) -> Vec<String> {
    sh(&format!("ipvsadm -Ln {args}"))
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// Whether `ipvsadm -Ln` has a line starting with `prefix`.
pub fn has_line(lines: &[String], prefix: &str) -> bool {
    lines.iter().any(|l| l.starts_with(prefix))
}

/// `/debug/ipvs` as JSON.
pub async fn status(app: &App) -> serde_json::Value {
    let (code, body) = super::common::admin_get(app.admin_addr(), "/debug/ipvs").await;
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits until a sync of the current table generation (or later) finished; returns the
/// status.
pub async fn synced(app: &App) -> serde_json::Value {
    let generation = app.table().load().generation;
    for _ in 0..200 {
        let s = status(app).await;
        if s["last_sync"]["generation"].as_u64().unwrap_or(0) >= generation {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no ipvs sync of generation {generation}: {}",
        status(app).await
    );
}

/// Operations of the last sync, as `kind=count` sorted.
pub fn ops(status: &serde_json::Value) -> String {
    let ops = status["last_sync"]["operations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let v: Vec<String> = ops.iter().map(|(k, v)| format!("{k}={v}")).collect();
    v.join(",")
}

/// Three namespaces (client 10.0.1.2, back1 10.0.2.2, back2 10.0.3.2) routed through the
/// root namespace, with busybox httpd on :8080 in each backend answering its name.
pub fn namespaces() {
    sh("set -e; sysctl -w net.ipv4.ip_forward=1 >/dev/null
        mkns() {
          ip netns add $1; ip link add $2 type veth peer name $3; ip link set $3 netns $1
          ip addr add $4/24 dev $2; ip link set $2 up; ip -n $1 link set lo up
          ip -n $1 addr add $5/24 dev $3; ip -n $1 link set $3 up; ip -n $1 route add default via $4
        }
        mkns client c-host c-ns 10.0.1.1 10.0.1.2
        mkns back1 b1-host b1-ns 10.0.2.1 10.0.2.2
        mkns back2 b2-host b2-ns 10.0.3.1 10.0.3.2
        for i in 1 2; do mkdir -p /tmp/www$i; echo backend-$i > /tmp/www$i/index.html; done
        ip netns exec back1 httpd -p 10.0.2.2:8080 -h /tmp/www1
        ip netns exec back2 httpd -p 10.0.3.2:8080 -h /tmp/www2
        sleep 0.3");
}

/// One HTTP GET from the client namespace; the backend's name.
pub fn get_from_client(url: &str) -> String {
    sh(&format!(
        "ip netns exec client timeout 5 wget -q -O - {url}"
    ))
    .trim()
    .to_owned()
}

/// Sends one IPVS request on a raw netlink socket and returns every datagram of the reply
/// (for fixtures: the bytes exactly as the kernel sent them).
pub fn raw_reply(family: u16, payload: IpvsCtrl, dump: bool) -> Vec<Vec<u8>> {
    let mut socket = Socket::new(NETLINK_GENERIC).unwrap();
    socket.bind_auto().unwrap();
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(family);
    let mut msg = NetlinkMessage::from(genl);
    msg.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
    msg.header.sequence_number = 1;
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    socket.send(&buf, 0).unwrap();
    let mut out = Vec::new();
    loop {
        let (data, _) = socket.recv_from_full().unwrap();
        // nlmsg_type of the last message: NLMSG_DONE (3) or NLMSG_ERROR (2) ends the reply.
        let mut off = 0;
        let mut done = false;
        while off + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[off..off + 4].try_into().unwrap()) as usize;
            let ty = u16::from_ne_bytes(data[off + 4..off + 6].try_into().unwrap());
            done |= ty == 2 || ty == 3;
            off += (len + 3) & !3;
            if len == 0 {
                break;
            }
        }
        out.push(data);
        if done {
            return out;
        }
    }
}

/// Prints a fixture line the VM script turns into `src/ipvs/testdata/NAME.hex`.
pub fn print_fixture(name: &str, datagrams: &[Vec<u8>]) {
    let hex: String = datagrams
        .iter()
        .flatten()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("FIXTURE {name} {hex}");
}

/// Prints the fixtures `tests/ipvs-vm.sh --capture` stores: replies to a service dump, a
/// destination dump of `tcp 10.96.0.1:80`, info, timeouts, and a refused deletion.
pub async fn capture_fixtures() -> switchyard::ipvs::IpvsHandle {
    use switchyard::config::Protocol;
    use switchyard::ipvs::{ServiceKey, request};
    let (handle, conn) = switchyard::ipvs::connect().await.unwrap();
    tokio::spawn(conn);
    let family = handle.family_id();
    let key = |vip: &str| ServiceKey {
        protocol: Protocol::Tcp,
        vip: vip.parse().unwrap(),
    };
    print_fixture(
        "dump_services",
        &raw_reply(family, request::dump_services(), true),
    );
    let web = key("10.96.0.1:80");
    print_fixture(
        "dump_dests",
        &raw_reply(family, request::dump_dests(&web), true),
    );
    print_fixture("get_info", &raw_reply(family, request::get_info(), false));
    print_fixture(
        "get_timeouts",
        &raw_reply(family, request::get_timeouts(), false),
    );
    let missing = request::del_service(&key("10.99.0.1:1"));
    print_fixture("del_missing_service", &raw_reply(family, missing, false));
    handle
}

/// Three kernel services (TCP wrr, UDP rr, IPv6 mh with flags and persistence), owned range
/// 10.96.0.0/16.
pub const SERVICES: &str = r#"
[ipvs]
dataplane = "ipvs"
owned_ranges = ["10.96.0.0/16"]
drain_timeout = "60s"
[[services]]
name = "web"
listen = "10.96.0.1:80"
scheduler = "wrr"
[[services.endpoints]]
address = "10.0.0.1:8080"
weight = 3
[[services.endpoints]]
address = "10.0.0.2:8080"
[[services]]
name = "dns"
listen = "10.96.0.2:53"
protocol = "udp"
[[services.endpoints]]
address = "10.0.0.3:53"
[[services]]
name = "v6"
listen = "[fd00::1]:443"
scheduler = "mh"
scheduler_flags = ["fallback", "port"]
persistence_timeout = "60s"
[[services.endpoints]]
address = "[fd00::2]:8443"
weight = 2
"#;

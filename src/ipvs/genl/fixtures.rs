//! Replies captured from a real kernel (Debian 6.1, in the IPVS VM) by
//! `tests/ipvs-vm.sh --capture`, decoded by the same code the client uses.

use super::*;
use crate::config::Forwarding;
use crate::ipvs::request;
use crate::ipvs::types::{DestState, ServiceSpec};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

type Msg = NetlinkMessage<GenlMessage<IpvsCtrl>>;

/// The netlink messages of a fixture (hex of the datagrams as received).
fn messages(hex: &str) -> Vec<Msg> {
    let hex = hex.trim();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let mut out = Vec::new();
    let mut off = 0;
    while off + 16 <= bytes.len() {
        let len = u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        out.push(Msg::deserialize(&bytes[off..off + len]).unwrap());
        off += (len + 3) & !3;
    }
    out
}

fn payloads(hex: &str) -> Vec<IpvsCtrl> {
    messages(hex)
        .into_iter()
        .filter_map(|m| match m.payload {
            NetlinkPayload::InnerMessage(g) => Some(g.payload),
            _ => None,
        })
        .collect()
}

#[test]
fn a_captured_service_dump_decodes_to_the_programmed_services() {
    let mut got: Vec<String> = payloads(include_str!("../testdata/dump_services.hex"))
        .iter()
        .map(|p| {
            assert_eq!(IpvsCmd::from_u8(p.cmd), Some(IpvsCmd::NewService));
            let s = ServiceSpec::from_attrs(p.service().unwrap())
                .unwrap()
                .unwrap();
            format!(
                "{} {} flags={:#x} timeout={}",
                s.key, s.scheduler, s.flags, s.timeout
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            "tcp 10.96.0.1:80 wrr flags=0x0 timeout=0",
            "tcp [fd00::1]:443 mh flags=0x19 timeout=60",
            "udp 10.96.0.2:53 rr flags=0x0 timeout=0",
        ]
    );
}

#[test]
fn a_captured_destination_dump_decodes_weights_and_forwarding() {
    let mut got: Vec<DestState> = payloads(include_str!("../testdata/dump_dests.hex"))
        .iter()
        .map(|p| DestState::from_attrs(p.dest().unwrap(), "10.96.0.1".parse().unwrap()).unwrap())
        .collect();
    got.sort_by_key(|d| d.spec.addr);
    let summary: Vec<_> = got
        .iter()
        .map(|d| {
            (
                d.spec.addr.to_string(),
                d.spec.weight,
                d.spec.forwarding,
                d.active,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("10.0.0.1:8080".to_owned(), 3, Forwarding::Masq, 0),
            ("10.0.0.2:8080".to_owned(), 1, Forwarding::Masq, 0),
        ]
    );
    // The kernel also sends statistics (nested, unknown to us): kept raw, not an error.
    assert!(
        payloads(include_str!("../testdata/dump_dests.hex"))[0]
            .dest()
            .unwrap()
            .iter()
            .any(|a| matches!(a, nla::DestAttr::Other(_)))
    );
}

#[test]
fn captured_info_and_timeouts_decode() {
    let info = payloads(include_str!("../testdata/get_info.hex"));
    assert_eq!(IpvsCmd::from_u8(info[0].cmd), Some(IpvsCmd::SetInfo));
    assert!(
        info[0]
            .attrs
            .contains(&IpvsAttr::Info(nla::InfoAttr::Version(0x010201)))
    );
    assert!(
        info[0]
            .attrs
            .contains(&IpvsAttr::Info(nla::InfoAttr::ConnTabSize(4096)))
    );
    let t = request::timeouts_of(&payloads(include_str!("../testdata/get_timeouts.hex"))[0]);
    assert_eq!((t.tcp, t.tcp_fin, t.udp), (900, 120, 300));
}

#[test]
fn a_captured_kernel_refusal_carries_its_errno() {
    let msgs = messages(include_str!("../testdata/del_missing_service.hex"));
    match &msgs[0].payload {
        NetlinkPayload::Error(e) => assert_eq!(e.code.map(|c| c.get()), Some(-3)),
        other => panic!("expected an error message, got {other:?}"),
    }
}

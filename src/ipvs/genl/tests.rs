//! Encode → decode round trips of every IPVS message and attribute, defensive decoding, and
//! kernel replies captured in the VM (`src/ipvs/testdata/`).

use super::*;
use crate::config::{Forwarding, Protocol};
use crate::ipvs::request::{self, Timeouts};
use crate::ipvs::types::{DestSpec, DestState, ServiceKey, ServiceSpec};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;

const FAMILY: u16 = 0x23;

fn encode(payload: IpvsCtrl) -> Vec<u8> {
    let mut genl = GenlMessage::from_payload(payload);
    genl.set_resolved_family_id(FAMILY);
    let mut msg = NetlinkMessage::from(genl);
    msg.finalize();
    let mut buf = vec![0; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

fn decode(buf: &[u8]) -> IpvsCtrl {
    let msg = NetlinkMessage::<GenlMessage<IpvsCtrl>>::deserialize(buf).unwrap();
    assert_eq!(msg.header.message_type, FAMILY);
    match msg.payload {
        NetlinkPayload::InnerMessage(m) => m.payload,
        other => panic!("not an inner message: {other:?}"),
    }
}

fn round_trip(payload: IpvsCtrl) {
    let back = decode(&encode(payload.clone()));
    assert_eq!(back, payload);
}

fn key(vip: &str, protocol: Protocol) -> ServiceKey {
    ServiceKey {
        protocol,
        vip: vip.parse().unwrap(),
    }
}

fn spec(vip: &str) -> ServiceSpec {
    ServiceSpec {
        key: key(vip, Protocol::Tcp),
        scheduler: "mh".into(),
        flags: 0x1 | 0x8 | 0x10,
        timeout: 300,
    }
}

fn dest(addr: &str, forwarding: Forwarding) -> DestSpec {
    DestSpec {
        addr: addr.parse().unwrap(),
        forwarding,
        weight: 7,
    }
}

#[test]
fn every_request_builder_survives_an_encode_decode_round_trip() {
    let k4 = key("10.96.0.1:80", Protocol::Tcp);
    let k6 = key("[fd00::1]:53", Protocol::Udp);
    let d = dest("10.0.0.2:8080", Forwarding::Masq);
    for msg in [
        request::get_info(),
        request::dump_services(),
        request::dump_dests(&k4),
        request::add_service(&spec("10.96.0.1:80")),
        request::set_service(&spec("[fd00::1]:443")),
        request::del_service(&k6),
        request::add_dest(&k4, &d),
        request::set_dest(&k6, &dest("[fd00::2]:53", Forwarding::Route)),
        request::del_dest(&k4, d.addr),
        request::get_timeouts(),
        request::set_timeouts(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }),
    ] {
        round_trip(msg);
    }
}

#[test]
fn every_service_and_destination_attribute_round_trips() {
    let svc = vec![
        nla::SvcAttr::Af(10),
        nla::SvcAttr::Protocol(17),
        nla::SvcAttr::Addr([0xfd; 16]),
        nla::SvcAttr::Port(5353),
        nla::SvcAttr::Fwmark(42),
        nla::SvcAttr::SchedName("wlc".into()),
        nla::SvcAttr::Flags {
            flags: 3,
            mask: u32::MAX,
        },
        nla::SvcAttr::Timeout(60),
        nla::SvcAttr::Netmask(128),
        nla::SvcAttr::PeName("sip".into()),
        nla::SvcAttr::Other(DefaultNla::new(12 | NLA_F_NESTED, vec![4, 0, 1, 0])),
    ];
    let dst = vec![
        nla::DestAttr::Addr([1; 16]),
        nla::DestAttr::Port(8080),
        nla::DestAttr::FwdMethod(2),
        nla::DestAttr::Weight(100),
        nla::DestAttr::UThresh(10),
        nla::DestAttr::LThresh(5),
        nla::DestAttr::ActiveConns(3),
        nla::DestAttr::InactConns(4),
        nla::DestAttr::PersistConns(5),
        nla::DestAttr::AddrFamily(2),
        nla::DestAttr::TunType(1),
        nla::DestAttr::TunPort(6081),
        nla::DestAttr::TunFlags(3),
        nla::DestAttr::Other(DefaultNla::new(99, vec![1, 2, 3])),
    ];
    round_trip(IpvsCtrl::new(
        IpvsCmd::NewDest,
        vec![
            IpvsAttr::Service(svc),
            IpvsAttr::Dest(dst),
            IpvsAttr::TimeoutTcp(1),
            IpvsAttr::TimeoutTcpFin(2),
            IpvsAttr::TimeoutUdp(3),
            IpvsAttr::Other(DefaultNla::new(
                3 | NLA_F_NESTED,
                vec![8, 0, 1, 0, 1, 0, 0, 0],
            )),
        ],
    ));
    round_trip(IpvsCtrl::new(
        IpvsCmd::SetInfo,
        vec![
            IpvsAttr::Info(nla::InfoAttr::Version(0x010201)),
            IpvsAttr::Info(nla::InfoAttr::ConnTabSize(4096)),
            IpvsAttr::Info(nla::InfoAttr::Other(DefaultNla::new(3, vec![0; 4]))),
        ],
    ));
}

#[test]
fn typed_service_and_destination_decode_what_they_encode() {
    for vip in ["10.96.0.1:80", "[fd00::10]:8443"] {
        let s = spec(vip);
        assert_eq!(ServiceSpec::from_attrs(&s.attrs()).unwrap(), Some(s));
    }
    for (addr, fwd) in [
        ("10.0.0.2:80", Forwarding::Masq),
        ("[fd00::2]:80", Forwarding::Tunnel),
    ] {
        let d = dest(addr, fwd);
        let back = DestState::from_attrs(&d.attrs(), "10.96.0.1".parse().unwrap()).unwrap();
        assert_eq!(back.spec, d);
    }
}

#[test]
fn the_hashed_flag_the_kernel_adds_is_not_a_difference() {
    let mut attrs = spec("10.96.0.1:80").attrs();
    for a in &mut attrs {
        if let nla::SvcAttr::Flags { flags, .. } = a {
            *flags |= crate::ipvs::types::SVC_F_HASHED;
        }
    }
    assert_eq!(
        ServiceSpec::from_attrs(&attrs).unwrap(),
        Some(spec("10.96.0.1:80"))
    );
}

#[test]
fn firewall_mark_and_sctp_services_decode_as_not_ours() {
    let mut fwmark = key("10.0.0.1:0", Protocol::Tcp).attrs();
    fwmark.push(nla::SvcAttr::Fwmark(7));
    fwmark.push(nla::SvcAttr::SchedName("rr".into()));
    assert_eq!(ServiceSpec::from_attrs(&fwmark).unwrap(), None);
    let sctp = vec![
        nla::SvcAttr::Af(2),
        nla::SvcAttr::Protocol(132),
        nla::SvcAttr::Addr([0; 16]),
        nla::SvcAttr::Port(1),
        nla::SvcAttr::SchedName("rr".into()),
    ];
    assert_eq!(ServiceSpec::from_attrs(&sctp).unwrap(), None);
}

#[test]
fn a_missing_attribute_is_a_typed_error_naming_it() {
    let attrs: Vec<_> = spec("10.96.0.1:80")
        .attrs()
        .into_iter()
        .filter(|a| !matches!(a, nla::SvcAttr::Port(_)))
        .collect();
    let err = ServiceSpec::from_attrs(&attrs).unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    let err =
        DestState::from_attrs(&[nla::DestAttr::Port(1)], "10.0.0.1".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("addr"), "{err}");
}

#[test]
fn unknown_and_malformed_attributes_are_kept_raw_not_fatal() {
    // A port attribute of 3 bytes, an unknown kind 77, then a valid scheduler name.
    let bytes = [
        7, 0, 4, 0, 1, 2, 3, 0, //
        8, 0, 77, 0, 9, 9, 9, 9, //
        7, 0, 6, 0, b'r', b'r', 0, 0,
    ];
    let attrs = nla::parse_svc(&bytes);
    assert_eq!(attrs.len(), 3);
    assert!(matches!(&attrs[0], nla::SvcAttr::Other(_)));
    assert!(matches!(&attrs[1], nla::SvcAttr::Other(_)));
    assert_eq!(attrs[2], nla::SvcAttr::SchedName("rr".into()));
}

#[test]
fn truncated_or_garbage_payloads_never_panic() {
    let full = encode(request::add_dest(
        &key("10.96.0.1:80", Protocol::Tcp),
        &dest("10.0.0.2:8080", Forwarding::Masq),
    ));
    for cut in 0..full.len() {
        let _ = NetlinkMessage::<GenlMessage<IpvsCtrl>>::deserialize(&full[..cut]);
        let _ = nla::parse_svc(&full[cut..]);
        let _ = nla::parse_dest(&full[cut..]);
        let _ = IpvsCtrl::parse_with_param(&full[cut..], GenlHeader { cmd: 5, version: 1 });
    }
    let mut noise = 0x1234_5678u32;
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..64)
            .map(|_| {
                noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (noise >> 16) as u8
            })
            .collect();
        let _ = IpvsCtrl::parse_with_param(&bytes, GenlHeader { cmd: 1, version: 1 });
    }
}

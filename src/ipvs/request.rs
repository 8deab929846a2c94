//! Request builders: one function per IPVS operation, each returning the message to send.
//!
//! They are pure (no socket), so every message can be checked by an encode → decode round
//! trip. Each says which `ipvsadm` command sends the same request.

use super::genl::{IpvsAttr, IpvsCmd, IpvsCtrl};
use super::types::{DestSpec, ServiceKey, ServiceSpec};
use serde::Serialize;
use std::net::SocketAddr;

/// Connection timeouts of the IPVS connection table, in seconds (0 leaves one unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Timeouts {
    /// Established TCP connections.
    pub tcp: u32,
    /// TCP after a FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

/// `ipvsadm -Ln` header line: version and connection table size.
pub fn get_info() -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::GetInfo, Vec::new())
}

/// `ipvsadm -Ln` (services part): dump every virtual service (send with `NLM_F_DUMP`).
pub fn dump_services() -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::GetService, Vec::new())
}

/// `ipvsadm -Ln -t VIP:PORT` (real servers part): dump one service's destinations.
pub fn dump_dests(key: &ServiceKey) -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::GetDest, vec![IpvsAttr::Service(key.attrs())])
}

/// `ipvsadm -A -t|-u VIP:PORT -s SCHED [-p TIMEOUT] [-b FLAGS]`.
pub fn add_service(spec: &ServiceSpec) -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::NewService, vec![IpvsAttr::Service(spec.attrs())])
}

/// `ipvsadm -E -t|-u VIP:PORT -s SCHED [-p TIMEOUT] [-b FLAGS]`.
pub fn set_service(spec: &ServiceSpec) -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::SetService, vec![IpvsAttr::Service(spec.attrs())])
}

/// `ipvsadm -D -t|-u VIP:PORT`.
pub fn del_service(key: &ServiceKey) -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::DelService, vec![IpvsAttr::Service(key.attrs())])
}

/// `ipvsadm -a -t|-u VIP:PORT -r RIP:PORT -m|-g|-i -w WEIGHT`.
pub fn add_dest(key: &ServiceKey, dest: &DestSpec) -> IpvsCtrl {
    IpvsCtrl::new(
        IpvsCmd::NewDest,
        vec![IpvsAttr::Service(key.attrs()), IpvsAttr::Dest(dest.attrs())],
    )
}

/// `ipvsadm -e -t|-u VIP:PORT -r RIP:PORT -m|-g|-i -w WEIGHT`.
pub fn set_dest(key: &ServiceKey, dest: &DestSpec) -> IpvsCtrl {
    IpvsCtrl::new(
        IpvsCmd::SetDest,
        vec![IpvsAttr::Service(key.attrs()), IpvsAttr::Dest(dest.attrs())],
    )
}

/// `ipvsadm -d -t|-u VIP:PORT -r RIP:PORT`.
pub fn del_dest(key: &ServiceKey, dest: SocketAddr) -> IpvsCtrl {
    IpvsCtrl::new(
        IpvsCmd::DelDest,
        vec![
            IpvsAttr::Service(key.attrs()),
            IpvsAttr::Dest(DestSpec::key_attrs(dest)),
        ],
    )
}

/// `ipvsadm -L --timeout`.
pub fn get_timeouts() -> IpvsCtrl {
    IpvsCtrl::new(IpvsCmd::GetConfig, Vec::new())
}

/// `ipvsadm --set TCP TCPFIN UDP`.
pub fn set_timeouts(t: Timeouts) -> IpvsCtrl {
    IpvsCtrl::new(
        IpvsCmd::SetConfig,
        vec![
            IpvsAttr::TimeoutTcp(t.tcp),
            IpvsAttr::TimeoutTcpFin(t.tcp_fin),
            IpvsAttr::TimeoutUdp(t.udp),
        ],
    )
}

/// The timeouts in a `GET_CONFIG` reply.
pub fn timeouts_of(reply: &IpvsCtrl) -> Timeouts {
    let mut t = Timeouts::default();
    for a in &reply.attrs {
        match a {
            IpvsAttr::TimeoutTcp(v) => t.tcp = *v,
            IpvsAttr::TimeoutTcpFin(v) => t.tcp_fin = *v,
            IpvsAttr::TimeoutUdp(v) => t.udp = *v,
            _ => {}
        }
    }
    t
}

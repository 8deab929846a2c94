//! Typed IPVS objects and their conversion to and from netlink attributes.
//!
//! A [`ServiceKey`] is what identifies a kernel virtual service (protocol, VIP, port); a
//! [`ServiceSpec`] adds what can change in place (scheduler, flags, persistence); a
//! [`DestSpec`] is one real server. Decoding checks each required attribute and names the
//! missing one; firewall-mark services and protocols other than TCP and UDP decode to `None`
//! (someone else's, never touched).

use super::error::IpvsError;
use super::nla::{DestAttr, SvcAttr};
use crate::config::{Forwarding, Protocol};
use serde::Serialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;
const IPPROTO_UDP: u16 = 17;
/// `IP_VS_SVC_F_PERSISTENT`.
pub const SVC_F_PERSISTENT: u32 = 0x1;
/// `IP_VS_SVC_F_HASHED`: set by the kernel on every service it holds; never compared.
pub const SVC_F_HASHED: u32 = 0x2;
/// `IP_VS_SVC_F_SCHED1`: `sh-fallback` / `mh-fallback`.
pub const SVC_F_SCHED1: u32 = 0x8;
/// `IP_VS_SVC_F_SCHED2`: `sh-port` / `mh-port`.
pub const SVC_F_SCHED2: u32 = 0x10;

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ServiceKey {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// VIP and port.
    pub vip: SocketAddr,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol, self.vip)
    }
}

/// A virtual service as Switchyard programs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSpec {
    /// Identity.
    pub key: ServiceKey,
    /// Kernel scheduler name (`rr`, `wrr`, `lc`, `wlc`, `sh`, `mh`, `twos`).
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` without `HASHED`.
    pub flags: u32,
    /// Persistence timeout in seconds (0 when not persistent).
    pub timeout: u32,
}

/// A real server as Switchyard programs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DestSpec {
    /// Address and port.
    pub addr: SocketAddr,
    /// Forwarding method.
    pub forwarding: Forwarding,
    /// Weight; 0 takes no new connections.
    pub weight: u32,
}

/// A real server as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DestState {
    /// What is programmed.
    pub spec: DestSpec,
    /// Established connections.
    pub active: u32,
    /// Other connections (closing, TIME_WAIT, UDP).
    pub inactive: u32,
}

fn af(ip: IpAddr) -> u16 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn addr_bytes(ip: IpAddr) -> [u8; 16] {
    let mut out = [0; 16];
    match ip {
        IpAddr::V4(v4) => out[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out = v6.octets(),
    }
    out
}

fn ip_of(af: u16, bytes: [u8; 16]) -> Option<IpAddr> {
    match af {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        ))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(bytes))),
        _ => None,
    }
}

fn fwd_code(f: Forwarding) -> u32 {
    match f {
        Forwarding::Masq => 0,
        Forwarding::Tunnel => 2,
        Forwarding::Route => 3,
    }
}

impl ServiceKey {
    /// The attributes that name the service (enough for `DEL_SERVICE` and `GET_DEST`).
    pub fn attrs(&self) -> Vec<SvcAttr> {
        vec![
            SvcAttr::Af(af(self.vip.ip())),
            SvcAttr::Protocol(match self.protocol {
                Protocol::Tcp => IPPROTO_TCP,
                Protocol::Udp => IPPROTO_UDP,
            }),
            SvcAttr::Addr(addr_bytes(self.vip.ip())),
            SvcAttr::Port(self.vip.port()),
        ]
    }
}

impl ServiceSpec {
    /// Every attribute `NEW_SERVICE`/`SET_SERVICE` needs.
    pub fn attrs(&self) -> Vec<SvcAttr> {
        let mut attrs = self.key.attrs();
        attrs.extend([
            SvcAttr::SchedName(self.scheduler.clone()),
            SvcAttr::Flags {
                flags: self.flags,
                mask: u32::MAX,
            },
            SvcAttr::Timeout(self.timeout),
            SvcAttr::Netmask(if self.key.vip.is_ipv4() {
                u32::MAX
            } else {
                128
            }),
        ]);
        attrs
    }

    /// Decodes a service from a dump; `Ok(None)` for services Switchyard cannot own
    /// (firewall marks, SCTP).
    pub fn from_attrs(attrs: &[SvcAttr]) -> Result<Option<ServiceSpec>, IpvsError> {
        let (mut family, mut proto, mut addr, mut port) = (None, None, None, None);
        let (mut sched, mut flags, mut timeout, mut fwmark) = (None, 0, 0, 0);
        for a in attrs {
            match a {
                SvcAttr::Af(v) => family = Some(*v),
                SvcAttr::Protocol(v) => proto = Some(*v),
                SvcAttr::Addr(v) => addr = Some(*v),
                SvcAttr::Port(v) => port = Some(*v),
                SvcAttr::Fwmark(v) => fwmark = *v,
                SvcAttr::SchedName(v) => sched = Some(v.clone()),
                SvcAttr::Flags { flags: f, .. } => flags = *f & !SVC_F_HASHED,
                SvcAttr::Timeout(v) => timeout = *v,
                SvcAttr::Netmask(_) | SvcAttr::PeName(_) | SvcAttr::Other(_) => {}
            }
        }
        if fwmark != 0 {
            return Ok(None);
        }
        let missing = |what: &'static str| IpvsError::Decode {
            op: "dump services",
            what: format!("service without a valid {what} attribute"),
        };
        let family = family.ok_or_else(|| missing("af"))?;
        let protocol = match proto.ok_or_else(|| missing("protocol"))? {
            IPPROTO_TCP => Protocol::Tcp,
            IPPROTO_UDP => Protocol::Udp,
            _ => return Ok(None),
        };
        let ip =
            ip_of(family, addr.ok_or_else(|| missing("addr"))?).ok_or_else(|| missing("af"))?;
        let port = port.ok_or_else(|| missing("port"))?;
        Ok(Some(ServiceSpec {
            key: ServiceKey {
                protocol,
                vip: SocketAddr::new(ip, port),
            },
            scheduler: sched.ok_or_else(|| missing("sched_name"))?,
            flags,
            timeout,
        }))
    }
}

impl DestSpec {
    /// Every attribute `NEW_DEST`/`SET_DEST` needs.
    pub fn attrs(&self) -> Vec<DestAttr> {
        vec![
            DestAttr::Addr(addr_bytes(self.addr.ip())),
            DestAttr::Port(self.addr.port()),
            DestAttr::AddrFamily(af(self.addr.ip())),
            DestAttr::FwdMethod(fwd_code(self.forwarding)),
            DestAttr::Weight(self.weight),
            DestAttr::UThresh(0),
            DestAttr::LThresh(0),
        ]
    }

    /// The attributes that name a destination (for `DEL_DEST`).
    pub fn key_attrs(addr: SocketAddr) -> Vec<DestAttr> {
        vec![
            DestAttr::Addr(addr_bytes(addr.ip())),
            DestAttr::Port(addr.port()),
            DestAttr::AddrFamily(af(addr.ip())),
        ]
    }
}

impl DestState {
    /// Decodes a destination of a service whose family is `service_af`'s (older kernels
    /// send no `ADDR_FAMILY`).
    pub fn from_attrs(attrs: &[DestAttr], service_vip: IpAddr) -> Result<DestState, IpvsError> {
        let (mut addr, mut port, mut family, mut fwd, mut weight) = (None, None, None, None, None);
        let (mut active, mut inactive) = (0, 0);
        for a in attrs {
            match a {
                DestAttr::Addr(v) => addr = Some(*v),
                DestAttr::Port(v) => port = Some(*v),
                DestAttr::AddrFamily(v) => family = Some(*v),
                DestAttr::FwdMethod(v) => fwd = Some(*v),
                DestAttr::Weight(v) => weight = Some(*v),
                DestAttr::ActiveConns(v) => active = *v,
                DestAttr::InactConns(v) => inactive = *v,
                _ => {}
            }
        }
        let missing = |what: &'static str| IpvsError::Decode {
            op: "dump destinations",
            what: format!("destination without a valid {what} attribute"),
        };
        let family = family.unwrap_or(af(service_vip));
        let ip = ip_of(family, addr.ok_or_else(|| missing("addr"))?)
            .ok_or_else(|| missing("addr_family"))?;
        let forwarding = match fwd.ok_or_else(|| missing("fwd_method"))? & 0x7 {
            0 => Forwarding::Masq,
            2 => Forwarding::Tunnel,
            3 => Forwarding::Route,
            _ => return Err(missing("fwd_method")),
        };
        Ok(DestState {
            spec: DestSpec {
                addr: SocketAddr::new(ip, port.ok_or_else(|| missing("port"))?),
                forwarding,
                weight: weight.ok_or_else(|| missing("weight"))?,
            },
            active,
            inactive,
        })
    }
}

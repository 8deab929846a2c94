//! The `IPVS` generic netlink message: a command and its attributes.
//!
//! [`IpvsCtrl`] is the payload of a `GenlMessage` (netlink-packet-generic does the `nlmsghdr`
//! and `genlmsghdr`). Which attributes a message carries depends on its command: the
//! `GET_INFO`/`SET_INFO` pair carries `IPVS_INFO_ATTR_*` at the top level, every other command
//! `IPVS_CMD_ATTR_*` (a nested service, a nested destination, timeouts). Parsing never fails:
//! a reply that is odd in any way still yields a message, and the typed layer
//! ([`super::types`]) says precisely what was missing.

use super::nla::{self, DestAttr, InfoAttr, SvcAttr};
use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NLA_F_NESTED, Nla, ParseableParametrized,
};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// `IPVS_GENL_VERSION`.
pub const IPVS_GENL_VERSION: u8 = 1;

/// IPVS generic netlink commands (`IPVS_CMD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IpvsCmd {
    /// `ipvsadm -A`.
    NewService = 1,
    /// `ipvsadm -E`.
    SetService = 2,
    /// `ipvsadm -D`.
    DelService = 3,
    /// `ipvsadm -L` (dump) or one service.
    GetService = 4,
    /// `ipvsadm -a`.
    NewDest = 5,
    /// `ipvsadm -e`.
    SetDest = 6,
    /// `ipvsadm -d`.
    DelDest = 7,
    /// Dump a service's destinations.
    GetDest = 8,
    /// `ipvsadm --set tcp tcpfin udp`.
    SetConfig = 12,
    /// Read the timeouts.
    GetConfig = 13,
    /// The kernel's answer to `GET_INFO`.
    SetInfo = 14,
    /// Version and connection table size (`ipvsadm -L` header line).
    GetInfo = 15,
    /// `ipvsadm -Z`.
    Zero = 16,
    /// `ipvsadm -C`.
    Flush = 17,
}

impl IpvsCmd {
    /// The command with this number, if Switchyard knows it.
    pub fn from_u8(cmd: u8) -> Option<IpvsCmd> {
        use IpvsCmd::*;
        [
            NewService, SetService, DelService, GetService, NewDest, SetDest, DelDest, GetDest,
            SetConfig, GetConfig, SetInfo, GetInfo, Zero, Flush,
        ]
        .into_iter()
        .find(|c| *c as u8 == cmd)
    }
}

/// One top-level attribute of an IPVS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsAttr {
    /// `IPVS_CMD_ATTR_SERVICE` (nested).
    Service(Vec<SvcAttr>),
    /// `IPVS_CMD_ATTR_DEST` (nested).
    Dest(Vec<DestAttr>),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP`, seconds.
    TimeoutTcp(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_TCP_FIN`, seconds.
    TimeoutTcpFin(u32),
    /// `IPVS_CMD_ATTR_TIMEOUT_UDP`, seconds.
    TimeoutUdp(u32),
    /// An `IPVS_INFO_ATTR_*` (only in `GET_INFO`/`SET_INFO`).
    Info(InfoAttr),
    /// Anything else (daemon attributes, newer kernels).
    Other(DefaultNla),
}

/// The payload of an IPVS generic netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsCtrl {
    /// `IPVS_CMD_*` (kept as a number: the kernel may answer with one we do not know).
    pub cmd: u8,
    /// Top-level attributes.
    pub attrs: Vec<IpvsAttr>,
}

impl IpvsCtrl {
    /// A message for `cmd` with `attrs`.
    pub fn new(cmd: IpvsCmd, attrs: Vec<IpvsAttr>) -> Self {
        Self {
            cmd: cmd as u8,
            attrs,
        }
    }

    /// The nested service attributes, if any.
    pub fn service(&self) -> Option<&[SvcAttr]> {
        self.attrs.iter().find_map(|a| match a {
            IpvsAttr::Service(s) => Some(s.as_slice()),
            _ => None,
        })
    }

    /// The nested destination attributes, if any.
    pub fn dest(&self) -> Option<&[DestAttr]> {
        self.attrs.iter().find_map(|a| match a {
            IpvsAttr::Dest(d) => Some(d.as_slice()),
            _ => None,
        })
    }
}

impl GenlFamily for IpvsCtrl {
    fn family_name() -> &'static str {
        "IPVS"
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        IPVS_GENL_VERSION
    }
}

impl Nla for IpvsAttr {
    fn value_len(&self) -> usize {
        match self {
            IpvsAttr::Service(a) => a.as_slice().buffer_len(),
            IpvsAttr::Dest(a) => a.as_slice().buffer_len(),
            IpvsAttr::TimeoutTcp(_) | IpvsAttr::TimeoutTcpFin(_) | IpvsAttr::TimeoutUdp(_) => 4,
            IpvsAttr::Info(a) => a.value_len(),
            IpvsAttr::Other(a) => a.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            IpvsAttr::Service(_) => 1 | NLA_F_NESTED,
            IpvsAttr::Dest(_) => 2 | NLA_F_NESTED,
            IpvsAttr::TimeoutTcp(_) => 4,
            IpvsAttr::TimeoutTcpFin(_) => 5,
            IpvsAttr::TimeoutUdp(_) => 6,
            IpvsAttr::Info(a) => a.kind(),
            IpvsAttr::Other(a) => a.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            IpvsAttr::Service(a) => a.as_slice().emit(buffer),
            IpvsAttr::Dest(a) => a.as_slice().emit(buffer),
            IpvsAttr::TimeoutTcp(v) | IpvsAttr::TimeoutTcpFin(v) | IpvsAttr::TimeoutUdp(v) => {
                buffer[..4].copy_from_slice(&v.to_ne_bytes());
            }
            IpvsAttr::Info(a) => a.emit_value(buffer),
            IpvsAttr::Other(a) => a.emit_value(buffer),
        }
    }
}

impl Emitable for IpvsCtrl {
    fn buffer_len(&self) -> usize {
        self.attrs.as_slice().buffer_len()
    }

    fn emit(&self, buffer: &mut [u8]) {
        self.attrs.as_slice().emit(buffer);
    }
}

impl ParseableParametrized<[u8], GenlHeader> for IpvsCtrl {
    fn parse_with_param(buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        let info = matches!(
            IpvsCmd::from_u8(header.cmd),
            Some(IpvsCmd::GetInfo | IpvsCmd::SetInfo)
        );
        let attrs = if info {
            nla::parse_info(buf)
                .into_iter()
                .map(IpvsAttr::Info)
                .collect()
        } else {
            nla::parse_all(
                buf,
                |kind, v| {
                    let u32_of = |v: &[u8]| v.try_into().ok().map(u32::from_ne_bytes);
                    Some(match kind {
                        1 => IpvsAttr::Service(nla::parse_svc(v)),
                        2 => IpvsAttr::Dest(nla::parse_dest(v)),
                        4 => IpvsAttr::TimeoutTcp(u32_of(v)?),
                        5 => IpvsAttr::TimeoutTcpFin(u32_of(v)?),
                        6 => IpvsAttr::TimeoutUdp(u32_of(v)?),
                        _ => return None,
                    })
                },
                IpvsAttr::Other,
            )
        };
        Ok(IpvsCtrl {
            cmd: header.cmd,
            attrs,
        })
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

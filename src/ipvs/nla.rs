//! IPVS netlink attributes (`include/uapi/linux/ip_vs.h`): services, destinations, info.
//!
//! Each attribute enum has a variant per attribute Switchyard reads or writes and `Other` for
//! everything else (statistics, attributes of newer kernels): unknown attributes are kept raw
//! and skipped by the typed layer, never an error. A known attribute with a bad length is
//! also kept raw, so a strange kernel reply degrades into a "missing attribute" error for
//! that one object instead of losing the whole message.

use netlink_packet_core::{DefaultNla, Nla, NlasIterator, Parseable};

/// Service attributes (`IPVS_SVC_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcAttr {
    /// `AF`: address family (`AF_INET` 2, `AF_INET6` 10).
    Af(u16),
    /// `PROTOCOL`: IP protocol (TCP 6, UDP 17).
    Protocol(u16),
    /// `ADDR`: virtual address, 16 bytes (IPv4 in the first four).
    Addr([u8; 16]),
    /// `PORT`: virtual port (network order on the wire).
    Port(u16),
    /// `FWMARK`: firewall-mark service (not used by Switchyard, decoded for display).
    Fwmark(u32),
    /// `SCHED_NAME`: scheduler name.
    SchedName(String),
    /// `FLAGS`: `struct ip_vs_flags { flags, mask }`.
    Flags {
        /// Flag bits (`IP_VS_SVC_F_*`).
        flags: u32,
        /// Which bits to change.
        mask: u32,
    },
    /// `TIMEOUT`: persistence timeout in seconds.
    Timeout(u32),
    /// `NETMASK`: persistence granularity (IPv4 mask, or IPv6 prefix length).
    Netmask(u32),
    /// `PE_NAME`: persistence engine.
    PeName(String),
    /// Anything else (stats, newer attributes).
    Other(DefaultNla),
}

/// Destination attributes (`IPVS_DEST_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestAttr {
    /// `ADDR`: real server address, 16 bytes.
    Addr([u8; 16]),
    /// `PORT`: real server port (network order on the wire).
    Port(u16),
    /// `FWD_METHOD`: `IP_VS_CONN_F_MASQ` 0, `TUNNEL` 2, `DROUTE` 3.
    FwdMethod(u32),
    /// `WEIGHT`.
    Weight(u32),
    /// `U_THRESH`: upper connection threshold (0: none).
    UThresh(u32),
    /// `L_THRESH`: lower connection threshold.
    LThresh(u32),
    /// `ACTIVE_CONNS` (read only).
    ActiveConns(u32),
    /// `INACT_CONNS` (read only).
    InactConns(u32),
    /// `PERSIST_CONNS` (read only).
    PersistConns(u32),
    /// `ADDR_FAMILY`: the destination's family (Linux 3.18+).
    AddrFamily(u16),
    /// `TUN_TYPE`: tunnel encapsulation (0 ipip).
    TunType(u8),
    /// `TUN_PORT`: tunnel port (network order on the wire).
    TunPort(u16),
    /// `TUN_FLAGS`: tunnel flags.
    TunFlags(u16),
    /// Anything else.
    Other(DefaultNla),
}

/// Attributes of `IPVS_CMD_{GET,SET}_INFO` (`IPVS_INFO_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoAttr {
    /// `VERSION`: `major << 16 | minor << 8 | patch`.
    Version(u32),
    /// `CONN_TAB_SIZE`: connection hash table size.
    ConnTabSize(u32),
    /// Anything else.
    Other(DefaultNla),
}

/// Bytes of one attribute value, for the `Nla` impls.
enum Value<'a> {
    U8(u8),
    U16(u16),
    U16Be(u16),
    U32(u32),
    Bytes(&'a [u8]),
    Str(&'a str),
    Pair(u32, u32),
}

impl Value<'_> {
    fn len(&self) -> usize {
        match self {
            Value::U8(_) => 1,
            Value::U16(_) | Value::U16Be(_) => 2,
            Value::U32(_) => 4,
            Value::Pair(..) => 8,
            Value::Bytes(b) => b.len(),
            Value::Str(s) => s.len() + 1,
        }
    }

    fn emit(&self, buf: &mut [u8]) {
        match self {
            Value::U8(v) => buf[0] = *v,
            Value::U16(v) => buf[..2].copy_from_slice(&v.to_ne_bytes()),
            Value::U16Be(v) => buf[..2].copy_from_slice(&v.to_be_bytes()),
            Value::U32(v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
            Value::Pair(a, b) => {
                buf[..4].copy_from_slice(&a.to_ne_bytes());
                buf[4..8].copy_from_slice(&b.to_ne_bytes());
            }
            Value::Bytes(b) => buf[..b.len()].copy_from_slice(b),
            Value::Str(s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
        }
    }
}

macro_rules! nla_impl {
    ($ty:ty, |$s:ident| $value:expr, $other:path) => {
        impl Nla for $ty {
            fn value_len(&self) -> usize {
                let $s = self;
                match $s {
                    $other(nla) => nla.value_len(),
                    _ => $value.1.len(),
                }
            }
            fn kind(&self) -> u16 {
                let $s = self;
                match $s {
                    $other(nla) => nla.kind(),
                    _ => $value.0,
                }
            }
            fn emit_value(&self, buffer: &mut [u8]) {
                let $s = self;
                match $s {
                    $other(nla) => nla.emit_value(buffer),
                    _ => $value.1.emit(buffer),
                }
            }
        }
    };
}

nla_impl!(SvcAttr, |s| svc_value(s), SvcAttr::Other);
nla_impl!(DestAttr, |s| dest_value(s), DestAttr::Other);
nla_impl!(InfoAttr, |s| info_value(s), InfoAttr::Other);

fn svc_value(a: &SvcAttr) -> (u16, Value<'_>) {
    match a {
        SvcAttr::Af(v) => (1, Value::U16(*v)),
        SvcAttr::Protocol(v) => (2, Value::U16(*v)),
        SvcAttr::Addr(v) => (3, Value::Bytes(v)),
        SvcAttr::Port(v) => (4, Value::U16Be(*v)),
        SvcAttr::Fwmark(v) => (5, Value::U32(*v)),
        SvcAttr::SchedName(v) => (6, Value::Str(v)),
        SvcAttr::Flags { flags, mask } => (7, Value::Pair(*flags, *mask)),
        SvcAttr::Timeout(v) => (8, Value::U32(*v)),
        SvcAttr::Netmask(v) => (9, Value::U32(*v)),
        SvcAttr::PeName(v) => (11, Value::Str(v)),
        SvcAttr::Other(_) => (0, Value::Bytes(&[])),
    }
}

fn dest_value(a: &DestAttr) -> (u16, Value<'_>) {
    match a {
        DestAttr::Addr(v) => (1, Value::Bytes(v)),
        DestAttr::Port(v) => (2, Value::U16Be(*v)),
        DestAttr::FwdMethod(v) => (3, Value::U32(*v)),
        DestAttr::Weight(v) => (4, Value::U32(*v)),
        DestAttr::UThresh(v) => (5, Value::U32(*v)),
        DestAttr::LThresh(v) => (6, Value::U32(*v)),
        DestAttr::ActiveConns(v) => (7, Value::U32(*v)),
        DestAttr::InactConns(v) => (8, Value::U32(*v)),
        DestAttr::PersistConns(v) => (9, Value::U32(*v)),
        DestAttr::AddrFamily(v) => (11, Value::U16(*v)),
        DestAttr::TunType(v) => (13, Value::U8(*v)),
        DestAttr::TunPort(v) => (14, Value::U16Be(*v)),
        DestAttr::TunFlags(v) => (15, Value::U16(*v)),
        DestAttr::Other(_) => (0, Value::Bytes(&[])),
    }
}

fn info_value(a: &InfoAttr) -> (u16, Value<'_>) {
    match a {
        InfoAttr::Version(v) => (1, Value::U32(*v)),
        InfoAttr::ConnTabSize(v) => (2, Value::U32(*v)),
        InfoAttr::Other(_) => (0, Value::Bytes(&[])),
    }
}

fn u16_ne(v: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(v.try_into().ok()?))
}
fn u16_be(v: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(v.try_into().ok()?))
}
fn u32_ne(v: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(v.try_into().ok()?))
}
fn string(v: &[u8]) -> Option<String> {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8(v[..end].to_vec()).ok()
}
fn addr(v: &[u8]) -> Option<[u8; 16]> {
    v.try_into().ok()
}

/// Parses a run of attributes with `known`, keeping what it does not know (or cannot read)
/// as `other`. A truncated tail ends the list; what came before it is kept.
pub(super) fn parse_all<T>(
    buf: &[u8],
    known: impl Fn(u16, &[u8]) -> Option<T>,
    other: impl Fn(DefaultNla) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    for nla in NlasIterator::new(buf) {
        let Ok(nla) = nla else { break };
        let parsed = known(nla.kind(), nla.value());
        match parsed {
            Some(attr) => out.push(attr),
            None => match DefaultNla::parse(&nla) {
                Ok(raw) => out.push(other(raw)),
                Err(_) => break,
            },
        }
    }
    out
}

pub(super) fn parse_svc(buf: &[u8]) -> Vec<SvcAttr> {
    parse_all(
        buf,
        |kind, v| {
            Some(match kind {
                1 => SvcAttr::Af(u16_ne(v)?),
                2 => SvcAttr::Protocol(u16_ne(v)?),
                3 => SvcAttr::Addr(addr(v)?),
                4 => SvcAttr::Port(u16_be(v)?),
                5 => SvcAttr::Fwmark(u32_ne(v)?),
                6 => SvcAttr::SchedName(string(v)?),
                7 if v.len() == 8 => SvcAttr::Flags {
                    flags: u32_ne(&v[..4])?,
                    mask: u32_ne(&v[4..])?,
                },
                8 => SvcAttr::Timeout(u32_ne(v)?),
                9 => SvcAttr::Netmask(u32_ne(v)?),
                11 => SvcAttr::PeName(string(v)?),
                _ => return None,
            })
        },
        SvcAttr::Other,
    )
}

pub(super) fn parse_dest(buf: &[u8]) -> Vec<DestAttr> {
    parse_all(
        buf,
        |kind, v| {
            Some(match kind {
                1 => DestAttr::Addr(addr(v)?),
                2 => DestAttr::Port(u16_be(v)?),
                3 => DestAttr::FwdMethod(u32_ne(v)?),
                4 => DestAttr::Weight(u32_ne(v)?),
                5 => DestAttr::UThresh(u32_ne(v)?),
                6 => DestAttr::LThresh(u32_ne(v)?),
                7 => DestAttr::ActiveConns(u32_ne(v)?),
                8 => DestAttr::InactConns(u32_ne(v)?),
                9 => DestAttr::PersistConns(u32_ne(v)?),
                11 => DestAttr::AddrFamily(u16_ne(v)?),
                13 if v.len() == 1 => DestAttr::TunType(v[0]),
                14 => DestAttr::TunPort(u16_be(v)?),
                15 => DestAttr::TunFlags(u16_ne(v)?),
                _ => return None,
            })
        },
        DestAttr::Other,
    )
}

pub(super) fn parse_info(buf: &[u8]) -> Vec<InfoAttr> {
    parse_all(
        buf,
        |kind, v| {
            Some(match kind {
                1 => InfoAttr::Version(u32_ne(v)?),
                2 => InfoAttr::ConnTabSize(u32_ne(v)?),
                _ => return None,
            })
        },
        InfoAttr::Other,
    )
}

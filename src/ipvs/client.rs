//! The IPVS client: a netlink connection task and a cloneable [`IpvsHandle`], in the
//! rtnetlink style.
//!
//! [`connect`] resolves the `IPVS` generic netlink family (a `CTRL_CMD_GETFAMILY` on a short
//! `nlctrl` connection; `ENOENT` means no `ip_vs` in this kernel), then opens the connection
//! the handle talks through. The caller spawns the returned connection future. Every request
//! has a deadline, so a kernel that never answers cannot wedge the reconciler, and every
//! failure is an [`IpvsError`] naming the operation.

use super::error::IpvsError;
use super::genl::{IpvsAttr, IpvsCtrl};
use super::nla::InfoAttr;
use super::request::{self, Timeouts};
use super::types::{DestSpec, DestState, ServiceKey, ServiceSpec};
use futures::StreamExt;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_generic::GenlMessage;
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_sys::SocketAddr;
use netlink_sys::protocols::NETLINK_GENERIC;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr as IpSocketAddr;
use std::time::Duration;

/// Deadline of one request (a dump of thousands of services takes milliseconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `EBUSY`: a dump is still in progress on this socket.
const EBUSY: i32 = 16;
/// How often a dump refused with `EBUSY` is retried.
const DUMP_RETRIES: u64 = 5;

type Conn = netlink_proto::ConnectionHandle<GenlMessage<IpvsCtrl>>;

/// A cloneable handle to the IPVS connection.
#[derive(Debug, Clone)]
pub struct IpvsHandle {
    conn: Conn,
    family: u16,
}

/// `IPVS_CMD_GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Info {
    /// IPVS version (`1.2.1` on every kernel since 2.6).
    pub version: (u8, u8, u8),
    /// Connection hash table size.
    pub conn_tab_size: u32,
}

/// Resolves the `IPVS` family and opens a connection; spawn the returned future.
pub async fn connect() -> Result<(IpvsHandle, impl Future<Output = ()>), IpvsError> {
    let family = resolve_family().await?;
    let (conn, handle, _) = netlink_proto::new_connection::<GenlMessage<IpvsCtrl>>(NETLINK_GENERIC)
        .map_err(IpvsError::Socket)?;
    Ok((
        IpvsHandle {
            conn: handle,
            family,
        },
        conn,
    ))
}

async fn resolve_family() -> Result<u16, IpvsError> {
    let (conn, handle, _) = netlink_proto::new_connection::<GenlMessage<GenlCtrl>>(NETLINK_GENERIC)
        .map_err(IpvsError::Socket)?;
    let task = tokio::spawn(conn);
    let mut msg = NetlinkMessage::from(GenlMessage::from_payload(GenlCtrl {
        cmd: GenlCtrlCmd::GetFamily,
        nlas: vec![GenlCtrlAttrs::FamilyName("IPVS".to_owned())],
    }));
    msg.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    msg.finalize();
    let op = || "resolve genl family IPVS".to_owned();
    let result = async {
        let mut replies = handle
            .request(msg, SocketAddr::new(0, 0))
            .map_err(|_| IpvsError::Closed { op: op() })?;
        let mut id = None;
        while let Some(reply) = replies.next().await {
            match reply.payload {
                NetlinkPayload::InnerMessage(m) => {
                    id = id.or(m.payload.nlas.iter().find_map(|a| match a {
                        GenlCtrlAttrs::FamilyId(id) => Some(*id),
                        _ => None,
                    }));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    let errno = e.code.map_or(0, |c| -c.get());
                    return Err(if errno == 2 {
                        IpvsError::NoFamily
                    } else {
                        kernel(op(), errno)
                    });
                }
                _ => {}
            }
        }
        id.ok_or(IpvsError::NoFamily)
    };
    let out = tokio::time::timeout(REQUEST_TIMEOUT, result)
        .await
        .unwrap_or_else(|_| {
            Err(IpvsError::Timeout {
                op: op(),
                timeout: REQUEST_TIMEOUT,
            })
        });
    task.abort();
    out
}

fn kernel(op: String, errno: i32) -> IpvsError {
    IpvsError::Kernel {
        op,
        errno,
        source: std::io::Error::from_raw_os_error(errno),
    }
}

impl IpvsHandle {
    /// The resolved `IPVS` family id (the `nlmsg_type` of its messages).
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Sends `payload` and collects the replies (all parts of a dump).
    ///
    /// A dump refused with `EBUSY` is retried a few times: the kernel marks a socket's dump
    /// finished only after queueing its `NLMSG_DONE`, so a reader fast enough to send the
    /// next dump in between is told that one is still running (seen once in 10,000 dumps).
    pub async fn request(
        &self,
        op: impl Fn() -> String,
        payload: IpvsCtrl,
        dump: bool,
    ) -> Result<Vec<IpvsCtrl>, IpvsError> {
        let mut tries = 0;
        loop {
            match self.request_once(&op, payload.clone(), dump).await {
                Err(e) if dump && e.errno() == Some(EBUSY) && tries < DUMP_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(tries)).await;
                }
                other => return other,
            }
        }
    }

    async fn request_once(
        &self,
        op: &impl Fn() -> String,
        payload: IpvsCtrl,
        dump: bool,
    ) -> Result<Vec<IpvsCtrl>, IpvsError> {
        let mut genl = GenlMessage::from_payload(payload);
        genl.set_resolved_family_id(self.family);
        let mut msg = NetlinkMessage::from(genl);
        msg.header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        msg.finalize();
        let collect = async {
            let mut replies = self
                .conn
                .request(msg, SocketAddr::new(0, 0))
                .map_err(|_| IpvsError::Closed { op: op() })?;
            let mut out = Vec::new();
            while let Some(reply) = replies.next().await {
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m.payload),
                    NetlinkPayload::Error(e) if e.code.is_some() => {
                        return Err(kernel(op(), e.code.map_or(0, |c| -c.get())));
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(IpvsError::Decode {
                            op: "netlink",
                            what: format!("{}: reply overrun", op()),
                        });
                    }
                    _ => {}
                }
            }
            Ok(out)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, collect)
            .await
            .unwrap_or_else(|_| {
                Err(IpvsError::Timeout {
                    op: op(),
                    timeout: REQUEST_TIMEOUT,
                })
            })
    }

    /// `ipvsadm -Ln` header: version and connection table size.
    pub async fn info(&self) -> Result<Info, IpvsError> {
        let replies = self
            .request(|| "get info".into(), request::get_info(), false)
            .await?;
        let (mut version, mut size) = (None, 0);
        for a in replies.iter().flat_map(|r| &r.attrs) {
            match a {
                IpvsAttr::Info(InfoAttr::Version(v)) => version = Some(*v),
                IpvsAttr::Info(InfoAttr::ConnTabSize(v)) => size = *v,
                _ => {}
            }
        }
        let v = version.ok_or(IpvsError::Decode {
            op: "get info",
            what: "reply without a version".into(),
        })?;
        Ok(Info {
            version: ((v >> 16) as u8, (v >> 8) as u8, v as u8),
            conn_tab_size: size,
        })
    }

    /// Every TCP/UDP virtual service in the kernel (`ipvsadm -Ln`, services only).
    pub async fn services(&self) -> Result<Vec<ServiceSpec>, IpvsError> {
        let replies = self
            .request(|| "dump services".into(), request::dump_services(), true)
            .await?;
        let mut out = Vec::with_capacity(replies.len());
        for r in &replies {
            if let Some(attrs) = r.service()
                && let Some(spec) = ServiceSpec::from_attrs(attrs)?
            {
                out.push(spec);
            }
        }
        Ok(out)
    }

    /// The destinations of one service (`ipvsadm -Ln -t VIP:PORT`).
    pub async fn dests(&self, key: &ServiceKey) -> Result<Vec<DestState>, IpvsError> {
        let replies = self
            .request(
                || format!("dump destinations of {key}"),
                request::dump_dests(key),
                true,
            )
            .await?;
        replies
            .iter()
            .filter_map(|r| r.dest())
            .map(|d| DestState::from_attrs(d, key.vip.ip()))
            .collect()
    }

    /// `ipvsadm -A`.
    pub async fn add_service(&self, spec: &ServiceSpec) -> Result<(), IpvsError> {
        let op = || format!("add service {}", spec.key);
        self.request(op, request::add_service(spec), false).await?;
        Ok(())
    }

    /// `ipvsadm -E`.
    pub async fn set_service(&self, spec: &ServiceSpec) -> Result<(), IpvsError> {
        let op = || format!("edit service {}", spec.key);
        self.request(op, request::set_service(spec), false).await?;
        Ok(())
    }

    /// `ipvsadm -D`.
    pub async fn del_service(&self, key: &ServiceKey) -> Result<(), IpvsError> {
        let op = || format!("delete service {key}");
        self.request(op, request::del_service(key), false).await?;
        Ok(())
    }

    /// `ipvsadm -a`.
    pub async fn add_dest(&self, key: &ServiceKey, dest: &DestSpec) -> Result<(), IpvsError> {
        let op = || format!("add destination {} to {key}", dest.addr);
        self.request(op, request::add_dest(key, dest), false)
            .await?;
        Ok(())
    }

    /// `ipvsadm -e`.
    pub async fn set_dest(&self, key: &ServiceKey, dest: &DestSpec) -> Result<(), IpvsError> {
        let op = || format!("edit destination {} of {key}", dest.addr);
        self.request(op, request::set_dest(key, dest), false)
            .await?;
        Ok(())
    }

    /// `ipvsadm -d`.
    pub async fn del_dest(&self, key: &ServiceKey, dest: IpSocketAddr) -> Result<(), IpvsError> {
        let op = || format!("delete destination {dest} of {key}");
        self.request(op, request::del_dest(key, dest), false)
            .await?;
        Ok(())
    }

    /// `ipvsadm -L --timeout`.
    pub async fn timeouts(&self) -> Result<Timeouts, IpvsError> {
        let replies = self
            .request(|| "get timeouts".into(), request::get_timeouts(), false)
            .await?;
        Ok(replies
            .first()
            .map(request::timeouts_of)
            .unwrap_or_default())
    }

    /// `ipvsadm --set TCP TCPFIN UDP`.
    pub async fn set_timeouts(&self, t: Timeouts) -> Result<(), IpvsError> {
        self.request(|| "set timeouts".into(), request::set_timeouts(t), false)
            .await?;
        Ok(())
    }
}

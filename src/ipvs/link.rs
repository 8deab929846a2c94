//! The dummy interface that holds the VIPs, managed over rtnetlink.
//!
//! IPVS intercepts packets in `LOCAL_IN`, so a VIP must be a local address; like kube-proxy's
//! `kube-ipvs0`, Switchyard puts them on a dummy interface of its own (`switchyard0`), which
//! never answers ARP for them on a real network. The interface is Switchyard's: addresses on
//! it that no owned service needs are removed. It is created when missing and left in place
//! on exit (a restart adopts it with its addresses).

use super::error::IpvsError;
use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use rtnetlink::{Handle, LinkDummy, LinkUnspec};
use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;

/// The VIP interface.
#[derive(Debug)]
pub struct VipLink {
    handle: Handle,
    name: String,
}

/// What one [`VipLink::sync`] changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkChanges {
    /// Addresses added.
    pub added: usize,
    /// Addresses removed.
    pub removed: usize,
}

fn link_err(op: String) -> impl FnOnce(rtnetlink::Error) -> IpvsError {
    move |source| IpvsError::Link { op, source }
}

impl VipLink {
    /// Opens an rtnetlink connection for interface `name`; spawn the returned future.
    pub fn open(name: &str) -> Result<(VipLink, impl Future<Output = ()> + use<>), IpvsError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(IpvsError::Socket)?;
        Ok((
            VipLink {
                handle,
                name: name.to_owned(),
            },
            conn,
        ))
    }

    async fn index(&self) -> Result<Option<u32>, IpvsError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(self.name.clone())
            .execute();
        match links.try_next().await {
            Ok(link) => Ok(link.map(|l| l.header.index)),
            Err(rtnetlink::Error::NetlinkError(e)) if e.code.is_some_and(|c| c.get() == -19) => {
                Ok(None)
            }
            Err(e) => Err(link_err(format!("find interface {}", self.name))(e)),
        }
    }

    /// The interface index, after creating the dummy and setting it up if needed
    /// (`ip link add switchyard0 type dummy && ip link set switchyard0 up`).
    pub async fn ensure(&self) -> Result<u32, IpvsError> {
        let index = match self.index().await? {
            Some(i) => i,
            None => {
                self.handle
                    .link()
                    .add(LinkDummy::new(&self.name).build())
                    .execute()
                    .await
                    .map_err(link_err(format!("create dummy interface {}", self.name)))?;
                tracing::info!(interface = %self.name, "created the vip interface");
                self.index().await?.ok_or_else(|| IpvsError::Decode {
                    op: "create dummy interface",
                    what: format!("{} not found after creating it", self.name),
                })?
            }
        };
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(link_err(format!("set {} up", self.name)))?;
        Ok(index)
    }

    /// Makes the interface hold exactly `want` (`ip addr add VIP/32 dev switchyard0`, and
    /// `ip addr del` for the others).
    pub async fn sync(&self, want: &BTreeSet<IpAddr>) -> Result<LinkChanges, IpvsError> {
        let index = self.ensure().await?;
        let have: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(link_err(format!("list addresses of {}", self.name)))?;
        let mut present = BTreeSet::new();
        let mut changes = LinkChanges::default();
        for msg in have {
            let ip = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            let Some(ip) = ip else { continue };
            if want.contains(&ip) {
                present.insert(ip);
            } else if msg.header.index == index {
                self.handle
                    .address()
                    .del(msg)
                    .execute()
                    .await
                    .map_err(link_err(format!("remove {ip} from {}", self.name)))?;
                changes.removed += 1;
            }
        }
        for ip in want.difference(&present) {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            self.handle
                .address()
                .add(index, *ip, prefix)
                .execute()
                .await
                .map_err(link_err(format!("add {ip} to {}", self.name)))?;
            changes.added += 1;
        }
        Ok(changes)
    }
}

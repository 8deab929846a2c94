//! Errors of the IPVS client, link management and reconciler.
//!
//! A kernel refusal keeps the operation and the errno, so logs say what failed and metrics
//! can count by errno (`switchyard_ipvs_errors_total{errno="EEXIST"}`).

use std::io;

/// Why an IPVS or link operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpvsError {
    /// The generic netlink family `IPVS` is not registered: no `ip_vs` in this kernel.
    #[error("the kernel has no IPVS (generic netlink family \"IPVS\" not found)")]
    NoFamily,
    /// A netlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    /// The kernel refused an operation.
    #[error("{op}: {source}")]
    Kernel {
        /// What was asked (`add service tcp 10.96.0.1:80`, …).
        op: String,
        /// The positive errno.
        errno: i32,
        /// The errno as an I/O error.
        #[source]
        source: io::Error,
    },
    /// The connection task ended.
    #[error("{op}: the netlink connection is closed")]
    Closed {
        /// What was asked.
        op: String,
    },
    /// No complete reply in time.
    #[error("{op}: no reply within {timeout:?}")]
    Timeout {
        /// What was asked.
        op: String,
        /// How long we waited.
        timeout: std::time::Duration,
    },
    /// A reply could not be understood.
    #[error("{op}: {what}")]
    Decode {
        /// What was asked.
        op: &'static str,
        /// What was wrong with it.
        what: String,
    },
    /// An rtnetlink (dummy interface or address) operation failed.
    #[error("{op}: {source}")]
    Link {
        /// What was asked.
        op: String,
        /// The rtnetlink error.
        #[source]
        source: rtnetlink::Error,
    },
}

impl IpvsError {
    /// The errno, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            IpvsError::Kernel { errno, .. } => Some(*errno),
            IpvsError::Link {
                source: rtnetlink::Error::NetlinkError(e),
                ..
            } => e.code.map(|c| -c.get()),
            IpvsError::NoFamily => Some(2),
            _ => None,
        }
    }

    /// A bounded metric label: the errno's name, or the error kind.
    pub fn label(&self) -> &'static str {
        match self.errno() {
            Some(1) => "EPERM",
            Some(2) => "ENOENT",
            Some(3) => "ESRCH",
            Some(12) => "ENOMEM",
            Some(13) => "EACCES",
            Some(16) => "EBUSY",
            Some(17) => "EEXIST",
            Some(19) => "ENODEV",
            Some(22) => "EINVAL",
            Some(95) => "EOPNOTSUPP",
            Some(97) => "EAFNOSUPPORT",
            Some(99) => "EADDRNOTAVAIL",
            Some(_) => "other_errno",
            None => match self {
                IpvsError::Socket(_) => "socket",
                IpvsError::Closed { .. } => "closed",
                IpvsError::Timeout { .. } => "timeout",
                IpvsError::Decode { .. } => "decode",
                _ => "other",
            },
        }
    }
}

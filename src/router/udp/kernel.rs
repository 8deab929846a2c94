//! The kernel's side of a UDP service's sockets: buffer sizes, and the datagrams the kernel
//! dropped because we did not read fast enough.
//!
//! **Buffers.** A UDP socket queues what arrives until it is read; once the queue holds
//! `SO_RCVBUF` bytes (by default `net.core.rmem_default`, 208 KiB on most systems) the kernel
//! drops what comes next, silently. A datagram counts as its whole kernel buffer, not its
//! payload: measured on loopback, 832 bytes for one of up to 100 bytes, 2,304 for one of
//! 1,000-1,400 bytes (network card drivers typically use 2-4 KiB per packet), so the default
//! holds about 250 small datagrams, or 90 of a typical size. `udp_recv_buffer` and `udp_send_buffer` set
//! `SO_RCVBUF`/`SO_SNDBUF` on the service's socket and on every flow's upstream socket (replies
//! queue there). Without privileges the kernel caps them at `net.core.rmem_max`/`wmem_max`;
//! with CAP_NET_ADMIN we use `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`, which are not capped. Which
//! of the two works is learnt from the first socket and remembered for the process, so flows
//! do not each pay (and audit-log) a refused privileged call. Linux doubles the value asked
//! (the other half pays for its bookkeeping) and reports the doubled figure; we log half of
//! it as granted, once per service socket, and warn, naming the sysctl, when that is less
//! than asked.
//!
//! **Drops.** With `SO_RXQ_OVFL` on, the kernel attaches to every datagram it queues the
//! number of datagrams it has dropped at that socket so far (a `u32` that wraps; absent while
//! it is 0). We receive with `recvmsg` to read it and count the difference from the last value
//! seen as `kernel_overflow`. A drop is therefore counted when a later datagram is read: the
//! drops at the end of a burst show when traffic resumes. Reading the count with each
//! datagram costs nothing extra (one `recvmsg` instead of one `recvfrom`); asking for it
//! separately (`SO_MEMINFO`) would be a second syscall per read.
//!
//! All of this is nix's safe wrappers: the crate forbids `unsafe`.

use crate::config::SocketBuffers;
use nix::errno::Errno;
use nix::sys::socket::{
    self as sys, ControlMessageOwned, MsgFlags, SetSockOpt, SockaddrStorage, sockopt,
};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::num::NonZeroU32;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU8, Ordering};

/// Whether the `*FORCE` options work in this process: not tried yet, yes, no.
static FORCE: AtomicU8 = AtomicU8::new(UNTRIED);
const UNTRIED: u8 = 0;
const ALLOWED: u8 = 1;
const REFUSED: u8 = 2;

/// Sizes the buffers of a service's own socket as asked, logs what the kernel granted and
/// warns, naming the sysctl, where it granted less. Nothing asked: nothing done, nothing said.
pub fn size_service_socket(
    socket: &impl AsFd,
    service: &str,
    asked: SocketBuffers,
) -> io::Result<()> {
    set_buffers(socket, asked)?;
    if let Some(asked) = asked.recv {
        let granted = sys::getsockopt(socket, sockopt::RcvBuf)? / 2;
        report(
            service,
            "udp_recv_buffer",
            asked,
            granted,
            "net.core.rmem_max",
        );
    }
    if let Some(asked) = asked.send {
        let granted = sys::getsockopt(socket, sockopt::SndBuf)? / 2;
        report(
            service,
            "udp_send_buffer",
            asked,
            granted,
            "net.core.wmem_max",
        );
    }
    Ok(())
}

fn report(service: &str, setting: &str, asked: NonZeroU32, granted: usize, sysctl: &str) {
    tracing::info!(service, setting, asked, granted, "udp socket buffer");
    if capped(asked, granted) {
        tracing::warn!(
            service,
            setting,
            asked,
            granted,
            sysctl,
            "udp socket buffer capped by the kernel: raise the sysctl or grant CAP_NET_ADMIN"
        );
    }
}

/// Sets the buffer sizes asked for (a flow's socket: quietly).
pub(super) fn set_buffers(socket: &impl AsFd, asked: SocketBuffers) -> io::Result<()> {
    let may_force = || FORCE.load(Ordering::Relaxed) != REFUSED;
    if let Some(size) = asked.recv {
        set_one(
            socket,
            size,
            may_force(),
            sockopt::RcvBufForce,
            sockopt::RcvBuf,
        )?;
    }
    if let Some(size) = asked.send {
        set_one(
            socket,
            size,
            may_force(),
            sockopt::SndBufForce,
            sockopt::SndBuf,
        )?;
    }
    Ok(())
}

/// Sets one size: the uncapped option when `force` and the kernel lets us, else the plain one.
fn set_one<F, P>(
    socket: &impl AsFd,
    size: NonZeroU32,
    force: bool,
    forced: F,
    plain: P,
) -> io::Result<()>
where
    F: SetSockOpt<Val = usize>,
    P: SetSockOpt<Val = usize>,
{
    let size = size.get() as usize;
    if force {
        match sys::setsockopt(socket, forced, &size) {
            Ok(()) => {
                FORCE.store(ALLOWED, Ordering::Relaxed);
                return Ok(());
            }
            Err(Errno::EPERM) => FORCE.store(REFUSED, Ordering::Relaxed),
            Err(errno) => return Err(errno.into()),
        }
    }
    Ok(sys::setsockopt(socket, plain, &size)?)
}

/// Whether the kernel granted less than asked (`granted`: half what it reports).
fn capped(asked: NonZeroU32, granted: usize) -> bool {
    granted < asked.get() as usize
}

/// Asks the kernel to attach its drop count to every datagram queued on `socket`.
pub(super) fn count_drops(socket: &impl AsFd) -> io::Result<()> {
    Ok(sys::setsockopt(socket, sockopt::RxqOvfl, &1)?)
}

/// One datagram read by a [`Receiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Datagram {
    /// Its length.
    pub(super) len: usize,
    /// Who sent it (`None` only if the kernel gave no IP address, which UDP never does).
    pub(super) from: Option<SocketAddr>,
    /// Datagrams the kernel dropped at this socket since the previous count we saw.
    pub(super) dropped: u32,
}

/// Reads datagrams together with the kernel's drop count of their socket.
#[derive(Debug)]
pub(super) struct Receiver {
    /// Room for one `SO_RXQ_OVFL` control message.
    control: Vec<u8>,
    /// The count the last datagram that carried one had.
    seen: u32,
}

impl Default for Receiver {
    fn default() -> Self {
        Self {
            control: nix::cmsg_space!(u32),
            seen: 0,
        }
    }
}

impl Receiver {
    /// Reads one datagram into `buf` without waiting (`WouldBlock` when none is queued: call
    /// it through tokio's `try_io`/`async_io`, which then clear the readiness).
    pub(super) fn recv(&mut self, socket: &impl AsRawFd, buf: &mut [u8]) -> io::Result<Datagram> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = sys::recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut self.control),
            MsgFlags::empty(),
        )?;
        let count = msg
            .cmsgs()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| match c {
                ControlMessageOwned::RxqOvfl(n) => Some(n),
                _ => None,
            });
        let (len, from) = (msg.bytes, msg.address.as_ref().and_then(socket_addr));
        let dropped = count.map_or(0, |n| n.wrapping_sub(std::mem::replace(&mut self.seen, n)));
        Ok(Datagram { len, from, dropped })
    }
}

fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
    match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
        (Some(v4), _) => Some(SocketAddrV4::from(*v4).into()),
        (_, Some(v6)) => Some(SocketAddrV6::from(*v6).into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn nonblocking_socket() -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        socket
    }

    fn reported(socket: &UdpSocket) -> (usize, usize) {
        (
            sys::getsockopt(socket, sockopt::RcvBuf).unwrap(),
            sys::getsockopt(socket, sockopt::SndBuf).unwrap(),
        )
    }

    fn sysctl(name: &str) -> Option<usize> {
        let path = format!("/proc/sys/net/core/{name}");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    #[test]
    fn sizes_are_doubled_by_the_kernel_and_capped_at_the_sysctl_without_force() {
        let socket = nonblocking_socket();
        let small = NonZeroU32::new(4096).unwrap();
        set_one(&socket, small, false, sockopt::RcvBufForce, sockopt::RcvBuf).unwrap();
        set_one(&socket, small, false, sockopt::SndBufForce, sockopt::SndBuf).unwrap();
        assert_eq!(reported(&socket), (8192, 8192));
        assert!(!capped(small, 8192 / 2));

        let Some(max) = sysctl("rmem_max") else {
            return; // no /proc here: the cap cannot be known
        };
        let Some(huge) = u32::try_from(max * 4).ok().and_then(NonZeroU32::new) else {
            return;
        };
        set_one(&socket, huge, false, sockopt::RcvBufForce, sockopt::RcvBuf).unwrap();
        let granted = reported(&socket).0 / 2;
        assert_eq!(granted, max, "capped at net.core.rmem_max");
        assert!(capped(huge, granted), "which is reported as capped");
    }

    #[test]
    fn a_size_nobody_asked_for_is_left_alone() {
        let socket = nonblocking_socket();
        let before = reported(&socket);
        set_buffers(&socket, SocketBuffers::default()).unwrap();
        assert_eq!(reported(&socket), before);
    }

    #[test]
    fn every_datagram_is_read_or_counted_as_dropped_by_the_kernel() {
        let socket = nonblocking_socket();
        let small = NonZeroU32::new(4096).unwrap();
        set_one(&socket, small, false, sockopt::RcvBufForce, sockopt::RcvBuf).unwrap();
        count_drops(&socket).unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = socket.local_addr().unwrap();
        let (mut receiver, mut buf) = (Receiver::default(), vec![0u8; 2048]);
        let mut drain = |read: &mut u32, dropped: &mut u32| {
            // Bounded: at most the 201 datagrams sent can be queued.
            for _ in 0..=201 {
                match receiver.recv(&socket, &mut buf) {
                    Ok(d) => {
                        assert_eq!((d.len, d.from), (1000, Some(sender.local_addr().unwrap())));
                        *read += 1;
                        *dropped += d.dropped;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) => panic!("recv failed: {e}"),
                }
            }
        };
        let (mut read, mut dropped) = (0, 0);
        for _ in 0..200 {
            sender.send_to(&[7; 1000], to).unwrap();
        }
        drain(&mut read, &mut dropped);
        assert!(
            read < 50,
            "a 4 KiB buffer holds a few datagrams, not {read}"
        );
        // The drops after the last queued datagram are counted with the next one.
        sender.send_to(&[7; 1000], to).unwrap();
        drain(&mut read, &mut dropped);
        assert!(dropped > 150, "dropped {dropped}");
        assert_eq!(read + dropped, 201, "read {read}, dropped {dropped}");
    }
}

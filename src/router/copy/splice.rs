//! Bulk relaying without copying through user space: `splice(2)` from one socket into a pipe
//! and from the pipe into the other socket.
//!
//! A read and a write move every byte twice across the user/kernel boundary; two splices
//! hand the kernel's pages from the receiving socket to the sending one, so a megabyte costs
//! page references instead of two copies. The number of system calls is the same (two per
//! chunk), and for small messages a splice costs more than copying a few hundred bytes, so
//! [`super::one_way`] turns to it only once reads keep filling a large buffer (bulk), as
//! HAProxy's `splice-auto` does. Each spliced direction holds a pipe of its own (two file
//! descriptors) for the rest of the connection.
//!
//! Semantics are those of the copying loop: at EOF the other socket's write side is shut
//! down (half-close), and the pipe is always empty when a direction ends normally, because a
//! chunk is written out in full before the next is read.

use super::Flow;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use std::io;
use std::os::fd::OwnedFd;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::WriteHalf;

/// The pipe's size, asked for (the kernel rounds it to pages) and the most one splice moves.
const PIPE: usize = super::MAX_BUF;

/// One direction's pipe: the kernel pages of a chunk on their way between the two sockets.
#[derive(Debug)]
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

impl Pipe {
    /// A new pipe (non-blocking, close-on-exec), enlarged to [`PIPE`] bytes where the
    /// kernel allows. `None`, and the caller keeps copying, when none can be made (out of
    /// descriptors) or it holds less than [`super::SPLICE_FROM`]: past the user's
    /// `fs.pipe-user-pages-soft` the kernel refuses to enlarge pipes and makes new ones of
    /// two pages, which would take more calls per megabyte than the copying loop.
    pub(super) fn new() -> Option<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).ok()?;
        let size = fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE as i32))
            .or_else(|_| fcntl(&write, FcntlArg::F_GETPIPE_SZ))
            .ok()?;
        (usize::try_from(size).ok()? >= super::SPLICE_FROM).then_some(Pipe { read, write })
    }

    /// Moves `from` → `to` until `from` ends (then [`Flow::ended`]) or either fails,
    /// counting each chunk in `flow`.
    pub(super) async fn relay(
        &self,
        from: &TcpStream,
        to: &mut WriteHalf<'_>,
        flow: &mut Flow<'_>,
    ) -> io::Result<()> {
        loop {
            let n = self.fill(from).await?;
            if n == 0 {
                return flow.ended(to).await;
            }
            self.drain(to.as_ref(), n).await?;
            flow.moved(n);
        }
    }

    /// Splices what `from` has (up to [`PIPE`] bytes) into the empty pipe, waiting until it
    /// has something; 0 at EOF.
    async fn fill(&self, from: &TcpStream) -> io::Result<usize> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        loop {
            from.readable().await?;
            // The pipe is empty here, so `EAGAIN` can only mean the socket has nothing, and
            // `try_io` clears its readiness for it.
            match from.try_io(Interest::READABLE, || {
                Ok(splice(from, None, &self.write, None, PIPE, flags)?)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }

    /// Splices the `n` bytes in the pipe into `to`, waiting while its send buffer is full.
    async fn drain(&self, to: &TcpStream, mut n: usize) -> io::Result<()> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        while n > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, to, None, n, flags)?)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => n -= written,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

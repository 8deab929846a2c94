//! The write side of [`TlsStream`]: plaintext is encrypted into a buffer of the worker
//! thread's and sent from there; only what the socket does not take at once is kept, in the
//! stream's `out`, and freed once sent.
//!
//! A vectored write (a response's head and body, HTTP/2 frames) is gathered into one plaintext
//! first, so that it goes out as one record rather than a record per slice: one AEAD operation
//! and 22 bytes of overhead instead of several.

use super::{Stop, TlsStream, handshake, invalid};
use rustls::unbuffered::{ConnectionState, UnbufferedStatus};
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncWrite, ReadBuf};

/// Most plaintext encrypted per write: four full records, sent in one system call as the
/// buffered API's vectored write did.
const WRITE_MAX: usize = 4 * 16 * 1024;
/// Room for [`WRITE_MAX`] bytes in records, with their overhead (at most 29 bytes a record of
/// 16 KiB; the server config leaves rustls' maximal fragment size as it is).
const SEAL_ROOM: usize = WRITE_MAX + 1024;

/// A worker thread's scratch space for writes.
struct Scratch {
    /// Where records are encrypted before they are sent.
    sealed: Box<[u8]>,
    /// Where the slices of a vectored write are gathered.
    gathered: Vec<u8>,
}

thread_local! {
    /// One per worker thread, not per connection, and not zeroed per write; only borrowed
    /// inside a poll, never across one.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        sealed: vec![0; SEAL_ROOM].into_boxed_slice(),
        gathered: Vec::new(),
    });
}

impl TlsStream {
    /// Sends what is kept in `out`; frees it once sent.
    pub(super) fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        if self.out.capacity() > 0 {
            self.out = Vec::new();
            self.out_at = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Sends what is kept in `out` as far as the socket takes it now, without waiting: for the
    /// read side, which must not take the write side's place as the one woken when the socket
    /// can be written (a split stream's writer would never be woken).
    pub(super) fn try_send(&mut self) -> io::Result<()> {
        while self.out_at < self.out.len() {
            match self.io.try_write(&self.out[self.out_at..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_at += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(error) => return Err(error),
            }
        }
        if self.out.capacity() > 0 {
            self.out = Vec::new();
            self.out_at = 0;
        }
        Ok(())
    }

    /// Encrypts `data` (at most [`WRITE_MAX`] of it) into `sealed` once rustls may send
    /// application data, or queues our `close_notify` when `data` is `None`. Records that came
    /// in and were not processed yet are processed first (their data kept for the reader).
    /// Returns the plaintext bytes taken and the TLS bytes written to `sealed`.
    fn seal(&mut self, data: Option<&[u8]>, sealed: &mut [u8]) -> io::Result<(usize, usize)> {
        let Self {
            conn,
            incoming,
            plain,
            out,
            eof,
            ..
        } = self;
        loop {
            let UnbufferedStatus { discard, state } = conn.process_tls_records(incoming);
            let result = match state.map_err(invalid)? {
                ConnectionState::WriteTraffic(mut write) => Some(match data {
                    Some(data) => {
                        let take = data.len().min(WRITE_MAX);
                        write.encrypt(&data[..take], sealed).map(|n| (take, n))
                    }
                    None => write.queue_close_notify(sealed).map(|n| (0, n)),
                }),
                ConnectionState::EncodeTlsData(mut encode) => {
                    handshake::encode(&mut encode, out)?;
                    None
                }
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                // Data the reader has not taken yet: kept for it (below).
                ConnectionState::ReadTraffic(_) => None,
                ConnectionState::PeerClosed => {
                    *eof = true;
                    None
                }
                ConnectionState::Closed => return Err(io::ErrorKind::BrokenPipe.into()),
                other => return Err(invalid(format!("tls: cannot write in state {other:?}"))),
            };
            incoming.drain(..discard);
            if incoming.is_empty() && incoming.capacity() > 0 {
                *incoming = Vec::new();
            }
            match result {
                Some(sealed) => return sealed.map_err(invalid),
                None => {
                    let mut none = ReadBuf::new(&mut []);
                    let (used, stop) = Self::process(conn, incoming, &mut none, plain, out)?;
                    incoming.drain(..used);
                    // PeerClosed comes once: the reader learns of it here.
                    *eof |= matches!(stop, Stop::Closed);
                }
            }
        }
    }

    /// Writes `sealed` to the socket as far as it takes it, keeping the rest in `out` (after
    /// what `out` already holds, which goes first).
    fn send_or_keep(&mut self, cx: &mut Context<'_>, sealed: &[u8]) -> io::Result<()> {
        let mut sent = 0;
        if self.out_at == self.out.len() {
            while sent < sealed.len() {
                match Pin::new(&mut self.io).poll_write(cx, &sealed[sent..]) {
                    Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(n)) => sent += n,
                    Poll::Ready(Err(error)) => return Err(error),
                    Poll::Pending => break,
                }
            }
        }
        if sent < sealed.len() {
            self.out.extend_from_slice(&sealed[sent..]);
        }
        Ok(())
    }

    /// Encrypts and sends (or keeps) what `data` takes from the scratch space; returns the
    /// plaintext bytes taken.
    fn write_sealed(
        &mut self,
        cx: &mut Context<'_>,
        data: &[u8],
        sealed: &mut [u8],
    ) -> io::Result<usize> {
        if self.closing {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let (taken, n) = self.seal(Some(data), sealed)?;
        self.send_or_keep(cx, &sealed[..n])?;
        Ok(taken)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let taken = SCRATCH.with_borrow_mut(|s| this.write_sealed(cx, data, &mut s.sealed));
        Poll::Ready(taken)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut full = bufs.iter().filter(|buf| !buf.is_empty());
        match (full.next(), full.next()) {
            (None, _) => self.poll_write(cx, &[]),
            (Some(one), None) => self.poll_write(cx, one),
            (Some(_), Some(_)) => {
                let this = self.get_mut();
                ready!(this.poll_send(cx))?;
                let taken = SCRATCH.with_borrow_mut(|s| {
                    let Scratch { sealed, gathered } = s;
                    gathered.clear();
                    for buf in bufs {
                        let room = WRITE_MAX - gathered.len();
                        gathered.extend_from_slice(&buf[..buf.len().min(room)]);
                    }
                    this.write_sealed(cx, gathered, sealed)
                });
                Poll::Ready(taken)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.closing {
            // What is kept goes before the close_notify.
            ready!(this.poll_send(cx))?;
            this.closing = true;
            let mut sealed = [0u8; 256];
            // Best effort, as with tokio-rustls: a peer already gone gets no close_notify.
            if let Ok((_, n)) = this.seal(None, &mut sealed) {
                this.send_or_keep(cx, &sealed[..n])?;
            }
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

//! One request on one HTTP/1.1 connection: the request goes out while the response head is
//! awaited, so an endpoint that answers before it has read the whole body (an early 413, or
//! `100 Continue` before the client sends its body) is heard at once.

use super::Connection;
use crate::http1::framing::Framing;
use crate::http1::head::{self, HeadError};
use bytes::Buf;
use std::io;
use std::task::{Context, Poll};
use tokio::net::TcpStream;

/// Largest response head accepted from an endpoint.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// The request side of an exchange: writes the request head and body to the endpoint.
pub trait RequestBody {
    /// Writes more of the request; `Ready(Ok(()))` once all of it has been written.
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        endpoint: &mut TcpStream,
    ) -> Poll<Result<(), SendFailure>>;

    /// A `1xx` response other than 101 arrived: pass it on to the client, or drop it.
    fn informational(&mut self, head: &head::Response<'_>);

    /// Whether the request can be written again from the start (it has no body).
    fn can_resend(&self) -> bool;

    /// Starts the request over, for a new connection.
    fn rewind(&mut self);
}

/// Why a request could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SendFailure {
    /// Writing to the endpoint failed.
    #[error("write to endpoint: {0}")]
    Endpoint(#[source] io::Error),
    /// The body's source failed (the client, or a limit the body went over).
    #[error("request body: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Why an exchange got no response head.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The connection closed before any byte of a response came.
    #[error("connection closed before the response")]
    Closed,
    /// The response head is not valid HTTP/1.1.
    #[error("invalid response head: {0}")]
    Head(#[source] HeadError),
    /// Reading from or writing to the endpoint failed.
    #[error("endpoint connection: {0}")]
    Io(#[source] io::Error),
    /// The request body's source failed.
    #[error("{0}")]
    Body(#[source] SendFailure),
}

/// What the final response head said.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// How its body is framed.
    pub framing: Framing,
    /// Whether the connection can serve another request once the body has been read: the
    /// endpoint keeps it open and the whole request was written.
    pub reusable: bool,
}

/// Writes the request and reads until the final response head, which `on_head` reads; the
/// connection's buffer is left at the start of the response body.
pub(super) async fn exchange<B: RequestBody, R>(
    conn: &mut Connection,
    body: &mut B,
    head_request: bool,
    on_head: &mut impl FnMut(&head::Response<'_>) -> R,
) -> Result<(R, Reply), ExchangeError> {
    let mut sent = false;
    let mut informed = false;
    conn.answered = false;
    std::future::poll_fn(|cx| {
        loop {
            // Polled again after a 1xx even once sent, to pass that on to the client.
            if !sent || informed {
                match body.poll_send(cx, &mut conn.io.io) {
                    Poll::Ready(Ok(())) => sent = true,
                    Poll::Ready(Err(SendFailure::Endpoint(e)))
                        if !conn.answered && is_closed(&e) =>
                    {
                        return Poll::Ready(Err(ExchangeError::Closed));
                    }
                    Poll::Ready(Err(SendFailure::Endpoint(e))) => {
                        return Poll::Ready(Err(ExchangeError::Io(e)));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(ExchangeError::Body(e))),
                    Poll::Pending => {}
                }
            }
            match read_head(cx, conn, body, head_request, sent, &mut informed, on_head) {
                Some(result) => return Poll::Ready(result),
                // A 1xx was passed on: the body may have something to write now.
                None if informed => {}
                None => return Poll::Pending,
            }
        }
    })
    .await
}

/// Reads until the final response head (`Some`), or until a 1xx head was passed on or
/// nothing more can be read now (`None`; which of the two, the caller tells by whether
/// `informed` was set).
#[allow(
    clippy::too_many_arguments,
    reason = "the exchange's state, split out of its poll loop"
)]
fn read_head<B: RequestBody, R>(
    cx: &mut Context<'_>,
    conn: &mut Connection,
    body: &mut B,
    head_request: bool,
    sent: bool,
    informed: &mut bool,
    on_head: &mut impl FnMut(&head::Response<'_>) -> R,
) -> Option<Result<(R, Reply), ExchangeError>> {
    *informed = false;
    loop {
        let parsed = {
            let mut fields = head::field_buf();
            match head::response(&conn.io.buf, &mut fields, MAX_RESPONSE_HEAD, head_request) {
                Ok(Some(resp)) if (100..200).contains(&resp.status) && resp.status != 101 => {
                    body.informational(&resp);
                    Some((resp.len, None))
                }
                Ok(Some(resp)) => {
                    let reply = Reply {
                        status: resp.status,
                        framing: resp.framing,
                        reusable: resp.keep_alive && sent && resp.status != 101,
                    };
                    Some((resp.len, Some((on_head(&resp), reply))))
                }
                Ok(None) => None,
                Err(e) => return Some(Err(ExchangeError::Head(e))),
            }
        };
        match parsed {
            Some((len, None)) => {
                conn.io.buf.advance(len);
                *informed = true;
                return None;
            }
            Some((len, Some(done))) => {
                conn.io.buf.advance(len);
                return Some(Ok(done));
            }
            None => {}
        }
        match conn.io.poll_fill(cx) {
            Poll::Ready(Ok(0)) if conn.io.buf.is_empty() && !conn.answered => {
                return Some(Err(ExchangeError::Closed));
            }
            Poll::Ready(Ok(0)) => {
                let e = io::Error::new(io::ErrorKind::UnexpectedEof, "closed in the response head");
                return Some(Err(ExchangeError::Io(e)));
            }
            Poll::Ready(Ok(_)) => conn.answered = true,
            Poll::Ready(Err(e)) if conn.io.buf.is_empty() && !conn.answered && is_closed(&e) => {
                return Some(Err(ExchangeError::Closed));
            }
            Poll::Ready(Err(e)) => return Some(Err(ExchangeError::Io(e))),
            Poll::Pending => return None,
        }
    }
}

/// Whether an error says the endpoint had closed or reset the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
    )
}

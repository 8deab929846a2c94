//! One HTTP/3 request: read its head, hand it to the router's handler with a streaming body
//! ([`super::RecvBody`]), and send the response back frame by frame (data, then trailers);
//! or, for a WebSocket's extended CONNECT the router answered with a tunnel, run the tunnel
//! ([`super::tunnel`]).

use super::{RecvBody, tunnel};
use crate::http1::fields::content_length;
use crate::router::http::conn::Conn;
use crate::router::http::proxy;
use crate::router::http::record::ResponseBody;
use bytes::Bytes;
use h3::error::Code;
use h3::server::{RequestResolver, RequestStream};
use http::header::CONTENT_LENGTH;
use http::{Request, Response};
use http_body_util::BodyExt;
use std::sync::Arc;

/// The sending half of a request stream.
type Send = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// Serves one request stream.
pub(super) async fn serve(resolver: RequestResolver<h3_quinn::Connection, Bytes>, conn: Arc<Conn>) {
    let (head, stream) = match resolver.resolve_request().await {
        Ok(pair) => pair,
        // h3 answered it already (431 for a head over the limit) or reset the stream.
        Err(error) => {
            return tracing::debug!(listener = %conn.listener, %error, "http/3 request refused");
        }
    };
    let (mut send, recv) = stream.split();
    let (mut parts, ()) = head.into_parts();
    let Ok(length) = declared_length(&parts.headers) else {
        return malformed(&mut send, &conn);
    };
    // An extended CONNECT for a WebSocket keeps its stream for the tunnel.
    let (body, tunnel) = match tunnel::offer(&mut parts) {
        Some(offer) => (RecvBody::empty(), Some((offer, recv))),
        None => (RecvBody::new(recv, length), None),
    };
    let req = Request::from_parts(parts, body);
    let Ok(mut response) = proxy::handle(req, Arc::clone(&conn), None).await;
    let sent = match (response.body_mut().take_tunnel(), tunnel) {
        (Some(run), Some((offer, recv))) => {
            let head = Response::from_parts(response.into_parts().0, ());
            tunnel::run(send, recv, offer, head, run).await
        }
        _ => respond(&mut send, response).await,
    };
    if let Err(error) = sent {
        tracing::debug!(listener = %conn.listener, %error, "http/3 response not sent");
    }
}

/// The body's length by the request's `content-length` fields: none, or one number (fields
/// that repeat it are accepted, as by HTTP/1.1 and HTTP/2); anything else is an error.
fn declared_length(headers: &http::HeaderMap) -> Result<Option<u64>, ()> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let n = content_length(value.as_bytes()).ok_or(())?;
        if length.is_some_and(|seen| seen != n) {
            return Err(());
        }
        length = Some(n);
    }
    Ok(length)
}

/// Refuses a malformed request: the stream is reset with H3_MESSAGE_ERROR (RFC 9114 §4.1.2).
fn malformed(send: &mut Send, conn: &Conn) {
    tracing::debug!(listener = %conn.listener, "http/3 request with a malformed content-length");
    send.stop_stream(Code::H3_MESSAGE_ERROR);
}

/// Sends the head, then the body's frames as they come; an error in the body resets the
/// stream, so the client never takes a cut body for a whole one.
async fn respond(
    send: &mut Send,
    response: Response<ResponseBody>,
) -> Result<(), h3::error::StreamError> {
    let (parts, mut body) = response.into_parts();
    send.send_response(Response::from_parts(parts, ())).await?;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                tracing::debug!(%error, "http/3 response body failed");
                send.stop_stream(Code::H3_INTERNAL_ERROR);
                return Ok(());
            }
        };
        match frame.into_data() {
            Ok(data) => send.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers).await?;
                }
            }
        }
    }
    send.finish().await
}

//! Section 5a: Request fields: names with `_` are dropped (they could alias `-` names at the
//! endpoint), hop-by-hop fields and the ones `Connection` names are removed, forwarding fields
//! from an untrusted client are replaced; `h2c` upgrades are forwarded as ordinary requests,
//! WebSocket upgrades pass through as a tunnel; CONNECT is refused.

use crate::backend::{Answer, on};
use crate::*;
use std::sync::Arc;

/// `GET /` to a.test with `fields` reaches the backend with `seen` in their place.
async fn forwarded_with(fields: &str, seen: &str) {
    Case::send(req("GET /", "a.test", fields), ok("GET /"))
        .up(fwd("GET /", "a.test", seen))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn underscore_x_forwarded_for_is_dropped() {
    forwarded_with("X_Forwarded_For: 1.2.3.4\r\n", "").await;
}

#[tokio::test]
async fn underscore_transfer_encoding_is_dropped() {
    forwarded_with("Transfer_Encoding: chunked\r\n", "").await;
}

#[tokio::test]
async fn underscore_custom_name_is_dropped() {
    forwarded_with("X_Custom: 1\r\n", "").await;
}

#[tokio::test]
async fn ordinary_field_is_passed_on() {
    forwarded_with("X-Custom: 1\r\n", "X-Custom: 1\r\n").await;
}

#[tokio::test]
async fn field_named_by_connection_is_removed() {
    forwarded_with(
        "Connection: x-secret\r\nx-secret: 1\r\nx-kept: 2\r\n",
        "x-kept: 2\r\n",
    )
    .await;
}

#[tokio::test]
async fn hop_by_hop_fields_are_removed() {
    forwarded_with(
        "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n",
        "",
    )
    .await;
}

#[tokio::test]
async fn te_trailers_is_passed_on() {
    forwarded_with("TE: trailers\r\n", "te: trailers\r\n").await;
}

#[tokio::test]
async fn forwarding_fields_from_an_untrusted_client_are_replaced() {
    forwarded_with(
        "X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 1\r\n",
        "",
    )
    .await;
}

const H2C: &str = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n";

/// The proxy speaks HTTP/2 to clients itself; it does not pass `h2c` upgrades on.
#[tokio::test]
async fn h2c_upgrade_is_forwarded_as_an_ordinary_request() {
    Case::send(req("GET /", "a.test", H2C), ok("GET /"))
        .up(fwd("GET /", "a.test", ""))
        .then_next()
        .run()
        .await;
}

#[tokio::test]
async fn h2c_upgrade_answered_with_101_anyway_is_502() {
    let switch = b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n";
    Case::send(
        req("GET /", "a.test", H2C),
        local(502, UPSTREAM_FAILED, true),
    )
    .script(on("/", switch))
    .up(fwd("GET /", "a.test", ""))
    .closed()
    .run()
    .await;
}

#[tokio::test]
async fn websocket_upgrade_becomes_a_tunnel() {
    let switch =
        b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n";
    let script = Arc::new(|_: &str, t: &str| {
        if t == "/ws" {
            Answer::Upgrade(switch.to_vec())
        } else {
            Answer::Echo
        }
    });
    Case::send(
        req(
            "GET /ws",
            "a.test",
            "Connection: upgrade\r\nUpgrade: websocket\r\n",
        ),
        switch,
    )
    .then("ping", "ping")
    .script(script)
    .up(fwd(
        "GET /ws",
        "a.test",
        "connection: upgrade\r\nupgrade: websocket\r\n",
    ))
    .tunnel("ping")
    .run()
    .await;
}

#[tokio::test]
async fn connect_is_not_allowed() {
    Case::send(
        "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nx-request-id: t1\r\n\r\n",
        local(405, NOT_ALLOWED, true),
    )
    .closed()
    .run()
    .await;
}

/// `OPTIONS *` asks about the server, not a resource. Pinned to what the code does today:
/// handed to hyper and forwarded in asterisk form (RFC 9110 §9.3.7), a well-formed request.
#[tokio::test]
async fn options_asterisk_is_forwarded_in_asterisk_form() {
    Case::send(
        "OPTIONS * HTTP/1.1\r\nHost: a.test\r\nx-request-id: t1\r\n\r\n",
        ok("OPTIONS *"),
    )
    .up(fwd("OPTIONS *", "a.test", ""))
    .run()
    .await;
}

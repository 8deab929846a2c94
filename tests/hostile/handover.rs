//! Section 4: The hand-over to hyper: a request the fast path gives to hyper (HTTP/1.0, an
//! upgrade) is served, and then the connection closes; a request pipelined behind it, here a
//! smuggling attempt, never reaches the backend.

use crate::*;

const OLD: &str = "GET / HTTP/1.0\r\nHost: a.test\r\nx-request-id: t1\r\n\r\n";
const OLD_KEEP: &str =
    "GET / HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\nx-request-id: t1\r\n\r\n";
const CL_TE: &str = "POST /smuggled HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\
                     Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
const TWO_HOSTS: &str = "GET /smuggled HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n";

/// The backend's echo answer to an HTTP/1.0 client that is not kept (even when it asked to
/// be: hyper serves one request after a hand-over).
fn old_answer(line: &str) -> Vec<u8> {
    let mut answer = ok(line);
    answer[..8].copy_from_slice(b"HTTP/1.0");
    answer
}

#[tokio::test]
async fn http_1_0_then_content_length_and_transfer_encoding() {
    Case::send(cat(OLD, CL_TE), old_answer("GET /"))
        .up(fwd("GET /", "a.test", ""))
        .closed()
        .run()
        .await;
}

#[tokio::test]
async fn http_1_0_keep_alive_then_two_hosts() {
    Case::send(cat(OLD_KEEP, TWO_HOSTS), old_answer("GET /"))
        .up(fwd("GET /", "a.test", ""))
        .closed()
        .run()
        .await;
}

#[tokio::test]
async fn http_1_0_keep_alive_then_content_length_and_transfer_encoding() {
    Case::send(cat(OLD_KEEP, CL_TE), old_answer("GET /"))
        .up(fwd("GET /", "a.test", ""))
        .closed()
        .run()
        .await;
}

/// An upgrade the endpoint declines (it answers 200): hyper served it, and the request behind
/// it never goes on.
#[tokio::test]
async fn declined_upgrade_then_two_hosts() {
    let upgrade = req(
        "GET /ws",
        "a.test",
        "Connection: upgrade\r\nUpgrade: websocket\r\n",
    );
    let mut answer = ok("GET /ws");
    let at = answer.len() - "\r\n\r\nGET /ws".len();
    answer.splice(at..at, b"\r\nconnection: close".iter().copied());
    Case::send(cat(upgrade, TWO_HOSTS), answer)
        .up(fwd(
            "GET /ws",
            "a.test",
            "connection: upgrade\r\nupgrade: websocket\r\n",
        ))
        .closed()
        .run()
        .await;
}

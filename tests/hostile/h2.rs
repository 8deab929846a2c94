//! Section 7: HTTP/2 with prior knowledge on the plain listener, frames built by hand: the same
//! path normalisation and refusals as HTTP/1.1, `cookie` fields joined into one for the
//! HTTP/1.1 endpoint (RFC 9113 §8.2.3), and a local answer to HEAD without DATA.

use crate::h2frames::{self as h2, Frame};
use crate::harness::{b_exchange, b_upstream, check_b_quiet, check_upstream, setup, with_port};
use crate::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// What came back on stream 1.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: Result<u16, String>,
    data: String,
    /// END_STREAM on the HEADERS frame (`None`: not checked).
    ended_by_headers: Option<bool>,
}

/// A request on stream 1 and what it must bring back.
struct H2Case {
    fields: Vec<(String, String)>,
    want: Answer,
    upstream: Vec<Vec<u8>>,
}

impl H2Case {
    /// `method path` for `authority`, with `x-request-id: t1`.
    fn new(method: &str, authority: &str, path: &str) -> H2Case {
        let fields = [
            (":method", method),
            (":scheme", "http"),
            (":authority", authority),
            (":path", path),
            ("x-request-id", "t1"),
        ];
        H2Case {
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            want: Answer {
                status: Ok(200),
                data: String::new(),
                ended_by_headers: None,
            },
            upstream: Vec::new(),
        }
    }

    fn get(path: &str) -> H2Case {
        H2Case::new("GET", "a.test", path)
    }

    fn field(mut self, name: &str, value: &str) -> H2Case {
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    fn answer(mut self, status: u16, data: &str, ended_by_headers: Option<bool>) -> H2Case {
        self.want = Answer {
            status: Ok(status),
            data: data.to_owned(),
            ended_by_headers,
        };
        self
    }

    fn up(mut self, request: Vec<u8>) -> H2Case {
        self.upstream.push(request);
        self
    }

    async fn run(self) {
        tokio::time::timeout(Duration::from_secs(10), self.run_inner())
            .await
            .expect("case timed out");
    }

    async fn run_inner(self) {
        let (rec, _app, addr) = setup(crate::backend::echo()).await;
        let mut a = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut b = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut failures = Vec::new();
        let mut hello = h2::PREFACE.to_vec();
        hello.extend(h2::frame(h2::SETTINGS, 0, 0, &[]));
        hello.extend(h2::headers(1, &self.fields, true));
        a.write_all(&hello).await.unwrap();
        b_exchange(&mut b, &mut failures).await;
        let got = read_answer(&mut a).await;
        let want = self.want;
        let got = Answer {
            ended_by_headers: want.ended_by_headers.and(got.ended_by_headers),
            ..got
        };
        if got != want {
            failures.push(format!("A:\n  expected {want:?}\n  got      {got:?}"));
        }
        check_b_quiet(&mut b, &mut failures).await;
        let port = addr.port();
        let mut upstream: Vec<Vec<u8>> = self.upstream.iter().map(|r| with_port(r, port)).collect();
        upstream.push(b_upstream(port));
        check_upstream(&rec, upstream, &[], &mut failures);
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}

/// Reads frames until stream 1 ends (or is reset, or the connection goes away), answering
/// the server's SETTINGS.
async fn read_answer(a: &mut tokio::net::TcpStream) -> Answer {
    let until = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut buf = Vec::new();
    let mut answer = Answer {
        status: Err("no HEADERS on stream 1".to_owned()),
        data: String::new(),
        ended_by_headers: Some(false),
    };
    while let Some(Frame {
        kind,
        flags,
        stream,
        payload,
    }) = h2::read_frame(a, &mut buf, until).await
    {
        match (kind, stream) {
            (h2::SETTINGS, 0) if flags & h2::ACK == 0 => {
                let _ = a.write_all(&h2::frame(h2::SETTINGS, h2::ACK, 0, &[])).await;
            }
            (h2::HEADERS, 1) => {
                answer.status = h2::status(&payload);
                if flags & h2::END_STREAM != 0 {
                    answer.ended_by_headers = Some(true);
                    break;
                }
            }
            (h2::DATA, 1) => {
                answer.data.push_str(&String::from_utf8_lossy(&payload));
                if flags & h2::END_STREAM != 0 {
                    break;
                }
            }
            (h2::RST_STREAM, 1) => {
                answer.status = Err(format!("RST_STREAM {payload:02x?}"));
                break;
            }
            (h2::GOAWAY, _) => {
                answer.status = Err(format!("GOAWAY {payload:02x?}"));
                break;
            }
            _ => {}
        }
    }
    answer
}

async fn forbidden(path: &str) {
    H2Case::get(path)
        .answer(403, FORBIDDEN, Some(false))
        .run()
        .await;
}

async fn forwarded_as(path: &str, seen: &str) {
    let line = format!("GET {seen}");
    H2Case::get(path)
        .answer(200, &line, Some(false))
        .up(fwd(&line, "a.test", ""))
        .run()
        .await;
}

#[tokio::test]
async fn h2_admin_itself_is_forbidden() {
    forbidden("/admin").await;
}

#[tokio::test]
async fn h2_percent_encoded_letter_admin_is_forbidden() {
    forbidden("/%61dmin").await;
}

#[tokio::test]
async fn h2_double_slash_admin_is_forbidden() {
    forbidden("//admin").await;
}

#[tokio::test]
async fn h2_dot_dot_admin_is_forbidden() {
    forbidden("/x/../admin").await;
}

#[tokio::test]
async fn h2_dot_admin_is_forbidden() {
    forbidden("/./admin").await;
}

#[tokio::test]
async fn h2_encoded_dot_dot_admin_is_forbidden() {
    forbidden("/%2e%2e/admin").await;
}

#[tokio::test]
async fn h2_ordinary_path_is_forwarded() {
    forwarded_as("/y", "/y").await;
}

#[tokio::test]
async fn h2_dot_dot_is_resolved_before_forwarding() {
    forwarded_as("/x/../y", "/y").await;
}

#[tokio::test]
async fn h2_empty_segments_are_merged() {
    forwarded_as("//a///b", "/a/b").await;
}

#[tokio::test]
async fn h2_encoded_slash_is_refused() {
    H2Case::get("/a%2Fb")
        .answer(400, BAD_TARGET, Some(false))
        .run()
        .await;
}

#[tokio::test]
async fn h2_two_cookie_fields_become_one_line() {
    H2Case::get("/c")
        .field("cookie", "a=1")
        .field("cookie", "b=2")
        .answer(200, "GET /c", Some(false))
        .up(fwd("GET /c", "a.test", "cookie: a=1; b=2\r\n"))
        .run()
        .await;
}

#[tokio::test]
async fn h2_head_answered_here_has_no_data() {
    H2Case::new("HEAD", "nowhere.test", "/")
        .answer(404, "", Some(true))
        .run()
        .await;
}

#[tokio::test]
async fn h2_get_answered_here_has_the_body() {
    H2Case::new("GET", "nowhere.test", "/")
        .answer(404, NOT_FOUND, Some(false))
        .run()
        .await;
}

#[tokio::test]
async fn h2_head_forwarded_has_no_data() {
    H2Case::new("HEAD", "a.test", "/h")
        .answer(200, "", None)
        .up(fwd("HEAD /h", "a.test", ""))
        .run()
        .await;
}

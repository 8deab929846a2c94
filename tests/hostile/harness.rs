//! Running one hostile case: a fresh recording backend and app, client A sending the hostile
//! bytes and client B an ordinary request in between, then exact comparisons of what A and
//! B got and of the requests the backend saw.

use crate::backend::{self, Recorder, Script, find};
use std::net::SocketAddr;
use std::time::Duration;
use switchyard::app::{self, App};
use switchyard::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a connection must stay quiet before what it sent is taken as complete.
pub const IDLE: Duration = Duration::from_millis(300);
/// The longest wait for bytes still expected.
const PATIENCE: Duration = Duration::from_secs(5);
/// Each case as a whole.
const CASE_TIMEOUT: Duration = Duration::from_secs(10);
/// Placeholder for the listener's port in expected upstream bytes.
pub const PORT: &str = "{P}";

/// B's request, and what B and the backend must see of it.
pub const B_REQUEST: &[u8] = b"GET /b HTTP/1.1\r\nHost: b.test\r\nx-request-id: b1\r\n\r\n";

/// The config: host `a.test` (with `/admin` only for 10.0.0.0/8), `b.test`, `small.test`
/// (`max_body_bytes = 4`) to the recorder; `dead.test` to a port nobody listens on.
fn config(rec: SocketAddr, dead: SocketAddr) -> Config {
    let text = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ndrain_timeout = \"1s\"\nwatch_interval = \"0s\"\n\
         [http]\naccess_log = \"off\"\n\
         [[listeners]]\nname = \"web\"\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"3s\"\nmax_header_bytes = 8192\n\
         [[services]]\nname = \"rec\"\n[[services.endpoints]]\naddress = \"{rec}\"\n\
         [[services]]\nname = \"dead\"\n[[services.endpoints]]\naddress = \"{dead}\"\n\
         [[routes]]\nhost = \"a.test\"\npath = \"/admin\"\nservice = \"rec\"\nallow_sources = [\"10.0.0.0/8\"]\n\
         [[routes]]\nhost = \"a.test\"\npath = \"/\"\nservice = \"rec\"\n\
         [[routes]]\nhost = \"b.test\"\nservice = \"rec\"\n\
         [[routes]]\nhost = \"small.test\"\nservice = \"rec\"\nmax_body_bytes = 4\n\
         [[routes]]\nhost = \"dead.test\"\nservice = \"dead\"\n"
    );
    Config::parse(&text, "hostile").unwrap()
}

/// A recorder answering as `script`, and an app in front of it.
pub async fn setup(script: Script) -> (Recorder, App, SocketAddr) {
    let rec = backend::start(script).await;
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let app = app::start(config(rec.addr, dead)).await.unwrap();
    let addr = app.http_addr("web").await.unwrap();
    (rec, app, addr)
}

/// Reads until what came is `expect` and then the connection was quiet for [`IDLE`], or it
/// closed, or [`PATIENCE`] ran out. While what came is a beginning of `expect`, more is
/// waited for; once it differs, only until the connection is quiet. Without `settle`, returns
/// as soon as `expect` came. Returns the bytes (without `date:` lines) and whether the
/// connection closed.
pub async fn read_some(s: &mut TcpStream, expect: &[u8], settle: bool) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let until = tokio::time::Instant::now() + PATIENCE;
    loop {
        let seen = strip_date(&got);
        if !settle && seen == expect {
            return (seen, false);
        }
        let wait = if seen.len() < expect.len() && expect.starts_with(&seen) {
            until.saturating_duration_since(tokio::time::Instant::now())
        } else {
            IDLE
        };
        match tokio::time::timeout(wait, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (strip_date(&got), true),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Err(_) => return (strip_date(&got), false),
        }
    }
}

/// `bytes` without `date:` lines (the one thing hyper adds that changes every second).
pub fn strip_date(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    while let Some(at) = find(&out, b"\r\ndate: ") {
        let end = find(&out[at + 2..], b"\r\n").map_or(out.len(), |e| at + 2 + e);
        out.drain(at..end);
    }
    out
}

/// Bytes as an escaped string, for failure messages.
pub fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// `bytes` with the listener's port for [`PORT`].
pub fn with_port(bytes: &[u8], port: u16) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replace(PORT, &port.to_string())
        .into_bytes()
}

/// One write of A and the exact bytes it must bring back.
struct Step {
    send: Vec<u8>,
    expect: Vec<u8>,
}

/// A hostile case over HTTP/1.x.
pub struct Case {
    steps: Vec<Step>,
    closed: bool,
    upstream: Vec<Vec<u8>>,
    tunnels: Vec<Vec<u8>>,
    script: Script,
}

impl Case {
    /// A sends `send` and must get exactly `expect` back (after B's exchange).
    pub fn send(send: impl AsRef<[u8]>, expect: impl AsRef<[u8]>) -> Case {
        Case {
            steps: Vec::new(),
            closed: false,
            upstream: Vec::new(),
            tunnels: Vec::new(),
            script: backend::echo(),
        }
        .then(send, expect)
    }

    /// A's next write, once the previous answer is in, and what it must bring back.
    pub fn then(mut self, send: impl AsRef<[u8]>, expect: impl AsRef<[u8]>) -> Case {
        self.steps.push(Step {
            send: send.as_ref().to_vec(),
            expect: expect.as_ref().to_vec(),
        });
        self
    }

    /// Then an ordinary `GET /next` on the same connection, answered and forwarded.
    pub fn then_next(self) -> Case {
        self.then(crate::get_id("/next", "t2"), crate::ok("GET /next"))
            .up(crate::fwd_id("GET /next", "a.test", "", "t2"))
    }

    /// A's connection must end closed.
    pub fn closed(mut self) -> Case {
        self.closed = true;
        self
    }

    /// The backend must see this request from A (exact bytes, [`PORT`] for the port).
    pub fn up(mut self, request: impl AsRef<[u8]>) -> Case {
        self.upstream.push(request.as_ref().to_vec());
        self
    }

    /// An upgraded connection must carry exactly `bytes` to the backend.
    pub fn tunnel(mut self, bytes: impl AsRef<[u8]>) -> Case {
        self.tunnels.push(bytes.as_ref().to_vec());
        self
    }

    /// The backend answers as `script` says.
    pub fn script(mut self, script: Script) -> Case {
        self.script = script;
        self
    }

    /// Runs the case; panics with every difference found.
    pub async fn run(self) {
        tokio::time::timeout(CASE_TIMEOUT, self.run_inner())
            .await
            .expect("case timed out");
    }

    async fn run_inner(self) {
        let (rec, _app, addr) = setup(self.script.clone()).await;
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        let mut failures = Vec::new();
        let mut closed = false;
        for (i, step) in self.steps.iter().enumerate() {
            if closed {
                failures.push(format!("A: closed before step {}", i + 1));
                break;
            }
            if a.write_all(&step.send).await.is_err() {
                failures.push(format!("A: write of step {} failed", i + 1));
            }
            if i == 0 {
                b_exchange(&mut b, &mut failures).await;
            }
            let (got, c) = read_some(&mut a, &step.expect, true).await;
            closed = c;
            if got != step.expect {
                failures.push(format!(
                    "A step {}:\n  expected {}\n  got      {}",
                    i + 1,
                    show(&step.expect),
                    show(&got)
                ));
            }
        }
        if closed != self.closed {
            failures.push(format!(
                "A: connection {} (expected {})",
                if closed { "closed" } else { "kept open" },
                if self.closed { "closed" } else { "open" }
            ));
        }
        check_b_quiet(&mut b, &mut failures).await;
        let port = addr.port();
        let mut want: Vec<Vec<u8>> = self.upstream.iter().map(|r| with_port(r, port)).collect();
        want.push(b_upstream(port));
        check_upstream(&rec, want, &self.tunnels, &mut failures);
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }
}

/// B's request and its exact answer.
pub async fn b_exchange(b: &mut TcpStream, failures: &mut Vec<String>) {
    let want = crate::ok("GET /b");
    let _ = b.write_all(B_REQUEST).await;
    let (got, _) = read_some(b, &want, false).await;
    if got != want {
        failures.push(format!(
            "B:\n  expected {}\n  got      {}",
            show(&want),
            show(&got)
        ));
    }
}

/// B got nothing more, and its connection is still usable.
pub async fn check_b_quiet(b: &mut TcpStream, failures: &mut Vec<String>) {
    let mut extra = [0u8; 1024];
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), b.read(&mut extra)).await {
        failures.push(format!("B: more after its answer: {r:?}"));
    }
}

/// What the backend must see of B's request.
pub fn b_upstream(port: u16) -> Vec<u8> {
    with_port(&crate::fwd_id("GET /b", "b.test", "", "b1"), port)
}

/// The backend saw exactly `want` (in any order over its connections), each connection's
/// bytes are exactly its requests (nothing cut, nothing extra), and the tunnels carried
/// `tunnels`.
pub fn check_upstream(
    rec: &Recorder,
    mut want: Vec<Vec<u8>>,
    tunnels: &[Vec<u8>],
    failures: &mut Vec<String>,
) {
    let seen = rec.seen();
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut tunnel = Vec::new();
    for (i, conn) in seen.iter().enumerate() {
        if conn.raw != conn.requests.concat() {
            failures.push(format!(
                "upstream connection {i}: bytes beyond whole requests{}: {}",
                conn.garbage
                    .as_ref()
                    .map_or(String::new(), |g| format!(" ({g})")),
                show(&conn.raw)
            ));
        }
        got.extend(conn.requests.iter().cloned());
        if !conn.tunnel.is_empty() {
            tunnel.push(conn.tunnel.clone());
        }
    }
    want.sort();
    got.sort();
    if want != got {
        let list = |l: &[Vec<u8>]| {
            l.iter()
                .map(|r| format!("\n    {}", show(r)))
                .collect::<String>()
        };
        failures.push(format!(
            "upstream requests:\n  expected{}\n  got{}",
            list(&want),
            list(&got)
        ));
    }
    if tunnel != tunnels {
        failures.push(format!(
            "upstream tunnels: expected {:?}, got {:?}",
            tunnels.iter().map(|t| show(t)).collect::<Vec<_>>(),
            tunnel.iter().map(|t| show(t)).collect::<Vec<_>>()
        ));
    }
}

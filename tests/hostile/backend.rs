//! The upstream side of the hostile tests: a raw HTTP/1.1 server that records, per accepted
//! connection, every byte it received and the complete requests it cut them into (framed by
//! `Content-Length` or chunked with trailers, parsed with `httparse`), and answers each
//! request as its script says. By default it echoes what it was asked:
//! `HTTP/1.1 200 OK\r\nx-backend: rec\r\ncontent-length: N\r\n\r\n<method> <target>`, so a
//! client sees which target the endpoint got.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the backend answers a request with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The echo response (see the module docs); no body for HEAD.
    Echo,
    /// These bytes, as they are.
    Raw(Vec<u8>),
    /// These bytes (a `101`), then every byte that comes is echoed back (and recorded in
    /// [`UpConn::tunnel`]).
    Upgrade(Vec<u8>),
}

/// Chooses the answer from the request's method and target.
pub type Script = Arc<dyn Fn(&str, &str) -> Answer + Send + Sync>;

/// The echo answer for every request.
pub fn echo() -> Script {
    Arc::new(|_, _| Answer::Echo)
}

/// `raw` for requests whose target is `target`, the echo for the others.
pub fn on(target: &'static str, raw: &[u8]) -> Script {
    let raw = raw.to_vec();
    Arc::new(move |_, t| {
        if t == target {
            Answer::Raw(raw.clone())
        } else {
            Answer::Echo
        }
    })
}

/// The echo response head and body for `method target`.
pub fn echo_response(method: &str, target: &str) -> Vec<u8> {
    let body = format!("{method} {target}");
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nx-backend: rec\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// What one upstream connection carried.
#[derive(Debug, Clone, Default)]
pub struct UpConn {
    /// Every byte received before any upgrade.
    pub raw: Vec<u8>,
    /// The complete requests `raw` was cut into, in order.
    pub requests: Vec<Vec<u8>>,
    /// Bytes received after a `101` (echoed back).
    pub tunnel: Vec<u8>,
    /// Why parsing stopped, if `raw` stopped making sense.
    pub garbage: Option<String>,
}

/// A running recording backend.
pub struct Recorder {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// One entry per accepted connection.
    pub conns: Arc<Mutex<Vec<UpConn>>>,
}

impl Recorder {
    /// A copy of what was recorded so far.
    pub fn seen(&self) -> Vec<UpConn> {
        self.conns.lock().unwrap().clone()
    }
}

/// Starts a recording backend on 127.0.0.1 answering as `script` says.
pub async fn start(script: Script) -> Recorder {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(Mutex::new(Vec::new()));
    let all = Arc::clone(&conns);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let index = {
                let mut all = all.lock().unwrap();
                all.push(UpConn::default());
                all.len() - 1
            };
            tokio::spawn(serve(socket, Arc::clone(&all), index, Arc::clone(&script)));
        }
    });
    Recorder { addr, conns }
}

async fn serve(mut s: TcpStream, all: Arc<Mutex<Vec<UpConn>>>, index: usize, script: Script) {
    let mut pending = Vec::new();
    let mut tunnel = false;
    let mut broken = false;
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if tunnel {
            all.lock().unwrap()[index]
                .tunnel
                .extend_from_slice(&buf[..n]);
            if s.write_all(&buf[..n]).await.is_err() {
                return;
            }
            continue;
        }
        all.lock().unwrap()[index].raw.extend_from_slice(&buf[..n]);
        if broken {
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        loop {
            let (len, method, target) = match complete_request(&pending) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(why) => {
                    all.lock().unwrap()[index].garbage = Some(why);
                    broken = true;
                    break;
                }
            };
            let request: Vec<u8> = pending.drain(..len).collect();
            all.lock().unwrap()[index].requests.push(request);
            let answer = match script(&method, &target) {
                Answer::Echo => echo_response(&method, &target),
                Answer::Raw(raw) => raw,
                Answer::Upgrade(raw) => {
                    tunnel = true;
                    raw
                }
            };
            if s.write_all(&answer).await.is_err() {
                return;
            }
            if tunnel {
                // What came after the upgrade request belongs to the tunnel.
                let early = std::mem::take(&mut pending);
                all.lock().unwrap()[index].tunnel.extend_from_slice(&early);
                let _ = s.write_all(&early).await;
                break;
            }
        }
    }
}

/// The length, method and target of the complete request at the start of `buf`, `None`
/// while incomplete, or why it is not a request.
fn complete_request(buf: &[u8]) -> Result<Option<(usize, String, String)>, String> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("request head: {e}")),
    };
    let method = req.method.unwrap_or_default().to_owned();
    let target = req.path.unwrap_or_default().to_owned();
    let mut chunked = false;
    let mut length = 0usize;
    for f in req.headers.iter() {
        let value = String::from_utf8_lossy(f.value).trim().to_ascii_lowercase();
        if f.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.rsplit(',').next().map(str::trim) == Some("chunked");
        } else if f.name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| format!("content-length {value:?}"))?;
        }
    }
    let body = if chunked {
        match chunked_length(&buf[head..])? {
            Some(n) => n,
            None => return Ok(None),
        }
    } else if buf.len() - head >= length {
        length
    } else {
        return Ok(None);
    };
    Ok(Some((head + body, method, target)))
}

/// The length of the chunked body (trailers included) at the start of `body`.
fn chunked_length(body: &[u8]) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = find(&body[at..], b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&body[at..at + eol]).into_owned();
        let digits = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(digits, 16).map_err(|_| format!("chunk {line:?}"))?;
        at += eol + 2;
        if size == 0 {
            if body[at..].starts_with(b"\r\n") {
                return Ok(Some(at + 2));
            }
            return Ok(find(&body[at..], b"\r\n\r\n").map(|end| at + end + 4));
        }
        if body.len() < at + size + 2 {
            return Ok(None);
        }
        if &body[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk data not followed by CRLF".to_owned());
        }
        at += size + 2;
    }
}

/// Where `needle` first occurs in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

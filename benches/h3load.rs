//! `h3load`: a small HTTP/3 load client for `benches/instr.sh h3`, printing h2load's summary lines.
//!
//! It exists because no packaged load tool speaks HTTP/3 here: Debian's `h2load` (nghttp2 1.52)
//! is built without ngtcp2. It is built on the same quinn + h3 as the proxy, like h2load's
//! model: `-c` connections (each on its own UDP socket), `-m` concurrent GET streams on each
//! (POST with `-d FILE`), `-n` requests in all, every response body read to the end; a request with a 2xx or 3xx
//! status and its whole body is `succeeded`. The whole run is bounded by `--max-seconds`.
//!
//!   cargo bench --bench h3load -- -n 10000 -c 4 -m 10 --authority app.test --insecure \
//!       https://127.0.0.1:19443/
#![allow(missing_docs)]

use anyhow::{Context, anyhow};
use bytes::{Buf, Bytes};
use clap::Parser;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::crypto::aws_lc_rs;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The command line (h2load's names where they exist).
#[derive(Parser)]
struct Args {
    /// Requests in all.
    #[arg(short = 'n', default_value_t = 1)]
    requests: u64,
    /// Connections.
    #[arg(short = 'c', default_value_t = 1)]
    connections: u64,
    /// Concurrent streams per connection.
    #[arg(short = 'm', default_value_t = 1)]
    streams: u64,
    /// `:authority` and TLS server name (default: the URL's host).
    #[arg(long)]
    authority: Option<String>,
    /// Accept any server certificate (the bench's self-signed one).
    #[arg(long)]
    insecure: bool,
    /// POST this file's bytes instead of a GET (h2load's `-d`).
    #[arg(short = 'd')]
    data: Option<std::path::PathBuf>,
    /// Stop after this long, counting what is left as not done.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// `https://HOST:PORT/PATH` (UDP). Without it (as `cargo test --all-targets` runs every
    /// bench target, with no arguments) there is nothing to load, and it says so.
    url: Option<http::Uri>,
    /// Ignored (cargo bench passes `--bench`).
    #[arg(long, hide = true)]
    bench: bool,
}

/// What every connection does.
struct Plan {
    addr: SocketAddr,
    authority: String,
    uri: http::Uri,
    requests: u64,
    streams: u64,
    insecure: bool,
    /// The request body (empty: a GET).
    body: Bytes,
}

/// Counters shared by every stream.
#[derive(Default)]
struct Stats {
    started: AtomicU64,
    done: AtomicU64,
    succeeded: AtomicU64,
    errored: AtomicU64,
    status: [AtomicU64; 6],
    bytes: AtomicU64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let Some(url) = &args.url else {
        println!("h3load: no URL given, no load run (usage: h3load -n N -c C -m M URL)");
        return Ok(());
    };
    let host = url.host().context("url without a host")?;
    let port = url.port_u16().unwrap_or(443);
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .context("url resolves to nothing")?;
    let authority = args.authority.clone().unwrap_or_else(|| host.to_string());
    let path = url.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let body = match &args.data {
        Some(file) => std::fs::read(file).with_context(|| format!("{}", file.display()))?,
        None => Vec::new(),
    };
    let plan = Arc::new(Plan {
        addr,
        uri: format!("https://{authority}{path}").parse()?,
        authority,
        requests: args.requests,
        streams: args.streams,
        insecure: args.insecure,
        body: body.into(),
    });
    let runtime = tokio::runtime::Runtime::new()?;
    let stats = Arc::new(Stats::default());
    let start = Instant::now();
    let run = runtime.block_on(async {
        let limit = Duration::from_secs(args.max_seconds);
        let mut conns = tokio::task::JoinSet::new();
        for _ in 0..args.connections {
            conns.spawn(connection(plan.clone(), stats.clone()));
        }
        tokio::time::timeout(limit, async {
            while let Some(joined) = conns.join_next().await {
                if let Err(e) = joined.map_err(anyhow::Error::from).and_then(|r| r) {
                    eprintln!("connection: {e:#}");
                }
            }
        })
        .await
    });
    let secs = start.elapsed().as_secs_f64();
    let get = |c: &AtomicU64| c.load(Relaxed);
    let (done, ok) = (get(&stats.done), get(&stats.succeeded));
    let codes: Vec<u64> = stats.status.iter().map(get).collect();
    println!(
        "finished in {secs:.2}s, {:.2} req/s, {:.2}MB/s",
        done as f64 / secs,
        get(&stats.bytes) as f64 / secs / 1e6
    );
    println!(
        "requests: {} total, {} started, {done} done, {ok} succeeded, {} failed, {} errored, {} timeout",
        args.requests,
        get(&stats.started).min(args.requests),
        args.requests - ok,
        get(&stats.errored),
        u64::from(run.is_err()) * (args.requests - done),
    );
    println!(
        "status codes: {} 2xx, {} 3xx, {} 4xx, {} 5xx",
        codes[2], codes[3], codes[4], codes[5]
    );
    if ok == args.requests {
        Ok(())
    } else {
        Err(anyhow!("{} requests did not succeed", args.requests - ok))
    }
}

/// One QUIC connection running `streams` streams that take requests until all have started.
async fn connection(plan: Arc<Plan>, stats: Arc<Stats>) -> anyhow::Result<()> {
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse()?)?;
    endpoint.set_default_client_config(client_config(plan.insecure)?);
    let quic = endpoint.connect(plan.addr, &plan.authority)?.await?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(quic)).await?;
    tokio::spawn(async move { std::future::poll_fn(|cx| driver.poll_close(cx)).await });
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..plan.streams {
        let (mut send, stats, plan) = (send.clone(), stats.clone(), plan.clone());
        streams.spawn(async move {
            while stats.started.fetch_add(1, Relaxed) < plan.requests {
                match request(&mut send, &plan).await {
                    Ok((status, bytes)) => {
                        stats.bytes.fetch_add(bytes, Relaxed);
                        stats.status[usize::from(status / 100).min(5)].fetch_add(1, Relaxed);
                        if (200..400).contains(&status) {
                            stats.succeeded.fetch_add(1, Relaxed);
                        }
                    }
                    Err(_) => _ = stats.errored.fetch_add(1, Relaxed),
                }
                stats.done.fetch_add(1, Relaxed);
            }
        });
    }
    while streams.join_next().await.is_some() {}
    endpoint.close(0u32.into(), b"done");
    Ok(())
}

/// One GET (or POST of the body): the status and the response body's length, read to the end.
async fn request(
    send: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    plan: &Plan,
) -> anyhow::Result<(u16, u64)> {
    let method = if plan.body.is_empty() { "GET" } else { "POST" };
    let head = http::Request::builder()
        .method(method)
        .uri(plan.uri.clone());
    let mut stream = send.send_request(head.body(())?).await?;
    if !plan.body.is_empty() {
        stream.send_data(plan.body.clone()).await?;
    }
    stream.finish().await?;
    let status = stream.recv_response().await?.status().as_u16();
    let mut bytes = 0;
    while let Some(chunk) = stream.recv_data().await? {
        bytes += chunk.remaining() as u64;
    }
    Ok((status, bytes))
}

/// TLS 1.3 with ALPN `h3`, trusting any certificate with `--insecure` (else the system's roots).
fn client_config(insecure: bool) -> anyhow::Result<quinn::ClientConfig> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut tls = if insecure {
        // Any certificate, the handshake's signatures still checked.
        let verifier = Arc::new(switchyard::upstream::unverified::Unverified(provider));
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"h3".to_vec()];
    Ok(quinn::ClientConfig::new(Arc::new(
        QuicClientConfig::try_from(tls)?,
    )))
}

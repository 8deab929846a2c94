//! `switchyard demo`: the embedded default config plus the backends it points at.
//!
//! The config is `config/demo.toml`, compiled into the binary so the demo needs no files.
//! Every TCP endpoint it names gets a tiny HTTP server that answers with its own name, every
//! UDP endpoint an echo server that prefixes its name, so balancing is visible with `curl`
//! and `nc`.

use crate::config::{Config, ConfigError, Protocol};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Response, body::Incoming};
use hyper_util::rt::TokioIo;
use std::collections::BTreeSet;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use tokio::net::{TcpListener, UdpSocket};

/// The embedded demo config.
pub const CONFIG: &str = include_str!("../config/demo.toml");

/// Parses the embedded demo config.
pub fn config() -> Result<Config, ConfigError> {
    Config::parse(CONFIG, "config/demo.toml (embedded)")
}

/// Writes a self-signed certificate (for its `hosts`) for every certificate entry of `config`
/// whose files do not exist yet, so the demo's HTTPS listener has something to serve.
pub fn write_certificates(config: &Config) -> io::Result<()> {
    for spec in &config.http.certificates {
        if spec.cert.exists() && spec.key.exists() {
            continue;
        }
        let names = if spec.hosts.is_empty() {
            vec!["demo.localhost".to_owned()]
        } else {
            spec.hosts.clone()
        };
        let generated = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
        for path in [&spec.cert, &spec.key] {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
        std::fs::write(&spec.cert, generated.cert.pem())?;
        std::fs::write(&spec.key, generated.signing_key.serialize_pem())?;
    }
    Ok(())
}

/// Starts one demo backend per distinct endpoint of `config`.
pub async fn start_backends(config: &Config) -> io::Result<()> {
    let endpoints: BTreeSet<(bool, SocketAddr)> = config
        .services
        .iter()
        .flat_map(|s| {
            s.endpoints
                .iter()
                .map(move |e| (s.protocol == Protocol::Udp, e.address))
        })
        .collect();
    for (udp, address) in endpoints {
        let name = format!("backend-{}", address.port());
        if udp {
            let socket = UdpSocket::bind(address).await?;
            tokio::spawn(echo(socket, name));
        } else {
            let listener = TcpListener::bind(address).await?;
            tokio::spawn(http(listener, name));
        }
    }
    Ok(())
}

/// An HTTP server answering every request with `NAME` and the client address.
pub async fn http(listener: TcpListener, name: String) {
    loop {
        let Ok((socket, peer)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        tokio::spawn(async move {
            let reply = move |_req: hyper::Request<Incoming>| {
                let body = format!("hello from {name} (you are {peer})\n");
                let resp = Response::builder()
                    .header("x-backend", name.as_str())
                    .body(Full::new(Bytes::from(body)));
                async move { Ok::<_, Infallible>(resp.unwrap_or_default()) }
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service_fn(reply));
            let _closed = conn.await;
        });
    }
}

/// A UDP server answering each datagram with `NAME: ` and the datagram.
pub async fn echo(socket: UdpSocket, name: String) {
    let mut buf = vec![0u8; 65_535];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let mut reply = format!("{name}: ").into_bytes();
        reply.extend_from_slice(&buf[..n]);
        let _sent = socket.send_to(&reply, from).await;
    }
}

/// What to try, printed when the demo starts.
pub fn instructions(config: &Config) -> String {
    let mut out = String::from("\nSwitchyard demo is running. Try:\n\n");
    for s in &config.services {
        let Some(listen) = s.listen else { continue };
        let line = match s.protocol {
            Protocol::Tcp => format!(
                "  for i in 1 2 3 4 5 6; do curl -s http://{}/; done   # {} ({})\n",
                listen, s.name, s.scheduler
            ),
            Protocol::Udp => format!(
                "  echo hi | nc -u -w1 {} {}   # {} (udp, {})\n",
                listen.ip(),
                listen.port(),
                s.name,
                s.scheduler
            ),
        };
        out.push_str(&line);
    }
    for l in &config.http.listeners {
        let (scheme, extra) = if l.tls {
            ("https", "-k ")
        } else {
            ("http", "")
        };
        for host in ["a.demo.localhost", "b.demo.localhost"] {
            out.push_str(&format!(
                "  curl -s {extra}--resolve {host}:{port}:{ip} {scheme}://{host}:{port}/   # {} (host routing)\n",
                l.name,
                port = l.listen.port(),
                ip = l.listen.ip(),
            ));
        }
    }
    let admin = config.admin.listen;
    out.push_str(&format!(
        "\nWatch the balancing:\n  curl -s http://{admin}/debug/table\n  curl -s http://{admin}/metrics | grep switchyard_\n\
         \nTo try a reload: copy config/demo.toml, run `switchyard demo --config COPY`, edit the copy\n\
         (or `kill -HUP` the process) and watch /debug/table. Stop with Ctrl-C: connections drain.\n"
    ));
    out
}

#!/usr/bin/env python3
"""Idle connections against a proxy, and what they cost it in resident memory.

Used by benches/idle.sh (see there). Standard library only: asyncio and ssl.

Opens N connections to 127.0.0.1:PORT in one of four ways, keeps them open and idle, reads
the proxy's RSS (VmRSS summed over the process tree of --pid) before, while they are open and
some seconds after they are all closed, and prints one JSON line:

  h1          plain HTTP/1.1: one keep-alive GET, the whole response read, then idle
  h1-silent   plain TCP: connected, never a byte sent
  tls-h1      TLS (ALPN http/1.1), one keep-alive GET, then idle
  tls-h2      TLS (ALPN h2), preface + SETTINGS + one HEADERS (GET, END_STREAM), the
              response read, then idle; SETTINGS and PINGs are answered while idle

Every connection keeps a reader, so a connection the proxy closes (or GOAWAYs) during the
measurement is counted in "closed_early" instead of silently lowering the figure. Everything
is bounded: connects and requests by --timeout, the whole run by the caller's `timeout`.
"""

import argparse
import asyncio
import json
import os
import ssl
import struct
import sys
import time

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def tree(pid):
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def rss_kib(pid):
    """Summed VmRSS (KiB) of pid's process tree."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def h2_request(host):
    """HEADERS for GET https://host/ on stream 1: static-table :method, :scheme, :path, and
    :authority as a literal without indexing (no Huffman)."""
    block = b"\x82\x87\x84" + b"\x01" + bytes([len(host)]) + host.encode()
    return H2_PREFACE + frame(4, 0, 0) + frame(1, 0x5, 1, block)


class Conn:
    """One connection and its reader."""

    def __init__(self, args):
        self.args = args
        self.reader = self.writer = None
        self.responded = asyncio.get_running_loop().create_future()
        self.closed_by_peer = False
        self.status = None
        self.task = None

    async def open(self):
        a = self.args
        ctx = None
        if a.case.startswith("tls"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"] if a.case == "tls-h2" else ["http/1.1"])
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", a.port, ssl=ctx, server_hostname=a.host if ctx else None,
            limit=64 * 1024)
        if a.case == "tls-h2":
            alpn = self.writer.get_extra_info("ssl_object").selected_alpn_protocol()
            if alpn != "h2":
                raise RuntimeError(f"ALPN chose {alpn!r}, not h2")
            self.writer.write(h2_request(a.host))
            self.task = asyncio.ensure_future(self.read_h2())
        elif a.case == "h1-silent":
            self.responded.set_result(None)
            self.task = asyncio.ensure_future(self.read_idle())
        else:
            self.writer.write(f"GET / HTTP/1.1\r\nHost: {a.host}\r\n\r\n".encode())
            self.task = asyncio.ensure_future(self.read_h1())
        await asyncio.wait_for(asyncio.shield(self.responded), a.timeout)

    def done(self, status):
        if not self.responded.done():
            self.status = status
            self.responded.set_result(None)

    async def read_idle(self):
        try:
            while await self.reader.read(4096):
                pass
        except (OSError, ssl.SSLError):
            pass
        self.closed_by_peer = True
        self.done(None)

    async def read_h1(self):
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
            if "content-length" in fields:
                await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                await self.reader.readuntil(b"0\r\n\r\n")
            self.done(status)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError, IndexError):
            pass
        await self.read_idle()

    async def read_h2(self):
        try:
            while True:
                header = await self.reader.readexactly(9)
                length = int.from_bytes(header[:3], "big")
                kind, flags = header[3], header[4]
                stream = int.from_bytes(header[5:], "big") & 0x7FFFFFFF
                payload = await self.reader.readexactly(length)
                if kind == 4 and not flags & 1:  # SETTINGS
                    self.writer.write(frame(4, 1, 0))
                elif kind == 6 and not flags & 1:  # PING
                    self.writer.write(frame(6, 1, 0, payload))
                elif kind == 7:  # GOAWAY
                    break
                elif kind == 1 and stream == 1 and self.status is None:  # HEADERS
                    # :status 200 is static index 8 (0x88) for every proxy measured here.
                    pad = payload[0] + 1 if flags & 0x8 else 0
                    prio = 5 if flags & 0x20 else 0
                    block = payload[pad + prio:]
                    self.status = 200 if block[:1] == b"\x88" else -1
                    if flags & 1:
                        self.done(self.status)
                elif kind == 0 and stream == 1 and flags & 1:  # DATA, END_STREAM
                    self.done(self.status)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        self.closed_by_peer = True
        self.done(None)

    def close(self):
        if self.task:
            self.task.cancel()
        if self.writer:
            self.writer.transport.abort() if self.args.abort else self.writer.close()


async def main(a):
    loop_start = time.monotonic()
    before = rss_kib(a.pid)
    conns, failed = [], 0
    sem = asyncio.Semaphore(a.concurrency)

    async def one():
        nonlocal failed
        async with sem:
            c = Conn(a)
            try:
                await asyncio.wait_for(c.open(), a.timeout)
                conns.append(c)
            except (OSError, ssl.SSLError, asyncio.TimeoutError, RuntimeError) as e:
                failed += 1
                if failed <= 3:
                    print(f"connection failed: {e!r}", file=sys.stderr)
                c.close()

    await asyncio.gather(*(one() for _ in range(a.n)))
    opened_in = time.monotonic() - loop_start
    bad_status = sum(1 for c in conns if a.case != "h1-silent" and c.status != 200)
    await asyncio.sleep(a.settle)
    open_rss = rss_kib(a.pid)
    closed_early = sum(1 for c in conns if c.closed_by_peer)
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)  # let the transports send their FINs
    await asyncio.sleep(a.after)
    after = rss_kib(a.pid)
    n = len(conns)
    print(json.dumps({
        "case": a.case, "n": a.n, "open": n, "failed": failed, "bad_status": bad_status,
        "closed_early": closed_early, "opened_s": round(opened_in, 1),
        "rss_before_kib": before, "rss_open_kib": open_rss, "rss_after_kib": after,
        "kib_per_conn": round((open_rss - before) / n, 2) if n else None,
    }))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", required=True, choices=["h1", "h1-silent", "tls-h1", "tls-h2"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the proxy's root process")
    p.add_argument("-n", type=int, default=10000, help="connections (default 10000)")
    p.add_argument("--host", default="app.bench.test")
    p.add_argument("--settle", type=float, default=5, help="seconds idle before RSS is read")
    p.add_argument("--after", type=float, default=5, help="seconds after closing before RSS is read")
    p.add_argument("--concurrency", type=int, default=200, help="connections being opened at once")
    p.add_argument("--timeout", type=float, default=30, help="per connection open + first response")
    p.add_argument("--abort", action="store_true", help="close with RST instead of FIN")
    asyncio.run(main(p.parse_args()))

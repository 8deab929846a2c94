#!/usr/bin/env bash
# Memory per idle connection: Switchyard, nginx and HAProxy side by side (BENCHMARKS.md,
# "Idle connections").
#
#   benches/idle.sh [-n N] [-p switchyard,nginx,haproxy] [-c h1,h1-silent,tls-h1,tls-h2] [-o DIR]
#
# For each case and each proxy, a fresh proxy (one worker, pinned to CPU 0) in front of one
# nginx backend; a few warm-up requests (plain, TLS, h2); then benches/idle_client.py (on
# CPU 1) reads the proxy's RSS (VmRSS summed over its processes), opens N connections
# (default 10,000) and leaves them idle, reads RSS again after 3 s, closes them all, and
# reads it once more 5 s later (AFTER=SECONDS to wait longer, e.g. past the upstream pool's
# 50 s idle timeout). Cases:
#
#   h1         plain HTTP/1.1, one keep-alive request answered, then idle
#   h1-silent  plain TCP to the HTTP port, never a byte sent
#   tls-h1     TLS 1.3, ALPN http/1.1, one request, then idle
#   tls-h2     TLS 1.3, ALPN h2, one request (stream 1), then idle; PINGs answered
#
# Every idle timeout is 300 s (Switchyard `header_read_timeout` and `h2_idle_timeout`, nginx
# `client_header_timeout` and `keepalive_timeout`, HAProxy `timeout client`/`http-request`/
# `http-keep-alive`), so no proxy closes a connection during the measurement; the client counts
# any that it does ("closed early"). Output: a markdown table on stdout, the JSON rows and
# each proxy's config and log in DIR (default a new folder under /var/tmp).
#
# Needs nginx, haproxy, openssl, curl (apt-get install -y nginx haproxy) and a release build
# (SWITCHYARD_BIN, default $CARGO_TARGET_DIR/release/switchyard). Borrows the certificate and
# backend helpers of ../shared/bench (BENCH_SHARED). Only 127.0.0.1 gets traffic; the client is
# bounded by its own timeouts and by `timeout`; only processes this script started are
# signalled. The fd limit is the hard one (20,000 here): 10,000 connections take 10,000
# descriptors in the client and as many in the proxy, so N above ~19,000 fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_SHARED=${BENCH_SHARED:-$here/../../shared/bench}
# shellcheck source=/dev/null
source "$BENCH_SHARED/lib/common.sh"
# shellcheck source=/dev/null
source "$BENCH_SHARED/lib/certs.sh"
# shellcheck source=/dev/null
source "$BENCH_SHARED/lib/backend.sh"

N=10000 PROXIES="switchyard nginx haproxy" CASES="h1 h1-silent tls-h1 tls-h2" OUT=""
while getopts "n:p:c:o:" opt; do
    case $opt in
        n) N=$OPTARG ;;
        p) PROXIES=${OPTARG//,/ } ;;
        c) CASES=${OPTARG//,/ } ;;
        o) OUT=$OPTARG ;;
        *) sed -n '2,4p' "$0"; exit 64 ;;
    esac
done
SWITCHYARD_BIN=${SWITCHYARD_BIN:-${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}/release/switchyard}
PROXY_CPU=${PROXY_CPU:-0} LOAD_CPU=${LOAD_CPU:-1} NICE=0
# Ports of their own, so that a peers.sh run elsewhere on the machine does not collide.
BIND=127.0.0.1 HTTP_PORT=${HTTP_PORT:-28000} HTTPS_PORT=${HTTPS_PORT:-28443}
ADMIN_PORT=${ADMIN_PORT:-28990} BACKENDS=${BACKENDS:-127.0.0.1:28081}
APP_HOST=app.bench.test
STATE=${BENCH_STATE:-/var/tmp/peers-bench}
OUT=${OUT:-$STATE/idle/$(date +%Y%m%d-%H%M%S)}
CERT=$STATE/certs/cert.pem KEY=$STATE/certs/key.pem CERT_KEY=$STATE/certs/combined.pem
TIMEOUT=300s # every proxy-side idle timeout

for tool in nginx haproxy openssl curl python3 taskset; do
    command -v "$tool" >/dev/null || die "$tool missing (apt-get install -y nginx haproxy curl)"
done
[[ " $PROXIES " != *" switchyard "* || -x $SWITCHYARD_BIN ]] ||
    die "build first: cargo build --release ($SWITCHYARD_BIN missing)"
ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
make_certs "$STATE/certs" || die "certificate generation failed"

PROXY_PID="" BACKEND_PID=""
trap 'stop_tree "$PROXY_PID"; stop_tree "$BACKEND_PID"' EXIT
trap 'exit 130' INT TERM

start_switchyard() {
    cat >"$RUN_DIR/switchyard.toml" <<EOF
[admin]
listen = "$BIND:$ADMIN_PORT"
[runtime]
workers = 1
drain_timeout = "1s"
[http]
access_log = "off"
[[listeners]]
name = "http"
listen = "$BIND:$HTTP_PORT"
header_read_timeout = "$TIMEOUT"
[[listeners]]
name = "https"
listen = "$BIND:$HTTPS_PORT"
tls = true
header_read_timeout = "$TIMEOUT"
h2_idle_timeout = "$TIMEOUT"
[[certificates]]
cert = "$CERT"
key = "$KEY"
hosts = ["$APP_HOST"]
[[services]]
name = "app"
[[services.endpoints]]
address = "$BACKENDS"
[[routes]]
host = "$APP_HOST"
service = "app"
EOF
    RUST_LOG=warn exec "$SWITCHYARD_BIN" run --config "$RUN_DIR/switchyard.toml"
}

start_nginx() {
    cat >"$RUN_DIR/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
pid $RUN_DIR/nginx.pid;
error_log $RUN_DIR/error.log warn;
events { worker_connections 19000; }
http {
    access_log off;
    client_header_timeout $TIMEOUT;
    keepalive_timeout $TIMEOUT;
    keepalive_requests 10000000;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$host;
    ssl_certificate     $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.2 TLSv1.3;
    upstream app { server $BACKENDS; keepalive 128; }
    server {
        listen $BIND:$HTTP_PORT;
        listen $BIND:$HTTPS_PORT ssl http2;
        server_name $APP_HOST;
        location / { proxy_pass http://app; }
    }
}
EOF
    exec nginx -p "$RUN_DIR/" -e "$RUN_DIR/error.log" -c "$RUN_DIR/nginx.conf" -g 'daemon off;'
}

start_haproxy() {
    # maxconn 2 x N would need more descriptors than the hard limit: idle client connections
    # take one each, so let HAProxy warn about its limit instead of refusing to start.
    cat >"$RUN_DIR/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $((N + 100))
    no strict-limits
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client $TIMEOUT
    timeout server 60s
    timeout http-request $TIMEOUT
    timeout http-keep-alive $TIMEOUT
    option http-keep-alive
    http-reuse safe
frontend fe_app
    maxconn $((N + 100))
    bind $BIND:$HTTP_PORT
    bind $BIND:$HTTPS_PORT ssl crt $CERT_KEY alpn h2,http/1.1
    default_backend be_app
backend be_app
    server b1 $BACKENDS
EOF
    exec haproxy -db -f "$RUN_DIR/haproxy.cfg"
}

version() {
    case $1 in
        switchyard) "$SWITCHYARD_BIN" --version | awk '{print $2}' ;;
        nginx) nginx -v 2>&1 | sed 's/.*nginx\///' ;;
        haproxy) haproxy -v | awk 'NR==1{print $3}' ;;
    esac
}

# warm_up : a few requests over each protocol, so that what the first request allocates once
# (pools, TLS session state, lazily built tables) is in the baseline, not in the figure.
warm_up() {
    local i
    for i in 1 2 3; do
        curl -sf --max-time 5 -o /dev/null --resolve "$APP_HOST:$HTTP_PORT:$BIND" "http://$APP_HOST:$HTTP_PORT/" &&
            curl -sfk --max-time 5 -o /dev/null --http1.1 --resolve "$APP_HOST:$HTTPS_PORT:$BIND" "https://$APP_HOST:$HTTPS_PORT/" &&
            curl -sfk --max-time 5 -o /dev/null --http2 --resolve "$APP_HOST:$HTTPS_PORT:$BIND" "https://$APP_HOST:$HTTPS_PORT/" ||
            return 1
    done
}

rows=$OUT/results.jsonl
: >"$rows"
start_backend "$OUT/backend" || die "backend did not start"
{
    echo "date=$(date -Is) n=$N kernel=$(uname -r) nproc=$(nproc)"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    for p in $PROXIES; do echo "version.$p=$(version "$p")"; done
} >"$OUT/meta.txt"
for c in $CASES; do
    port=$HTTP_PORT
    [[ $c == tls-* ]] && port=$HTTPS_PORT
    for p in $PROXIES; do
        export RUN_DIR=$OUT/$c/$p
        mkdir -p "$RUN_DIR"
        wait_port_free "$HTTP_PORT" 15 && wait_port_free "$HTTPS_PORT" 15 || die "ports busy"
        taskset -c "$PROXY_CPU" bash -c "$(declare -f "start_$p"); $(declare -p N BIND HTTP_PORT HTTPS_PORT ADMIN_PORT BACKENDS APP_HOST CERT KEY CERT_KEY TIMEOUT SWITCHYARD_BIN RUN_DIR); start_$p" \
            >"$RUN_DIR/proxy.log" 2>&1 &
        PROXY_PID=$!
        if ! wait_port_up "$HTTP_PORT" 20 "$PROXY_PID" || ! wait_port_up "$HTTPS_PORT" 20 "$PROXY_PID" || ! warm_up; then
            log "$p did not serve; see $RUN_DIR/proxy.log"
            tail -5 "$RUN_DIR/proxy.log" >&2
            stop_tree "$PROXY_PID"
            continue
        fi
        sleep 1
        log "$c $p: $N connections"
        if timeout 600 taskset -c "$LOAD_CPU" python3 "$here/idle_client.py" --case "$c" --port "$port" \
            --pid "$PROXY_PID" -n "$N" --host "$APP_HOST" --after "${AFTER:-5}" >"$RUN_DIR/client.json" 2>"$RUN_DIR/client.log"; then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["proxy"]=sys.argv[2]; print(json.dumps(r))' \
                "$RUN_DIR/client.json" "$p" | tee -a "$rows" >&2
        else
            log "$c $p: client failed"
            tail -5 "$RUN_DIR/client.log" >&2
        fi
        stop_tree "$PROXY_PID"
        PROXY_PID=""
    done
done

python3 - "$rows" "$OUT/meta.txt" <<'EOF' | tee "$OUT/results.md"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n".join("    " + l.rstrip() for l in open(sys.argv[2])))
print()
print("| case | proxy | open | KiB per connection | RSS before MiB | RSS open MiB | RSS 5 s after close MiB | after / before | closed early | failed |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    mib = lambda k: f"{r[k] / 1024:.1f}"
    ratio = r["rss_after_kib"] / r["rss_before_kib"] if r["rss_before_kib"] else 0
    print(f"| {r['case']} | {r['proxy']} | {r['open']:,} | {r['kib_per_conn']:.2f} | {mib('rss_before_kib')} "
          f"| {mib('rss_open_kib')} | {mib('rss_after_kib')} | {ratio:.2f} | {r['closed_early']} "
          f"| {r['failed'] + r['bad_status']} |")
EOF
log "results: $OUT"

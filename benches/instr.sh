#!/usr/bin/env bash
# User-space instructions per proxied request, Switchyard vs nginx and HAProxy, counted by
# `valgrind --tool=callgrind` (repeatable on a busy machine, unlike req/s; kernel work is not
# counted). Each proxy runs alone under callgrind, single-threaded, in front of the same
# nginx backend, and gets the same fixed load from h2load.
#
#   benches/instr.sh [h1|h1-tls|h2-tls|h3|bulk|tcp|tcp-newconn] [REQUESTS]  (needs valgrind,
#                                    nginx, h2load, openssl; HAProxy is measured too when installed)
#
# `tcp` is the L4 path: keep-alive HTTP/1.1 through a TCP proxy (Switchyard `[[services]]
# listen`, nginx `stream` (libnginx-mod-stream), HAProxy `mode tcp`) on port 19082.
# `tcp-newconn` is the same path with a new connection per request (`wrk -c8`, `Connection:
# close`, 3 s), in MODE=syscalls only: system calls per proxied connection (counted by the
# proxy's `socket` calls, one per upstream connection; needs wrk).
#   SWITCHYARD_BIN=... to pick the binary (default: the release build)
#
# `h3` is HTTP/3 (QUIC, UDP 19443; `http3 = true` on the TLS listener) with the same streams as
# h2-tls (`-m 10`), loaded by our own client, `benches/h3load.rs` (Debian's h2load has no
# HTTP/3), which this script builds in release (H3LOAD=... to pick a binary). Only Switchyard
# is measured: Debian's nginx 1.22 and HAProxy 2.6 serve no HTTP/3.
#
# CONNS=N sets the load's connections for the instruction count (default 4).
#
# MODE=cpu measures CPU time instead: each proxy runs natively, pinned to CPU 0 (the backend
# and h2load on CPU 1, 64 connections), three times in turn, and its user and kernel time per
# request is read from /proc/PID/stat. Noisier than instruction counts (10 ms ticks, a shared
# machine), but it shows how much of a request's cost is the kernel's, which callgrind omits.
#
# WORKERS=N runs Switchyard with `runtime.workers = N` (default 1). In MODE=cpu with N > 1 the
# proxy is pinned to CPUs 0..N-1 (both cores of a 2-core machine) and the backend and h2load,
# still on CPU 1, run at nice 10, so they share a core with one worker and yield to it.
# ONLY="switchyard" (a list) measures only those proxies.
#
# MODE=syscalls counts each proxy's system calls per request (`strace -f -c`, 64 connections):
# what it asks of the kernel, whose time MODE=cpu shows. `bulk` is 1 MiB responses.
set -euo pipefail
scenario=${1:-h1}
requests=${2:-20000}
mode=${MODE:-instr}
bin=${SWITCHYARD_BIN:-${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}/release/switchyard}
tools="nginx h2load openssl taskset"
case $mode in
    instr) tools+=" valgrind" ;;
    syscalls) tools+=" strace" ;;
esac
if [[ $scenario == tcp-newconn ]]; then
    [[ $mode == syscalls ]] || { echo "tcp-newconn: MODE=syscalls only"; exit 2; }
    tools+=" wrk"
fi
for tool in $tools; do
    command -v "$tool" >/dev/null || { echo "skipped: $tool not installed"; exit 0; }
done
[[ -x $bin ]] || { echo "build first: cargo build --release ($bin missing)"; exit 1; }

# shellcheck source=benches/lib.sh
source "$(dirname "$0")/lib.sh"
bench_dir sy-instr
[[ -n ${KEEP:-} ]] && trap "for p in \"\${pids[@]}\"; do kill \$p 2>/dev/null; done; echo kept \$dir" EXIT
test_cert
# In cpu mode this script, and so the backend and h2load, stay on CPU 1; the proxy gets CPU 0.
workers=${WORKERS:-1}
niced=()
if [[ $mode == cpu ]]; then
    taskset -cp 1 $$ >/dev/null
    proxy_cpus=0
    if ((workers > 1)); then
        proxy_cpus=0-$((workers - 1))
        niced=(nice -n 10)
    fi
    echo "pinning: proxy on CPU $proxy_cpus; backend and h2load on CPU 1$( ((workers > 1)) && echo ', nice 10')"
fi
start_backend 19081
[[ -n ${niced:-} ]] && renice -n 10 -p "${pids[@]}" >/dev/null
switchyard_config 19090 19080 19443 19081
sed -i "s/^workers = 1\$/workers = $workers/" "$dir/switchyard.toml"
if [[ $scenario == h3 ]]; then
    sed -i 's/^tls = true$/tls = true\nhttp3 = true/' "$dir/switchyard.toml"
    h3load=${H3LOAD:-$(cargo build --release --bench h3load --message-format=json \
        --manifest-path "$(dirname "$0")/../Cargo.toml" 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*\/h3load-[^"]*\)".*/\1/p' | tail -1)}
    [[ -x $h3load ]] || { echo "h3load did not build: cargo build --release --bench h3load"; exit 1; }
fi
if [[ $scenario == tcp || $scenario == tcp-newconn ]]; then
    [[ -e /usr/lib/nginx/modules/ngx_stream_module.so ]] ||
        { echo "skipped: nginx's stream module (libnginx-mod-stream) not installed"; exit 0; }
    cat >>"$dir/switchyard.toml" <<EOF
[[services]]
name = "l4"
listen = "127.0.0.1:19082"
[[services.endpoints]]
address = "127.0.0.1:19081"
EOF
    stream="stream { server { listen 127.0.0.1:19082; proxy_pass 127.0.0.1:19081; } }"
    modules="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
fi
cat > "$dir/nginx-proxy.conf" <<EOF
${modules:-}
worker_processes 1; master_process off; pid $dir/proxy.pid; error_log $dir/proxy.err warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 10000000; proxy_http_version 1.1;
  proxy_set_header Connection ""; proxy_set_header Host \$host;
  ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
  upstream app { server 127.0.0.1:19081; keepalive 64; }
  server { listen 127.0.0.1:19080; listen 127.0.0.1:19443 ssl http2; server_name app.test;
    location / { proxy_pass http://app; } } }
${stream:-}
EOF

cat "$dir/cert.pem" "$dir/key.pem" >"$dir/haproxy.pem"
cat > "$dir/haproxy.cfg" <<EOF
global
    nbthread 1
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse safe
frontend app
    bind 127.0.0.1:19080
    bind 127.0.0.1:19443 ssl crt $dir/haproxy.pem alpn h2,http/1.1
    default_backend app
backend app
    server b1 127.0.0.1:19081
listen l4
    mode tcp
    bind 127.0.0.1:19082
    server b1 127.0.0.1:19081
EOF
proxies=(switchyard nginx)
command -v haproxy >/dev/null && proxies+=(haproxy)
[[ -n ${ONLY:-} ]] && read -r -a proxies <<<"$ONLY"
if [[ $scenario == h3 ]]; then
    echo "h3: Switchyard only (Debian's nginx 1.22 and HAProxy 2.6 serve no HTTP/3)"
    proxies=(switchyard)
fi
# proxy_cmd NAME: sets $cmd to the command that runs that proxy in the foreground.
proxy_cmd() {
    case $1 in
        switchyard) cmd=("$bin" run --config "$dir/switchyard.toml") ;;
        nginx) cmd=(nginx -p "$dir/" -c "$dir/nginx-proxy.conf" -g 'daemon off;') ;;
        haproxy) cmd=(haproxy -db -f "$dir/haproxy.cfg") ;;
    esac
}

load() { # [connections]
    local conns=${1:-4}
    case $scenario in
        h1) "${niced[@]}" h2load --h1 -n "$requests" -c "$conns" -H ':authority: app.test' http://127.0.0.1:19080/ ;;
        h1-tls) "${niced[@]}" h2load --h1 -n "$requests" -c "$conns" -H ':authority: app.test' https://127.0.0.1:19443/ ;;
        h2-tls) "${niced[@]}" h2load -n "$requests" -c "$conns" -m 10 -H ':authority: app.test' https://127.0.0.1:19443/ ;;
        h3) "${niced[@]}" "$h3load" -n "$requests" -c "$conns" -m 10 --authority app.test --insecure https://127.0.0.1:19443/ ;;
        bulk) "${niced[@]}" h2load --h1 -n "$requests" -c "$conns" -H ':authority: app.test' http://127.0.0.1:19080/1m ;;
        tcp) "${niced[@]}" h2load --h1 -n "$requests" -c "$conns" -H ':authority: app.test' http://127.0.0.1:19082/ ;;
        tcp-newconn) wrk -t1 -c8 -d3s -H 'Host: app.test' -H 'Connection: close' http://127.0.0.1:19082/ ;;
        *) echo "unknown scenario $scenario"; exit 2 ;;
    esac | grep -E '^requests:' || true
}

warm_up() { # 50 requests before the count starts, over HTTP/3 too in the h3 scenario
    h2load --h1 -n 50 -c 1 -H ':authority: app.test' http://127.0.0.1:19080/ >/dev/null
    if [[ $scenario == h3 ]]; then
        "$h3load" -n 50 -c 1 --authority app.test --insecure https://127.0.0.1:19443/ >/dev/null
    fi
}

measure() { # name, command...
    local name=$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$dir/$name.out" "$@" >"$dir/$name.log" 2>&1 &
    local pid=$!
    wait_port 19080
    warm_up
    callgrind_control -z "$pid" >/dev/null   # count only what follows: the load
    load "${CONNS:-4}"
    # TERM, not INT: a background job of a script ignores SIGINT, and HAProxy keeps that.
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    local total; total=$(awk '/^summary:|^totals:/ {print $2; exit}' "$dir/$name.out")
    echo "$name: $total instructions in all; $((total / requests)) per request ($requests requests, plus shutdown)"
}

cpu_measure() { # name, command...
    local name=$1; shift
    taskset -c "${proxy_cpus:-0}" "$@" >"$dir/$name.log" 2>&1 &
    local pid=$! ut0 st0 ut st
    wait_port 19080
    warm_up
    read -r ut0 st0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    load 64 >/dev/null
    read -r ut st < <(awk '{print $14, $15}' "/proc/$pid/stat")
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    local ns=$((1000000000 / $(getconf CLK_TCK)))
    local cpu_ns=$(((ut - ut0 + st - st0) * ns))
    echo "$name: user $(((ut - ut0) * ns / requests)) ns + kernel $(((st - st0) * ns / requests)) ns per request; $((requests * 1000000000 / (cpu_ns > 0 ? cpu_ns : 1))) requests per CPU-second"
}

syscall_measure() { # name, command...
    local name=$1; shift
    strace -f -c -o "$dir/$name.strace" "$@" >"$dir/$name.log" 2>&1 &
    local pid=$!
    wait_port 19080
    load 64 >/dev/null
    kill -TERM "$(pgrep -P "$pid")" 2>/dev/null || true # the proxy; strace then writes its table
    wait "$pid" 2>/dev/null || true
    local n=$requests per=request
    if [[ $scenario == tcp-newconn ]]; then
        n=$(awk '$NF == "socket" {print $4}' "$dir/$name.strace") per=connection
    fi
    echo "$name: system calls per $per (those made at least once per 100; $n in all)"
    awk -v n="$n" '$4 ~ /^[0-9]+$/ && $4 / n >= 0.01 { printf "  %-12s %6.2f\n", $NF, $4 / n }' \
        "$dir/$name.strace"
}

wait_port 19081
if [[ $mode == syscalls ]]; then
    for name in "${proxies[@]}"; do
        proxy_cmd "$name"
        syscall_measure "$name" "${cmd[@]}"
    done
    exit 0
fi
if [[ $mode == cpu ]]; then
    for round in 1 2 3; do
        echo "round $round"
        for name in "${proxies[@]}"; do
            proxy_cmd "$name"
            cpu_measure "$name" "${cmd[@]}"
        done
    done
    exit 0
fi
for name in "${proxies[@]}"; do
    proxy_cmd "$name"
    measure "$name" "${cmd[@]}"
done
echo "top Switchyard functions (inclusive):"
callgrind_annotate --inclusive=yes "$dir/switchyard.out" 2>/dev/null | sed -n '1,60p' | grep -E '^ *[0-9,]+ ' | head -40

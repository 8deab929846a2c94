# shellcheck shell=bash
# Set-up shared by the scripts that run Switchyard in front of an nginx backend on loopback
# (instr.sh, pgo.sh): a scratch folder whose processes stop with the script, a certificate for
# app.test, the backend, and a Switchyard config that routes app.test to it.

# bench_dir PREFIX: sets $dir (a new folder under /tmp) and $pids (processes to stop); both
# are cleaned up when the script exits.
bench_dir() {
    dir=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$dir" # nginx's workers run as another user
    pids=()
    trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"' EXIT
}

# test_cert: $dir/cert.pem and $dir/key.pem, ECDSA P-256, for app.test.
test_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=app.test -addext subjectAltName=DNS:app.test \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
}

# start_backend PORT: nginx on 127.0.0.1:PORT, keep-alive, answering 200 with a short body,
# and a 1 MiB body at /1m.
start_backend() {
    head -c 1048576 /dev/zero >"$dir/1m.bin"
    cat >"$dir/backend.conf" <<EOF
worker_processes 1; pid $dir/backend.pid; error_log $dir/backend.err warn;
events { worker_connections 1024; }
http { access_log off; keepalive_requests 10000000;
  server { listen 127.0.0.1:$1; location = /1m { alias $dir/1m.bin; }
    location / { return 200 "hello from the backend\n"; } } }
EOF
    nginx -p "$dir/" -c "$dir/backend.conf" -g 'daemon off;' &
    pids+=($!)
}

# switchyard_config ADMIN_PORT HTTP_PORT HTTPS_PORT BACKEND_PORT: $dir/switchyard.toml with one
# worker, no access log, a plain and a TLS listener, and app.test routed to the backend.
switchyard_config() {
    cat >"$dir/switchyard.toml" <<EOF
[admin]
listen = "127.0.0.1:$1"
[runtime]
workers = 1
[http]
access_log = "off"
[[listeners]]
name = "http"
listen = "127.0.0.1:$2"
[[listeners]]
name = "https"
listen = "127.0.0.1:$3"
tls = true
[[certificates]]
cert = "$dir/cert.pem"
key = "$dir/key.pem"
[[services]]
name = "app"
[[services.endpoints]]
address = "127.0.0.1:$4"
[[routes]]
host = "app.test"
service = "app"
EOF
}

# wait_port PORT: waits up to 30 s for a listener on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 300); do
        (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
        sleep 0.1
    done
    echo "port $1 never opened"
    exit 1
}

# shellcheck shell=bash
# Switchyard's column for ../shared/bench/peers.sh (see its README).
SCENARIOS="h1 h1-tls h2-tls tls-newconn tcp tcp-newconn tcp-bulk h1-bulk"

SWITCHYARD_BIN=${SWITCHYARD_BIN:-${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}/release/switchyard}
proxy_available() { [[ -x "$SWITCHYARD_BIN" ]]; }
proxy_version()   { "$SWITCHYARD_BIN" --version 2>/dev/null | head -1 | awk '{print $2}'; }

proxy_start() {
    local b endpoints=""
    for b in $BACKENDS; do endpoints+="[[services.endpoints]]"$'\n'"address = \"$b\""$'\n'; done
    # Equivalence rules: no access log, keep-alive to the backends (pooled by default),
    # bodies streamed, TLS 1.2+1.3 with default ciphers. Unknown hosts get 404 (no default).
    cat > "$RUN_DIR/switchyard.toml" <<CONF
[admin]
listen = "$BIND:18990"

[runtime]
workers = $WORKERS
drain_timeout = "1s"

[http]
access_log = "off"

[[listeners]]
name = "http"
listen = "$BIND:$HTTP_PORT"

[[listeners]]
name = "https"
listen = "$BIND:$HTTPS_PORT"
tls = true

[[certificates]]
cert = "$CERT"
key = "$KEY"
hosts = ["$APP_HOST"]

[[services]]
name = "bench-tcp"
listen = "$BIND:$TCP_PORT"
scheduler = "rr"
$endpoints
[[services]]
name = "bench-http"
scheduler = "rr"
$endpoints
[[routes]]
host = "$APP_HOST"
service = "bench-http"
CONF
    RUST_LOG=warn exec "$SWITCHYARD_BIN" run --config "$RUN_DIR/switchyard.toml"
}

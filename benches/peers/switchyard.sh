# shellcheck shell=bash
# Switchyard's column for ../shared/bench/peers.sh (see its README).
# L4 only for now: the HTTP/TLS router is not built yet, so h1/h1-tls/h2-tls/tls-newconn/h1-bulk
# show as "—".
SCENARIOS="tcp tcp-newconn tcp-bulk"

SWITCHYARD_BIN=${SWITCHYARD_BIN:-${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}/release/switchyard}
proxy_available() { [[ -x "$SWITCHYARD_BIN" ]]; }
proxy_version()   { "$SWITCHYARD_BIN" --version 2>/dev/null | head -1 | awk '{print $2}'; }

proxy_start() {
    local b
    {
        echo "[admin]"
        echo "listen = \"$BIND:18990\""
        echo "[runtime]"
        echo "workers = $WORKERS"
        echo "drain_timeout = \"1s\""
        echo "[[services]]"
        echo "name = \"bench-tcp\""
        echo "listen = \"$BIND:$TCP_PORT\""
        echo "scheduler = \"rr\""
        for b in $BACKENDS; do
            echo "[[services.endpoints]]"
            echo "address = \"$b\""
        done
    } > "$RUN_DIR/switchyard.toml"
    # No access log exists at L4; keep the log quiet like the peers.
    RUST_LOG=warn exec "$SWITCHYARD_BIN" run --config "$RUN_DIR/switchyard.toml"
}

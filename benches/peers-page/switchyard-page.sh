# shellcheck shell=bash
# Switchyard with its admin page open, for benches/dashboard.sh: the same column as
# benches/peers/switchyard.sh plus a poller standing in for a browser on the dashboard. It
# fetches /debug/overview every second (the page polls every 2 s: twice its rate) and the page
# itself every 30 s, pinned to the load generator's core like a browser on another machine
# would be. Kept out of benches/peers/ so the default peers.sh matrix does not grow a column.
# shellcheck source=../peers/switchyard.sh
source "$(dirname "${BASH_SOURCE[0]}")/../peers/switchyard.sh"
SCENARIOS="h1 h1-tls"

eval "switchyard_$(declare -f proxy_start)"

proxy_start() {
    (
        admin="http://$BIND:18990"
        deadline=$((SECONDS + 1800)) misses=0 n=0
        while ((SECONDS < deadline && misses < 10)); do
            if curl -fsS -o /dev/null --max-time 2 "$admin/debug/overview"; then misses=0; else misses=$((misses + 1)); fi
            if ((n++ % 30 == 0)); then curl -fsS -o /dev/null --max-time 2 "$admin/" || true; fi
            sleep 1
        done
    ) &
    taskset -cp "$LOAD_CPU" $! >/dev/null
    switchyard_proxy_start
}

#!/usr/bin/env bash
# The HTTP/1.1 peer figure with and without the admin page open (issue 21: the page may cost
# at most 2 %). Runs ../shared/bench/peers.sh with two columns, interleaved: `switchyard`
# (benches/peers/switchyard.sh) and `switchyard-page` (benches/peers-page/switchyard-page.sh,
# the same with a poller fetching /debug/overview every second), then prints the medians.
#
#   cargo build --release && benches/dashboard.sh [reps=5] [seconds=10] [scenarios=h1]
#
# Needs what peers.sh needs (`peers.sh install`: wrk, curl). Bounded: reps x 2 columns x
# (seconds + warm-up) of load, on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-5} secs=${2:-10} scenarios=${3:-h1}
out=${BENCH_STATE:-/var/tmp/peers-bench}/runs/dashboard-$(date +%Y%m%d-%H%M%S)
PEERS_PLUGINS="$PWD/benches/peers $PWD/benches/peers-page" \
    ../shared/bench/peers.sh run -p switchyard,switchyard-page -s "$scenarios" -r "$reps" -d "$secs" -o "$out"
python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for s in sorted({r["scenario"] for r in rows}):
    med = {}
    for p in ("switchyard", "switchyard-page"):
        rps = [r["rps"] for r in rows if r["scenario"] == s and r["proxy"] == p and r["status"] == "ok"]
        med[p] = statistics.median(rps) if rps else None
    if None in med.values():
        print(f"{s}: missing runs {med}")
        continue
    change = (med["switchyard-page"] / med["switchyard"] - 1) * 100
    print(f"{s}: {med['switchyard']:.0f} req/s closed, {med['switchyard-page']:.0f} req/s with the page open: {change:+.1f} %")
PY

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
    med, eff = {}, {}
    for p in ("switchyard", "switchyard-page"):
        ok = [r for r in rows if r["scenario"] == s and r["proxy"] == p and r["status"] == "ok"]
        med[p] = statistics.median([r["rps"] for r in ok]) if ok else None
        # Requests per second of proxy CPU: what a busy shared machine does not distort.
        per_cpu = [r["rps"] / (r["proxy_cpu_pct"] / 100) for r in ok if r.get("proxy_cpu_pct")]
        eff[p] = statistics.median(per_cpu) if per_cpu else None
    if None in med.values() or None in eff.values():
        print(f"{s}: missing runs {med}")
        continue
    change = (med["switchyard-page"] / med["switchyard"] - 1) * 100
    print(f"{s}: {med['switchyard']:.0f} req/s closed, {med['switchyard-page']:.0f} req/s with the page open: {change:+.1f} %")
    change = (eff["switchyard-page"] / eff["switchyard"] - 1) * 100
    print(f"{s}: {eff['switchyard']:.0f} req/CPU-s closed, {eff['switchyard-page']:.0f} req/CPU-s with the page open: {change:+.1f} %")
PY

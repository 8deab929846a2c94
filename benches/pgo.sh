#!/usr/bin/env bash
# Builds Switchyard with profile-guided optimisation (PGO): an instrumented build serves a
# short training load on loopback, and the release build is then compiled with the profile it
# wrote, so LLVM lays out and inlines the hot request path the way the load used it.
#
#   benches/pgo.sh            -> prints the path of the optimised binary
#
# Needs: llvm-profdata of rustc's LLVM major version (`rustc -vV`; Debian: llvm-NN, or rustup's
# llvm-tools component), nginx (the training backend), wrk and h2load (the load), openssl, curl.
# Two release builds with their own target directories under $CARGO_TARGET_DIR (default
# /var/tmp/switchyard-target): pgo-gen/ (instrumented) and pgo-use/ (the result), about 9 and
# 7 minutes on 2 cores; a second run reuses the instrumented build.
#
# The training load is every kind of traffic the proxy carries, a few seconds each, through
# the same listeners and routes as a plain deployment: HTTP/1.1 keep-alive, HTTP/1.1 and
# HTTP/2 over TLS, a full TLS handshake per request, 1 MiB responses, and an L4 TCP service.
# The profile only steers optimisation: behaviour is the same as `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${CARGO_TARGET_DIR:-/var/tmp/switchyard-target}
llvm_major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
profdata=""
for candidate in "llvm-profdata-$llvm_major" \
    "$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/llvm-profdata"; do
    command -v "$candidate" >/dev/null && { profdata=$candidate; break; }
done
[[ -n $profdata ]] || {
    echo "no llvm-profdata for LLVM $llvm_major: apt-get install llvm-$llvm_major" \
        "(or rustup component add llvm-tools)"
    exit 1
}
for tool in nginx wrk h2load openssl curl; do
    command -v "$tool" >/dev/null || { echo "$tool not installed"; exit 1; }
done

# shellcheck source=benches/lib.sh
source benches/lib.sh
bench_dir sy-pgo

echo "1/5 instrumented build (log: $dir/gen.log)"
# Fixed flags, so that a second run reuses the first one's build; the profile's path is given
# at run time (LLVM_PROFILE_FILE).
RUSTFLAGS="-Cprofile-generate=$base/pgo-gen/profiles" cargo build --release --locked --bin switchyard \
    --target-dir "$base/pgo-gen" >"$dir/gen.log" 2>&1 || { tail -20 "$dir/gen.log"; exit 1; }

echo "2/5 training load"
test_cert
start_backend 19181
switchyard_config 19190 19180 19543 19181
cat >>"$dir/switchyard.toml" <<EOF
[[services]]
name = "tcp"
listen = "127.0.0.1:19182"
[[services.endpoints]]
address = "127.0.0.1:19181"
EOF
wait_port 19181
LLVM_PROFILE_FILE="$dir/raw/%m_%p.profraw" "$base/pgo-gen/release/switchyard" run --config "$dir/switchyard.toml" >"$dir/switchyard.log" 2>&1 &
sy=$!
pids+=($sy)
wait_port 19180
wait_port 19182
echo 'function wrk.resolve(host, service) wrk.addrs = wrk.lookup("127.0.0.1", service) end' \
    >"$dir/resolve.lua"
# A profile of error answers would optimise the wrong path, so a step with any failed request
# stops the build (wrk: non-2xx answers or socket errors; h2load: 4xx or 5xx).
train() {
    echo "   $1"
    shift
    timeout -k 5 40 "$@" >"$dir/step.log" 2>&1 || { cat "$dir/step.log"; echo "load failed"; exit 1; }
    cat "$dir/step.log" >>"$dir/load.log"
    if grep -Eq 'Non-2xx|Socket errors| [1-9][0-9]* [45]xx' "$dir/step.log"; then
        cat "$dir/step.log"
        echo "training requests failed"
        exit 1
    fi
}
w="wrk -t1 -d4s -s $dir/resolve.lua"
train "http/1.1" $w -c64 http://app.test:19180/
train "http/1.1, 1 MiB bodies" $w -c8 http://app.test:19180/1m
train "http/1.1 over tls" $w -c64 https://app.test:19543/
train "tls handshake per request" $w -c64 -H "Connection: close" https://app.test:19543/
train "http/2 over tls" h2load -c64 -m10 -D 4 --connect-to=127.0.0.1:19543 https://app.test/
train "l4 tcp" $w -c64 http://app.test:19182/
kill -INT "$sy"
wait "$sy" 2>/dev/null || true
ls "$dir"/raw/*.profraw >/dev/null 2>&1 || { echo "no profile written"; tail "$dir/switchyard.log"; exit 1; }

echo "3/5 merge"
"$profdata" merge -o "$dir/merged.profdata" "$dir/raw"
# Named by content: cargo does not watch the profile, but a new name changes RUSTFLAGS and so
# rebuilds every crate with it; the same profile again reuses the last build.
mkdir -p "$base/pgo-use"
profile="$base/pgo-use/$(sha256sum "$dir/merged.profdata" | cut -c1-16).profdata"
cp "$dir/merged.profdata" "$profile"
find "$base/pgo-use" -maxdepth 1 -name '*.profdata' ! -path "$profile" -delete   # older ones

echo "4/5 optimised build (log: $dir/use.log)"
RUSTFLAGS="-Cprofile-use=$profile" cargo build --release --locked --bin switchyard \
    --target-dir "$base/pgo-use" >"$dir/use.log" 2>&1 || { tail -20 "$dir/use.log"; exit 1; }

echo "5/5 check: the optimised binary serves the training config"
"$base/pgo-use/release/switchyard" run --config "$dir/switchyard.toml" >"$dir/check.log" 2>&1 &
sy=$!
pids+=($sy)
wait_port 19180
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: app.test' http://127.0.0.1:19180/)
kill -INT "$sy"
wait "$sy" 2>/dev/null || true
[[ $code == 200 ]] || { echo "check failed: http status $code"; tail "$dir/check.log"; exit 1; }
echo "$base/pgo-use/release/switchyard"

#!/usr/bin/env bash
# Runs tests/ipvs.rs against real kernel IPVS inside the throwaway VM of
# ../shared/tools/ipvs-vm (this machine's kernel has no IPVS), in two boots:
#   1. IPVS present: programming, diffs, drain, adoption, NAT data path, resync timing;
#   2. --no-ipvs:    `auto` falls back to user space and the same client test passes.
# Skips (exit 0, with the reason) when the VM cannot run here; fails when a test fails.
# The inner test binary's lines are prefixed with "[vm] " so that a parser of the outer
# log (.ci/run) does not take them for its own; one closing "test result:" line sums the
# VM runs.
#   tests/ipvs-vm.sh            run both boots
#   tests/ipvs-vm.sh --capture  also write the kernel replies to src/ipvs/testdata/*.hex
# Env: IPVS_VM_BOOTS ("ipvs no-ipvs"), IPVS_VM_TESTS (test name filter),
#      IPVS_BENCH_SERVICES (1000: services of the resync timing test; 10000 takes minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
VM=${IPVS_VM:-../shared/tools/ipvs-vm/run-in-vm.sh}
[ -x "$VM" ] || VM=/work/shared/tools/ipvs-vm/run-in-vm.sh
capture=0
[ "${1:-}" = "--capture" ] && capture=1

# A boot that cannot run is recorded as skipped (see tests/skip/mod.rs), not passed.
record_skip() { [ -n "${SWITCHYARD_SKIP_LOG:-}" ] && printf 'boot\t%s\n' "$*" >>"$SWITCHYARD_SKIP_LOG"; return 0; }
skip() {
    echo "ipvs-vm: SKIP: $*"
    for boot in ${IPVS_VM_BOOTS:-ipvs no-ipvs}; do record_skip "ipvs-vm boot $boot: $*"; done
    exit 0
}
[ -x "$VM" ] || skip "no VM runner at ../shared/tools/ipvs-vm/run-in-vm.sh"
"$VM" --setup >/tmp/ipvs-vm-setup.$$.log 2>&1 || {
    tail -5 /tmp/ipvs-vm-setup.$$.log
    rm -f /tmp/ipvs-vm-setup.$$.log
    skip "the VM cannot be set up here (qemu or kernel package missing)"
}
rm -f /tmp/ipvs-vm-setup.$$.log

bin=$(cargo test --test ipvs --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))/\1/p' | tail -1)
[ -n "$bin" ] && [ -x "$bin" ] || { echo "ipvs-vm: cannot build the ipvs test binary"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Debug info is most of the binary's size and the VM carries files in RAM.
strip -o "$work/ipvs" "$bin" 2>/dev/null || cp "$bin" "$work/ipvs"

# Logs stay for a look after a failure.
logs=${CARGO_TARGET_DIR:-target}/ipvs-vm
mkdir -p "$logs"
passed=0 failed=0 status=0
run() { # run NAME [VM OPTIONS...]
    local name=$1; shift
    local log="$logs/$name.log" rc
    echo "== ipvs-vm: boot $name"
    local t0=$SECONDS
    "$VM" --timeout 600 "$@" -e IN_IPVS_VM=1 -e RUST_BACKTRACE=1 -f "$work/ipvs:/t/ipvs" \
        -e IPVS_BENCH_SERVICES="${IPVS_BENCH_SERVICES:-1000}" \
        -- /t/ipvs --test-threads=1 --nocapture ${IPVS_VM_TESTS:-} >"$log" 2>&1
    rc=$?
    sed 's/^/[vm] /' "$log" | grep -v '^\[vm\] FIXTURE '
    echo "== ipvs-vm: boot $name: exit $rc in $((SECONDS - t0)) s"
    if [ "$rc" = 125 ] && ! grep -q '^test result:' "$log"; then
        echo "ipvs-vm: SKIP boot $name: the VM harness failed (exit 125), not a test result"
        record_skip "ipvs-vm boot $name: the VM harness failed (exit 125)"
        return
    fi
    local line
    line=$(grep '^test result:' "$log" | tail -1)
    passed=$((passed + $(awk '{print $4}' <<<"${line:-x 0 0 0 0 0}")))
    # Tests that skipped inside the VM were counted as passed there: record them.
    # (With --nocapture a test's output can follow its "test name ... " on the same line.)
    grep -o 'SKIP [a-z0-9_]*: .*' "$log" | sed 's/^SKIP \([^:]*\): /test\t[vm] \1\t/' | while IFS= read -r l; do
        [ -n "${SWITCHYARD_SKIP_LOG:-}" ] && printf '%s\n' "$l" >>"$SWITCHYARD_SKIP_LOG"
    done
    failed=$((failed + $(awk '{print $6}' <<<"${line:-x 0 0 0 0 0}")))
    [ "$rc" = 0 ] || status=1
    if [ "$capture" = 1 ]; then
        mkdir -p src/ipvs/testdata
        grep '^FIXTURE ' "$log" | tr -d '\r' | while read -r _ fname hex; do
            echo "$hex" >"src/ipvs/testdata/$fname.hex"
            echo "ipvs-vm: wrote src/ipvs/testdata/$fname.hex"
        done
    fi
}
boots=${IPVS_VM_BOOTS:-ipvs no-ipvs}
[[ " $boots " == *" ipvs "* ]] && run ipvs
[[ " $boots " == *" no-ipvs "* ]] && run no-ipvs --no-ipvs
# One line in cargo's format for the outer summary (the inner ones are prefixed).
echo "test result: $([ $status = 0 ] && echo ok || echo FAILED). $passed passed; $failed failed; 0 ignored; 0 measured; 0 filtered out (ipvs VM)"
exit $status

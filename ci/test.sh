#!/usr/bin/env bash
# The whole test suite: formatting, lints, host tests (unit, property and
# KVM integration tests that boot real guests), guest lints.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -e /dev/kvm ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "ci: /dev/kvm is missing: the KVM tests cannot run, and CI must run them" >&2
        exit 1
    fi
    echo "ci: warning: /dev/kvm is missing; the KVM tests will fail" >&2
fi

# Each step's heading carries the minutes and seconds since the start, so
# a log shows where the run's time goes (it must stay under 20 minutes).
step() { echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }

bash ci/setup.sh
# After setup.sh added the guest target: removes it and proves the README's
# first command installs it again.
bash ci/first-run.sh

step "cargo fmt --check (host, guest)"
cargo fmt --all --check
(cd guest && cargo fmt --all --check)

step "cargo clippy -D warnings (host, guest)"
cargo clippy --all-targets --locked -- -D warnings
(cd guest && cargo clippy --release --locked -- -D warnings)

step "cargo test (host: unit, property, KVM integration)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The process tests again with the guest kernel keeping the page tables
# (pmap=guest): both paths must pass the same tests.
step "process tests under pmap=guest"
VKERNEL_TEST_PMAP=guest cargo test --release --locked --no-fail-fast -p vkernel \
    --test processes --test c_programs --test bad_programs --test gdb --test procfs \
    --test files --test busybox --test poll --test signals --test mmap --test locks --test threads \
    --test runtimes --test terminal --test hostfs --test timers --test sockets --test hardening --test limits \
    2>&1 | tee -a "$log"
guest_status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && status=$guest_status

# The same on hardware-style KVM: QEMU emulating an AMD CPU with SVM, with
# Debian's kernel and kvm_amd inside (ci/qemu-kvm.sh): with nested paging,
# every command and integration test it can run; with shadow paging
# (kvm_amd npt=0), the commands and the integration tests but the fuzz
# binary (the command step runs the fuzzer once);
# on a CPU without XSAVE (qemu64, shadow paging too), the commands.
# QEMU_KVM=0 skips them (never under CI=true).
qdir=$(mktemp -d)
trap 'rm -rf "$log" "$qdir"' EXIT
qemu_kvm() { # LOG TITLE ARGS...
    local out=$qdir/$1 title=$2
    shift 2
    step "KVM-SVM under QEMU: $title"
    bash ci/qemu-kvm.sh "$@" 2>&1 | tee "$out"
    local s=${PIPESTATUS[0]}
    [ "$status" -ne 0 ] || status=$s
}
if [ "${QEMU_KVM:-1}" = 0 ] && [ "${CI:-}" != "true" ]; then
    echo "== KVM-SVM under QEMU: skipped (QEMU_KVM=0)"
else
    # The 6,000-fork loop (host RSS stays bounded) runs on the host only:
    # under emulation it outgrew its 60 s limit (pmap=guest took longer).
    QEMU_KVM_TEST_ARGS="--skip a_long_fork_loop_keeps_host_memory_bounded" \
        qemu_kvm npt1 "EPYC-Rome, kvm_amd npt=1 (nested paging)" --npt 1
    # The bench smoke test ran in the first run already (2 minutes here).
    QEMU_KVM_BENCH=0 QEMU_KVM_TEST_ARGS="--skip a_long_fork_loop_keeps_host_memory_bounded" \
        qemu_kvm npt0 "EPYC-Rome, kvm_amd npt=0 (shadow paging)" --npt 0 --tests bad_programs,boot,hypercall_suite,processes
    QEMU_KVM_BENCH=0 QEMU_KVM_CPU=qemu64 qemu_kvm qemu64 "qemu64 (no XSAVE, no nested paging)" --npt 1 --tests none
fi
set -e
step "done; the count of every test binary and QEMU run:"
# One closing line over every test binary (cargo prints one per binary,
# and the last of them may be a crate without tests) and the QEMU runs
# (the last `qemu-kvm CPU npt=N: N passed, N failed` line of each).
{
    awk '/^test result:/ { print $4, $6 }' "$log"
    for q in "$qdir"/*; do
        [ -e "$q" ] || continue
        grep -E '^qemu-kvm [^ ]+ npt=[01]: [0-9]+ passed, [0-9]+ failed$' "$q" | tail -n 1 |
            awk '{ print $4, $6 }'
    done
} | awk '{ p += $1; f += $2 } END { printf "%d passed, %d failed\n", p, f }'
exit "$status"

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

bash ci/setup.sh

echo "== cargo fmt --check (host, guest)"
cargo fmt --all --check
(cd guest && cargo fmt --all --check)

echo "== cargo clippy -D warnings (host, guest)"
cargo clippy --all-targets --locked -- -D warnings
(cd guest && cargo clippy --release --locked -- -D warnings)

echo "== cargo test (host: unit, property, KVM integration)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --release --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The process tests again with the guest kernel keeping the page tables
# (pmap=guest): both paths must pass the same tests.
echo "== process tests under pmap=guest"
VKERNEL_TEST_PMAP=guest cargo test --release --locked -p vkernel \
    --test processes --test c_programs --test bad_programs --test gdb 2>&1 | tee -a "$log"
guest_status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && status=$guest_status

# The same on hardware-style KVM: QEMU emulating an AMD CPU with SVM, with
# Debian's kernel and kvm_amd inside (ci/qemu-kvm.sh): with nested paging
# every command and integration test it can run, with shadow paging
# (kvm_amd npt=0) the commands and the hypercall and process tests.
# QEMU_KVM=0 skips both (never under CI=true).
qlog=$(mktemp)
trap 'rm -f "$log" "$qlog"' EXIT
if [ "${QEMU_KVM:-1}" = 0 ] && [ "${CI:-}" != "true" ]; then
    echo "== KVM-SVM under QEMU: skipped (QEMU_KVM=0)"
else
    echo "== KVM-SVM under QEMU, kvm_amd npt=1 (nested paging)"
    bash ci/qemu-kvm.sh --npt 1 2>&1 | tee -a "$qlog"
    q_status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] && status=$q_status
    echo "== KVM-SVM under QEMU, kvm_amd npt=0 (shadow paging)"
    bash ci/qemu-kvm.sh --npt 0 --tests hypercall_suite,processes 2>&1 | tee -a "$qlog"
    q_status=${PIPESTATUS[0]}
    [ "$status" -eq 0 ] && status=$q_status
fi
set -e
# One closing line over every test binary (cargo prints one per binary,
# and the last of them may be a crate without tests) and both QEMU runs
# (the last `qemu-kvm npt=N: N passed, N failed` line of each).
{
    awk '/^test result:/ { print "cargo", $4, $6 }' "$log"
    for npt in 1 0; do
        grep -E "^qemu-kvm npt=$npt: [0-9]+ passed, [0-9]+ failed$" "$qlog" | tail -n 1 |
            awk '{ print "qemu", $3, $5 }'
    done
} | awk '{ p += $2; f += $3 } END { printf "%d passed, %d failed\n", p, f }'
exit "$status"

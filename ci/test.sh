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
# After setup.sh added the guest target: removes it and proves the README's
# first command installs it again.
bash ci/first-run.sh

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
cargo test --release --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The process tests again with the guest kernel keeping the page tables
# (pmap=guest): both paths must pass the same tests.
echo "== process tests under pmap=guest"
VKERNEL_TEST_PMAP=guest cargo test --release --locked --no-fail-fast -p vkernel \
    --test processes --test c_programs --test bad_programs --test gdb --test procfs \
    --test files --test busybox --test poll 2>&1 | tee -a "$log"
guest_status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] && status=$guest_status
set -e
# One closing line over every test binary (cargo prints one per binary,
# and the last of them may be a crate without tests).
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"

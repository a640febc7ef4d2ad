#!/usr/bin/env bash
# The README's first command on a fresh machine whose rustup has the pinned
# toolchain but not the guest target: `cargo run --release` must install
# the target (vkernel/build.rs does, through rustup), say so, and boot.
# test.sh runs this right after setup.sh has added the target, so removing
# it here is what makes the run a proof; every later build then uses the
# target build.rs put back. It removes a target from the toolchain: run it
# only where no other build shares that toolchain (CI runs alone).
set -euo pipefail
cd "$(dirname "$0")/.."

guest_target=x86_64-unknown-none
echo "== first run (cargo run --release) on a toolchain without $guest_target"
rustup target remove "$guest_target"
if rustup target list --installed | grep -qx "$guest_target"; then
    echo "ci: could not remove $guest_target before the first run" >&2
    exit 1
fi
rm -rf target/guest    # the guest part is built from scratch,
touch guest/Cargo.toml # and build.rs reruns

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
cargo run --release --locked 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
    echo "ci: cargo run --release failed (status $status) on a toolchain without $guest_target" >&2
    exit 1
fi
if ! grep -q "lacked the $guest_target target .*installed it with .rustup target add" "$out"; then
    echo "ci: build.rs did not say that it installed $guest_target" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx "$guest_target"; then
    echo "ci: $guest_target is still missing after the first run" >&2
    exit 1
fi
echo "ci: first run installed $guest_target and booted"

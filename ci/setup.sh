#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh machine: the pinned
# toolchain with the guest target (rust-toolchain.toml), and the Debian
# packages the tests use (gdb for the debugger tests, gcc for the static C
# programs, cpio for images, busybox-static for the busybox tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# rustup installs the toolchain and target pinned in rust-toolchain.toml.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add x86_64-unknown-none >/dev/null

missing=()
for tool in gdb:gdb gcc:gcc cpio:cpio; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ -e /usr/lib/x86_64-linux-gnu/libc.a ]; then :; else missing+=(libc6-dev); fi
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then :; else missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

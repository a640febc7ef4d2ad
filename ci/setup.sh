#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh machine: the pinned
# toolchain with the guest target (rust-toolchain.toml), and the Debian
# packages the tests use (gdb for the debugger tests, gcc for the static C
# programs, musl-gcc for a musl one, cpio for images, busybox-static for
# the busybox tests, golang-go for the Go runtime test in tests/runtimes.rs,
# socat for the Unix socket test in tests/sockets.rs, tmux and script for
# the pseudo-terminal tests in tests/pty.rs, curl and wget for the TCP test).
#
# `ci/setup.sh qemu DIR` installs what ci/qemu-kvm.sh needs instead: QEMU
# (qemu-system-x86), busybox-static, cpio and kmod (modprobe, depmod), and
# unpacks Debian's cloud kernel package (linux-image-cloud-amd64's current
# version) into DIR/<package>/, with its modules.dep made by depmod; it
# prints that directory. The kernel is unpacked, not installed: the host's
# /boot and /lib/modules are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_updated=false
apt_install() {
    [ $# -gt 0 ] || return 0
    echo "ci: installing $*" >&2
    if [ "$apt_updated" = false ]; then
        apt-get update -qq >&2
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ "${1:-}" = qemu ]; then
    dir=${2:?usage: ci/setup.sh qemu DIR}
    missing=()
    for p in qemu-system-x86 busybox-static cpio kmod; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
    done
    apt_install "${missing[@]}"
    # The versioned package the meta-package points at today.
    pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }'; }
    name=$(pkg)
    if [ -z "$name" ] && [ "$apt_updated" = false ]; then
        apt-get update -qq >&2
        apt_updated=true
        name=$(pkg)
    fi
    [ -n "$name" ] || { echo "ci: no linux-image-cloud-amd64 in the package lists" >&2; exit 1; }
    if [ ! -e "$dir/$name/.unpacked" ]; then
        echo "ci: unpacking $name into $dir/$name" >&2
        rm -rf "${dir:?}/$name"
        mkdir -p "$dir/$name"
        (cd "$dir" && apt-get download -o APT::Sandbox::User=root "$name" >&2)
        dpkg-deb -x "$dir/${name}_"*.deb "$dir/$name"
        rm -f "$dir/${name}_"*.deb
        kver=$(ls "$dir/$name/lib/modules")
        PATH=$PATH:/sbin:/usr/sbin depmod -b "$dir/$name" "$kver"
        touch "$dir/$name/.unpacked"
    fi
    echo "$dir/$name"
    exit 0
fi

# rustup installs the toolchain and target pinned in rust-toolchain.toml.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add x86_64-unknown-none >/dev/null

missing=()
for tool in gdb:gdb gcc:gcc cpio:cpio musl-gcc:musl-tools go:golang-go socat:socat tmux:tmux script:bsdutils curl:curl wget:wget make:make setpriv:util-linux; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
if [ -e /usr/lib/x86_64-linux-gnu/libc.a ]; then :; else missing+=(libc6-dev); fi
# Debian's own python3 (the tests run the host's userland in the guest).
[ -x /usr/bin/python3 ] || missing+=(python3)
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then :; else missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

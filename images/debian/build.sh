#!/usr/bin/env bash
# Builds a minimal Debian root directory for `vkernel run --rootfs` from
# the machine's own package source (its configured apt sources; no URL
# here): the packages below and everything they depend on, downloaded
# with `apt-get download` and unpacked with `dpkg -x` (no maintainer
# scripts run: the tree is assembled, not installed), plus /etc/passwd,
# /etc/group, /root, /tmp and the merged-/usr links Debian's installer
# makes. Writes target/images/debian/.
#
#   images/debian/build.sh
#   vkernel run --rootfs target/images/debian -- /bin/bash -c 'ls -l / | wc -l'
#   vkernel run --rootfs target/images/debian -- /usr/bin/python3 -c 'import json; print(json.dumps([1]))'
#
# PACKAGES="bash coreutils ..." images/debian/build.sh picks others.
set -euo pipefail
cd "$(dirname "$0")/../.."

packages=${PACKAGES:-"libc6 bash coreutils grep sed gawk findutils diffutils python3"}
out=target/images
root=$out/debian
debs=$out/debian-debs

for tool in apt-get apt-cache dpkg; do
    command -v "$tool" >/dev/null || { echo "images/debian: needs $tool (a Debian or Ubuntu host)" >&2; exit 1; }
done

# Every package the list needs (Depends and Pre-Depends, recursively),
# without virtual names and alternatives apt-cache marks with <>.
# shellcheck disable=SC2086
needed=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $packages |
    grep -v '^ ' | grep -v '^<' | sort -u)
if [ -z "$needed" ]; then
    echo "images/debian: apt-cache knows none of: $packages (run apt-get update?)" >&2
    exit 1
fi

mkdir -p "$debs"
(cd "$debs" && for p in $needed; do
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" 2>/dev/null || \
        echo "images/debian: $p: no package to download (left out)" >&2
done)

rm -rf "$root"
mkdir -p "$root"
# Debian 12 is merged-/usr: /bin, /sbin and /lib* are links into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
for deb in "$debs"/*.deb; do
    # Unpacked through a scratch tree so a package's own /bin lands in
    # /usr/bin (what usrmerge does) instead of replacing the link.
    tmp=$(mktemp -d)
    dpkg -x "$deb" "$tmp"
    for d in bin sbin lib lib64; do
        if [ -d "$tmp/$d" ] && [ ! -L "$tmp/$d" ]; then
            mkdir -p "$tmp/usr/$d"
            cp -a "$tmp/$d/." "$tmp/usr/$d/"
            rm -rf "${tmp:?}/$d"
        fi
    done
    cp -a "$tmp/." "$root/"
    rm -rf "$tmp"
done
mkdir -p "$root"/{etc,root,tmp,dev,proc,home}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
# /bin/sh is dash's in Debian; bash's here (dash is not in the list).
[ -e "$root/usr/bin/sh" ] || ln -s bash "$root/usr/bin/sh"
# Alternatives the maintainer scripts would have made.
[ -e "$root/usr/bin/awk" ] || ln -s gawk "$root/usr/bin/awk"
echo "images/debian: $(ls "$debs"/*.deb | wc -l) packages, $(du -sh "$root" | cut -f1) in $root"

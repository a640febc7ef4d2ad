#!/usr/bin/env bash
# Builds the busybox image from Debian's busybox-static: /bin/busybox with
# a link for every applet it has, /etc/passwd and /etc/group for root, an
# empty /tmp, /root and /etc/profile. Writes target/images/busybox/ (the
# tree, for --rootfs) and target/images/busybox.cpio (for --image busybox).
#
#   images/busybox/build.sh            # uses /bin/busybox (apt-get install busybox-static)
#   BUSYBOX=/path/to/busybox images/busybox/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

busybox=${BUSYBOX:-/bin/busybox}
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    if [ -z "${BUSYBOX:-}" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "images/busybox: installing busybox-static" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
    fi
fi
if ! file -L "$busybox" 2>/dev/null | grep -q "statically linked"; then
    echo "images/busybox: $busybox is not a static busybox; install Debian's busybox-static or set BUSYBOX" >&2
    exit 1
fi

out=target/images
root=$out/busybox
rm -rf "$root"
mkdir -p "$root"/{bin,etc,tmp,root}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\n' > "$root/etc/group"
printf 'export PS1='"'"'\\w # '"'"'\n' > "$root/etc/profile"
# The image's own /init: an interactive login shell (vkernel run --image
# busybox); its exit ends the run. A script, not a link to busybox: a link
# named init would run busybox's init applet (an rcS, "Please press Enter",
# and no way out but the escape).
printf '#!/bin/sh\nexec /bin/sh -l "$@"\n' > "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$out/busybox.cpio"
echo "images/busybox: $(ls "$root/bin" | wc -l) entries in /bin; wrote $root and $out/busybox.cpio"

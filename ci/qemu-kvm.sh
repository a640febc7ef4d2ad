#!/usr/bin/env bash
# The test suite on hardware-style KVM: boots Debian's own kernel under QEMU
# (pure emulation, `-accel tcg`, with an emulated AMD CPU, `-cpu EPYC-Rome`,
# which has SVM and nested paging), loads kvm_amd in it, and runs vkernel
# there on /dev/kvm: the default image, `vkernel test`, `vkernel run --pmap
# guest`, the fuzzer, `vkernel bench --quick` (a smoke test: times under
# emulation mean nothing) and the cargo integration tests, whose binaries
# are built here on the host and packed into the initramfs at the paths
# they were built for (they find the vkernel binary and the guest programs
# by the absolute paths cargo compiled into them).
#
# usage: ci/qemu-kvm.sh [--npt 1|0] [--tests none|NAME,NAME...]
#   --npt 0     kvm_amd npt=0: KVM shadows the guest's page tables
#   --tests     which integration test binaries (vkernel/tests/*.rs) run:
#               none, or names (default: those that need no host tools,
#               see default_tests below)
# Environment: QEMU_KVM_TIMEOUT (seconds for the whole QEMU run, default
# 900), QEMU_KVM_SMP (vCPUs, default 2), QEMU_KVM_MEM (MiB, default 3072),
# QEMU_KVM_CPU (default EPYC-Rome; qemu64 has SVM but no XSAVE and no
# nested paging), QEMU_KVM_TCG_THREAD (default single: one host thread runs
# every vCPU; with `multi` QEMU 7.2 hung the whole machine inside, or
# triple-faulted a nested guest, in some runs under load), and for
# debugging QEMU_KVM_TEST_ARGS (more arguments for each test binary),
# QEMU_KVM_STEPS=0 (no command steps), QEMU_KVM_BENCH=0 (the command
# steps but the bench smoke test), QEMU_KVM_EXTRA (shell commands run
# inside first).
#
# Prints each step's result and closes with `qemu-kvm CPU npt=N: N passed,
# N failed` (a command step counts as one test, an integration test binary
# counts its tests). Fails when any fails, when kvm_amd does not load, or
# when QEMU times out or stops before the last step.
set -euo pipefail
# One compound command: bash reads all of it before running, so editing
# this file while it runs cannot change the run.
{
cd "$(dirname "$0")/.."
root=$PWD

npt=1
# The integration tests that need nothing but the vkernel binary and the
# guest programs. The others call host tools the initramfs does not hold:
# c_programs, files, locks, poll and procfs compile C with gcc, busybox runs
# bash and the host's busybox, gdb runs gdb; bench is the `bench --quick`
# step. A new test binary joins this list by name.
default_tests=bad_programs,boot,fuzz,hypercall_suite,processes
tests=$default_tests
while [ $# -gt 0 ]; do
    case $1 in
        --npt) npt=$2; shift 2 ;;
        --tests) tests=$2; shift 2 ;;
        *) echo "usage: ci/qemu-kvm.sh [--npt 1|0] [--tests none|NAME,...]" >&2; exit 2 ;;
    esac
done
case $npt in 0 | 1) ;; *) echo "qemu-kvm: --npt takes 0 or 1" >&2; exit 2 ;; esac
timeout_s=${QEMU_KVM_TIMEOUT:-900}
smp=${QEMU_KVM_SMP:-2}
mem=${QEMU_KVM_MEM:-3072}
cpu=${QEMU_KVM_CPU:-EPYC-Rome}
tcg_thread=${QEMU_KVM_TCG_THREAD:-single}
export PATH=$PATH:/sbin:/usr/sbin

work=$root/target/qemu-kvm
mkdir -p "$work"
t_start=$(date +%s)

# --- what it needs: QEMU, busybox, the kernel package (unpacked) ----------
kdir=$(bash ci/setup.sh qemu "$work/kernel" | tail -n 1)
kver=$(ls "$kdir/lib/modules")
vmlinuz=$kdir/boot/vmlinuz-$kver

# --- the host binaries (the test build builds the vkernel binary too) ------
vkernel_bin=$root/target/x86_64-unknown-linux-gnu/release/vkernel
cargo test --release --locked -p vkernel --test '*' --no-run --message-format=json >"$work/build.json"
test_bins=()
while IFS= read -r exe; do
    name=$(basename "$exe")
    name=${name%-*}
    if [[ ",$tests," == *",$name,"* ]]; then
        test_bins+=("$exe")
    fi
done < <(grep '"kind":\["test"\]' "$work/build.json" | grep -o '"executable":"[^"]*"' |
    sed 's/"executable":"\(.*\)"/\1/' | sort)
if [ "$tests" != none ] && [ ${#test_bins[@]} -eq 0 ]; then
    echo "qemu-kvm: no integration test binary matches --tests $tests" >&2
    exit 1
fi

# --- the initramfs ----------------------------------------------------------
rootfs=$work/root
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,usr/bin,sbin,proc,sys,dev,tmp,modules}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh timeout; do
    ln -s /bin/busybox "$rootfs/bin/$applet"
    ln -s /bin/busybox "$rootfs/usr/bin/$applet"
done

# The kvm_amd module chain, as modprobe resolves it from the package's
# modules.dep (made by depmod in ci/setup.sh): `insmod PATH ARGS` lines.
: >"$rootfs/modules/order"
while read -r verb path args; do
    [ "$verb" = insmod ] || continue
    m=$(basename "$path")
    case $m in
        *.ko.xz) xz -dc "$path" >"$rootfs/modules/${m%.xz}"; m=${m%.xz} ;;
        *.ko.zst) zstd -qdc "$path" >"$rootfs/modules/${m%.zst}"; m=${m%.zst} ;;
        *.ko.gz) gzip -dc "$path" >"$rootfs/modules/${m%.gz}"; m=${m%.gz} ;;
        *) cp "$path" "$rootfs/modules/$m" ;;
    esac
    echo "$m $args" >>"$rootfs/modules/order"
done < <(modprobe -d "$kdir" -S "$kver" --show-depends kvm_amd "npt=$npt")
grep -q '^kvm-amd.ko' "$rootfs/modules/order" || {
    echo "qemu-kvm: modprobe did not resolve kvm_amd in $kdir" >&2
    exit 1
}

# A file at the same absolute path inside, without debug info.
put() {
    local src=$1 dst=$rootfs$1
    mkdir -p "$(dirname "$dst")"
    if [ "$(head -c 4 "$src" | tail -c 3)" = ELF ]; then
        strip -g -o "$dst" "$src" 2>/dev/null || cp "$src" "$dst"
    else
        cp -L "$src" "$dst"
    fi
    chmod +x "$dst"
}
# Its shared libraries and their loader, at the paths ldd names.
put_libs() {
    local lib
    for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
        [ -e "$rootfs$lib" ] || { mkdir -p "$(dirname "$rootfs$lib")" && cp -L "$lib" "$rootfs$lib"; }
    done
}
# The tests name the guest programs as CARGO_MANIFEST_DIR/../target/...
mkdir -p "$rootfs$root/vkernel"
put "$vkernel_bin"
put_libs "$vkernel_bin"
for exe in "${test_bins[@]}"; do
    put "$exe"
    put_libs "$exe"
done
# The guest kernel and programs, which tests read by path.
while IFS= read -r f; do put "$f"; done < <(find "$root/target/guest/x86_64-unknown-none/release" \
    -maxdepth 1 -type f -perm -u+x)

names=()
for exe in "${test_bins[@]}"; do names+=("$(basename "$exe")"); done
cat >"$rootfs/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin HOME=/tmp TMPDIR=/tmp RUST_BACKTRACE=1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# /tmp is the initramfs's own (rootfs is writable): a tmpfs mounted
# there would hide a checkout that lives under /tmp (a fresh CI clone may).
VKERNEL=$vkernel_bin
NPT=$npt
CPU=$cpu
SMP=$smp
TEST_BINS="${test_bins[*]}"
TEST_ARGS="${QEMU_KVM_TEST_ARGS:-}"
STEPS="${QEMU_KVM_STEPS:-1}"
BENCH="${QEMU_KVM_BENCH:-1}"
EOF
cat >>"$rootfs/init" <<'EOF'
up() { cut -d' ' -f1 /proc/uptime; }
passed=0
failed=0
finish() {
    echo "qemu-kvm $CPU npt=$NPT: $passed passed, $failed failed"
    echo "QEMU-KVM-DONE"
    sync
    poweroff -f
}
echo "qemu-kvm: booted in $(up) s (kernel $(uname -r))"
while read -r m args; do
    insmod "/modules/$m" $args || echo "qemu-kvm: insmod $m $args failed"
done </modules/order
if [ ! -c /dev/kvm ] || [ ! -d /sys/module/kvm_amd ]; then
    echo "qemu-kvm: FAILED: kvm_amd did not load (no /dev/kvm)"
    dmesg | grep -i -E 'kvm|svm' | tail -n 20
    failed=1
    echo "QEMU-KVM-NOKVM"
    finish
fi
echo "qemu-kvm: kvm_amd loaded, npt=$(cat /sys/module/kvm_amd/parameters/npt) ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'))"

# A vkernel process running for more than 90 s is hung (the longest
# normal run here takes about 20): show its threads' states and kernel
# stacks, and once, every CPU's backtrace (sysrq l).
watchdog() {
    dumped=""
    while sleep 30; do
        now=$(up)
        for d in /proc/[0-9]*; do
            [ "$(cat "$d/comm" 2>/dev/null)" = vkernel ] || continue
            st=$(cut -d' ' -f22 "$d/stat" 2>/dev/null) || continue
            age=$(awk "BEGIN { print int($now - $st / 100) }")
            [ "$age" -ge 90 ] || continue
            echo "qemu-kvm: watchdog: pid ${d#/proc/} running ${age} s: $(tr '\0' ' ' <"$d/cmdline")"
            for t in "$d"/task/*; do
                echo "  thread ${t##*/} state $(cut -d' ' -f3 "$t/stat") wchan $(cat "$t/wchan")" \
                    "$(head -n 6 "$t/stack" 2>/dev/null | sed 's/^\[<[0-9a-f]*>\] //' | tr '\n' ' ')"
            done
            if [ -z "$dumped" ]; then
                dumped=1
                echo l >/proc/sysrq-trigger
            fi
        done
    done
}
watchdog &

# step NAME WANT_IN_STDOUT COMMAND...: one test; exit 0 and (if given) the
# string in its output.
step() {
    name=$1 want=$2
    shift 2
    t0=$(up)
    timeout 240 "$@" >/tmp/out 2>/tmp/err
    rc=$?
    t1=$(up)
    secs=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
    if [ $rc -eq 0 ] && { [ -z "$want" ] || grep -q -- "$want" /tmp/out; }; then
        passed=$((passed + 1))
        echo "qemu-kvm: ok   $name (${secs} s)"
    else
        failed=$((failed + 1))
        echo "qemu-kvm: FAILED $name (exit $rc, ${secs} s)"
        echo "--- stdout"; tail -n 40 /tmp/out
        echo "--- stderr"; tail -n 40 /tmp/err
    fi
}
# QEMU_KVM_EXTRA: more shell commands to run first (debugging).
EXTRA_HERE
[ "$STEPS" = 1 ] || TEST_BINS_ONLY=1
[ -n "${TEST_BINS_ONLY:-}" ] || {
step "default image (vkernel)" "" $VKERNEL
step "vkernel test" " passed, 0 failed" $VKERNEL test
grep -E '^[0-9]+ passed, [0-9]+ failed$' /tmp/out | sed 's/^/qemu-kvm:      vkernel test: /'
step "vkernel run --pmap guest" "" $VKERNEL run --pmap guest
step "fuzzer (100,000 hypercalls)" "fuzz: 100000 hypercalls" $VKERNEL run --test-kernel --append "test=fuzz:100000 seed=1"
[ "$BENCH" = 0 ] || step "vkernel bench --quick (smoke test)" "syscall" $VKERNEL bench --quick
}

# runbin BIN ARGS...: runs a test binary with a timeout, its lines shown as
# they come (a hang shows where) less the kernel's line per unimplemented
# system call that the chaos tests provoke; /tmp/out holds them all, $rc
# the exit status.
runbin() {
    { timeout 240 "$@" 2>&1; echo "rc=$?" >/tmp/rc; } | tee /tmp/out |
        grep -v -E '^kernel: pid [0-9]+ \(systest\): system call [0-9]+ is not implemented'
    rc=$(sed 's/rc=//' /tmp/rc)
}
# Timing thresholds made for native speed mean nothing under emulation.
SKIP="--skip idle_guest_uses_no_host_cpu"
RETRIED=""
for bin in $TEST_BINS; do
    name=$(basename "$bin")
    name=${name%-*}
    t0=$(up)
    echo "qemu-kvm: cargo test --test $name"
    runbin "$bin" --test-threads="$SMP" $SKIP $TEST_ARGS
    p=$(awk '/^test result:/ { p += $4 } END { print p + 0 }' /tmp/out)
    f=$(awk '/^test result:/ { f += $6 } END { print f + 0 }' /tmp/out)
    if [ "$rc" -ne 0 ]; then
        # Nested virtualization under TCG is not always deterministic: the
        # tests that did not pass (failed, or never finished) run once
        # more, one at a time; one that passes then is counted as passed
        # and named at the end.
        "$bin" --list --format terse $SKIP $TEST_ARGS 2>/dev/null | sed -n 's/: test$//p' | sort >/tmp/all
        sed -n 's/^test \(.*\) \.\.\. ok$/\1/p' /tmp/out | sort >/tmp/ok
        if [ -s /tmp/ok ]; then
            redo=$(grep -v -x -F -f /tmp/ok /tmp/all | tr '\n' ' ')
        else
            redo=$(tr '\n' ' ' </tmp/all)
        fi
        p=$(wc -l </tmp/ok)
        [ "$f" -gt 0 ] || f=1
        if [ -n "$redo" ]; then
            echo "qemu-kvm: FAILED the first time in $name: $redo; once more, one at a time"
            cp /tmp/out /tmp/out.first
            runbin "$bin" --test-threads=1 --exact $redo
            p2=$(awk '/^test result:/ { p += $4 } END { print p + 0 }' /tmp/out)
            f2=$(awk '/^test result:/ { f += $6 } END { print f + 0 }' /tmp/out)
            [ "$rc" -eq 0 ] || [ "$f2" -gt 0 ] || f2=1
            [ "$rc" -ne 0 ] || RETRIED="$RETRIED $redo"
            p=$((p + p2))
            f=$f2
        fi
    fi
    t1=$(up)
    secs=$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -eq 0 ]; then
        echo "qemu-kvm: ok   cargo test --test $name: $p passed (${secs} s)"
    else
        echo "qemu-kvm: FAILED cargo test --test $name: $p passed, $f failed (exit $rc, ${secs} s)"
    fi
done
[ -z "$RETRIED" ] || echo "qemu-kvm: passed only when run again:$RETRIED"
finish
EOF
extra=${QEMU_KVM_EXTRA:-}
awk -v extra="$extra" '$0 == "EXTRA_HERE" { print extra; next } { print }' "$rootfs/init" >"$rootfs/init.new"
mv "$rootfs/init.new" "$rootfs/init"
chmod +x "$rootfs/init"

initrd=$work/initramfs-npt$npt.cpio
(cd "$rootfs" && find . | cpio -o -H newc --quiet) >"$initrd"
t_built=$(date +%s)
echo "qemu-kvm: initramfs $(du -m "$initrd" | cut -f1) MiB (${#test_bins[@]} test binaries), kernel $kver, ready in $((t_built - t_start)) s"

# --- the run ----------------------------------------------------------------
log=$work/qemu-npt$npt.log
echo "qemu-kvm: booting QEMU (-accel tcg,thread=$tcg_thread -cpu $cpu -smp $smp, kvm_amd npt=$npt, timeout ${timeout_s} s)"
set +e
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel "tcg,thread=$tcg_thread" -cpu "$cpu" -smp "$smp" -m "$mem" \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 rdinit=/init" \
    -nodefaults -display none -no-reboot -serial stdio </dev/null 2>&1 |
    sed -u 's/\r$//' | grep -a --line-buffered -v "TCG doesn't support requested feature" | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
t_end=$(date +%s)
echo "qemu-kvm: QEMU ran $((t_end - t_built)) s (exit $qemu_status)"

if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
    echo "qemu-kvm: FAILED: QEMU timed out after ${timeout_s} s"
    echo "qemu-kvm $cpu npt=$npt: 0 passed, 1 failed"
    exit 1
fi
if grep -q '^QEMU-KVM-NOKVM' "$log"; then
    echo "qemu-kvm: FAILED: kvm_amd did not load inside QEMU"
    echo "qemu-kvm $cpu npt=$npt: 0 passed, 1 failed"
    exit 1
fi
if ! grep -q '^QEMU-KVM-DONE' "$log"; then
    echo "qemu-kvm: FAILED: the run inside QEMU stopped before its last step (exit $qemu_status)"
    echo "qemu-kvm $cpu npt=$npt: 0 passed, 1 failed"
    exit 1
fi
closing=$(grep -E "^qemu-kvm $cpu npt=$npt: [0-9]+ passed, [0-9]+ failed$" "$log" | tail -n 1)
echo "$closing"
case $closing in *" 0 failed") exit 0 ;; *) exit 1 ;; esac
}

#!/usr/bin/env bash
# Peer comparison: one static C microbenchmark (microbench.c) run natively,
# inside vkernel, and under the peers Debian packages here: gVisor (runsc,
# ptrace and kvm platforms) and User-Mode Linux; then the file and pipe
# figures of `vkernel bench` (the image's /bin/systest filebench: pipe
# throughput and ping-pong, tmpfs write and read, open+fstat+close)
# natively, in vkernel on both pmaps, and under gVisor; then the time
# calls (/bin/systest clockbench: clock_gettime and gettimeofday through
# the vDSO, clock_gettime as a system call). One machine, one run, three
# tables (markdown on stdout). Where a peer cannot run, or is not
# installed, the table says so.
#
#   bench/peers.sh            # the peers that are installed
#   bench/peers.sh --install  # first installs runsc and user-mode-linux
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --install ] && { ! command -v runsc >/dev/null || ! command -v linux.uml >/dev/null; }; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc user-mode-linux >/dev/null
fi
installed() { command -v "$1" >/dev/null; }
cargo build --release -q
work=$(mktemp -d /tmp/vkernel-peers.XXXXXX)
trap 'rm -rf "$work"' EXIT
gcc -static -O2 -o "$work/microbench" bench/microbench.c || exit 1
VK=target/release/vkernel

# name: microbench arguments per figure
modes=("getppid 20000" "write 20000" "touch 2" "fork 100")

run_native()  { "$work/microbench" "$@"; }
run_vkernel() { "$VK" run --pool 512 -- "$work/microbench" "$@"; }
run_gvisor_ptrace() { timeout 120 runsc --network=none --platform=ptrace do "$work/microbench" "$@"; }
run_gvisor_kvm() { timeout 20 runsc --network=none --platform=kvm do "$work/microbench" "$@"; }
run_uml() {
    cat > "$work/uml-init.sh" <<EOS
#!/bin/sh
$work/microbench $*
exec /sbin/poweroff -f
EOS
    chmod +x "$work/uml-init.sh"
    timeout 120 linux.uml mem=256M root=/dev/root rootfstype=hostfs rootflags=/ rw \
        init="$work/uml-init.sh" con=null con0=fd:0,fd:1 2>/dev/null | tr -d '\r'
}

# start-to-exit of a trivial program, median of 5, in ms
start_to_exit() {
    local runner=$1 samples=()
    for _ in 1 2 3 4 5; do
        local t0 t1
        t0=$(date +%s%N)
        "$runner" exit >/dev/null 2>&1 || { echo "fails"; return; }
        t1=$(date +%s%N)
        samples+=($(( (t1 - t0) / 1000 )))
    done
    printf '%s\n' "${samples[@]}" | sort -n | sed -n 3p | awk '{printf "%.1f ms", $1 / 1000}'
}

echo "| runtime | getppid ns | 1-byte write ns | first touch ns/page | fork+exit+wait µs | start-to-exit |"
echo "| --- | --- | --- | --- | --- | --- |"
for runner in native vkernel gvisor_ptrace gvisor_kvm uml; do
    row="| $runner"
    case $runner in
        gvisor_*) tool=runsc ;;
        uml) tool=linux.uml ;;
        *) tool= ;;
    esac
    if [ -n "$tool" ] && ! installed "$tool"; then
        echo "$row | not installed ($tool) | – | – | – | – |"
        continue
    fi
    for m in "${modes[@]}"; do
        # shellcheck disable=SC2086
        out=$("run_$runner" $m 2>/dev/null | grep -a -o 'ns_per_op=[0-9]*' | head -1 | cut -d= -f2)
        if [ -z "$out" ]; then
            case $runner in
                gvisor_kvm) out="hangs";;
                *) out="failed";;
            esac
        elif [ "${m%% *}" = fork ]; then
            out=$(awk -v n="$out" 'BEGIN { printf "%.0f", n / 1000 }')
        fi
        row="$row | $out"
    done
    if [ "$runner" = gvisor_kvm ] && [[ $row == *hangs* ]]; then
        row="$row | – (its Sentry runs in guest ring 0, which KVM emulates here: it never finishes) |"
    else
        row="$row | $(start_to_exit "run_$runner") |"
    fi
    echo "$row"
done

# --- systest tables: each row one runtime running /bin/systest MODE ARGS,
# each column one of its `bench NAME median_ns=...` figures, divided by
# DIV (1000: µs; 1: ns).
cp target/guest/x86_64-unknown-none/release/systest "$work/systest" || exit 1
run_systest() { # runtime mode args...
    local runtime=$1
    shift
    case $runtime in
    native) (cd "$work" && ./systest "$@") ;;
    vkernel_host) "$VK" run --memory 256 --pmap host -- "$work/systest" "$@" ;;
    vkernel_guest) "$VK" run --memory 256 --pmap guest -- "$work/systest" "$@" ;;
    gvisor_ptrace) timeout 300 runsc --network=none --platform=ptrace do "$work/systest" "$@" ;;
    esac
}
systest_table() { # header div "mode args" figures...
    local header=$1 div=$2 cmd=$3
    shift 3
    local dashes="" f
    for f in "$@"; do dashes="$dashes | –"; done
    echo
    echo "$header"
    echo "| ---$(printf ' | ---%.0s' "$@") |"
    for runner in native vkernel_host vkernel_guest gvisor_ptrace uml; do
        row="| $runner"
        if [ "$runner" = uml ]; then
            echo "$row | – (User-Mode Linux does not run on this machine)${dashes# | –} |"
            continue
        fi
        if [ "$runner" = gvisor_ptrace ] && ! installed runsc; then
            echo "$row | not installed (runsc)${dashes# | –} |"
            continue
        fi
        # shellcheck disable=SC2086 # the mode's words
        out=$(run_systest "$runner" $cmd 2>/dev/null)
        for f in "$@"; do
            ns=$(printf '%s\n' "$out" | grep -a "^bench $f " | grep -o 'median_ns=[0-9]*' | head -1 | cut -d= -f2)
            if [ -z "$ns" ]; then
                row="$row | failed"
            else
                row="$row | $(awk -v n="$ns" -v d="$div" 'BEGIN { printf "%.1f", n / d }')"
            fi
        done
        echo "$row |"
    done
}

# Files and pipes: the figures of `vkernel bench` (filebench, 64 MiB).
systest_table "| runtime | pipe µs per 64 KiB | pipe ping-pong µs | tmpfs write µs per MiB | tmpfs read µs per MiB | open+fstat+close µs |" \
    1000 "filebench 64" pipe_64k pipe_pingpong tmpfs_write_1m tmpfs_read_1m open_fstat_close

# Time: clock_gettime and gettimeofday through the vDSO (found through
# AT_SYSINFO_EHDR as glibc does) and clock_gettime as a system call.
systest_table "| runtime | clock_gettime (vDSO) ns | gettimeofday (vDSO) ns | clock_gettime (system call) ns |" \
    1 "clockbench 200000" clock_gettime_vdso gettimeofday_vdso clock_gettime_syscall

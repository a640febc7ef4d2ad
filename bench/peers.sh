#!/usr/bin/env bash
# Peer comparison: one static C microbenchmark (microbench.c) run natively,
# inside vkernel, and under the peers Debian packages here: gVisor (runsc,
# ptrace and kvm platforms) and User-Mode Linux. One machine, one run, one
# table (markdown on stdout). Where a peer cannot run, the table says why.
#
#   bench/peers.sh            # installs runsc and user-mode-linux if missing
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v runsc >/dev/null || ! command -v linux.uml >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc user-mode-linux >/dev/null
fi
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

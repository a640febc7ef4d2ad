#!/usr/bin/env bash
# Peer comparison: one machine, one invocation, one table. Every figure is
# measured natively, inside vkernel (pmap=host and pmap=guest), under
# gVisor's ptrace platform and under User-Mode Linux, RUNS times each; a
# cell is the median of the runs and its ratio to native and to gVisor.
# The machine's floor (a raw KVM exit round trip, `vkernel bench
# --floor-only`) is measured in the same invocation and vkernel's cells
# give their ratio to it too.
#
#   bench/peers.sh                      # the peers that are installed
#   bench/peers.sh --install            # first installs runsc and user-mode-linux
#   bench/peers.sh --runs 3             # RUNS (default 5)
#   bench/peers.sh --rootfs DIR         # the root directory of the dynamic figures
#                                       # (default target/images/debian, which
#                                       # images/debian/build.sh makes; / is the host's)
#
# The programs: bench/microbench.c (getppid, first touch, fork, a trivial
# static program's start to exit), the default image's /bin/systest
# filebench (pipes and tmpfs: the figures of `vkernel bench`), and the
# root directory's own dynamically linked /bin/true, python3 and bash.
# bench/runin.c is the launcher where a runtime needs one: natively it
# mounts a tmpfs on /tmp in a private mount namespace (the host's /tmp
# here is ext4; vkernel's /tmp is its tmpfs, gVisor's its in-memory
# overlay) or chroots into the root directory; under UML it is init.
#
# How each peer runs here (as root: runsc, chroot and the native tmpfs
# need it; without root those cells say so):
# - gVisor: Debian's runsc, `runsc --network=none --platform=ptrace do
#   PROG` (the host's / read-only under an in-memory overlay; `do -root
#   DIR` for the root directory). Its KVM platform never finishes here
#   (on PVM its Sentry would run in guest ring 0, which KVM emulates), so
#   it is not in the table.
# - UML: Debian's user-mode-linux, `linux.uml mem=256M rootfstype=hostfs
#   rootflags=/ init=runin -- ...` (hostfs serves the host's /; runin
#   chroots into the root directory where a figure needs it). On some
#   machines its kernel panics at init (`ptrace set fp regs failed, errno
#   = 14`): the script boots it once first and, if it fails, the table has
#   one line with the reason instead of a row of figures.
# Start-to-exit is wall time of the whole runtime process (vkernel's boot,
# gVisor's sandbox start, UML's boot included), taken from outside.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=5
rootfs=target/images/debian
install=
while [ $# -gt 0 ]; do
    case $1 in
    --install) install=1 ;;
    --runs) runs=$2; shift ;;
    --rootfs) rootfs=$2; shift ;;
    *) echo "usage: bench/peers.sh [--install] [--runs N] [--rootfs DIR]" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "$install" ] && { ! command -v runsc >/dev/null || ! command -v linux.uml >/dev/null; }; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc user-mode-linux >/dev/null
fi
installed() { command -v "$1" >/dev/null; }
as_root() { [ "$(id -u)" = 0 ]; }
cargo build --release -q || exit 1
VK=$PWD/target/x86_64-unknown-linux-gnu/release/vkernel
# Not under /tmp: native and UML runs mount a tmpfs there.
work=$(mktemp -d "$PWD/target/peers.XXXXXX")
trap 'rm -rf "$work"' EXIT
gcc -static -O2 -o "$work/microbench" bench/microbench.c || exit 1
gcc -static -O2 -o "$work/runin" bench/runin.c || exit 1
cp target/guest/x86_64-unknown-none/release/systest "$work/systest" || exit 1
[ -d "$rootfs" ] && rootfs=$(cd "$rootfs" && pwd)

# --- The figures: name | unit divisor | unit | what | kind and arguments.
# kind "static": a static program of $work (microbench or systest) whose
# output line `<key> ns_per_op=N` or `bench <key> median_ns=N` is the
# figure; "start": wall time from start to exit of the runtime process;
# "dyn": the same for a program of the root directory (bash's script,
# $pipeline, is passed as one argument where the samples are taken).
pipeline='for i in $(seq 100); do echo $i | tr 0-9 a-j | cat; done >/dev/null'
figures=(
    "getppid|1000|µs|getppid (system call round trip)|static getppid microbench getppid 20000"
    "touch|1000|µs|first touch, per 4 KiB page of 3 × 64 MiB|static touch microbench touch 3"
    "fork|1000|µs|fork + _exit + waitpid|static fork microbench fork 100"
    "exit|1000000|ms|start to exit of a trivial static program|start microbench exit"
    "pipe|1000|µs|pipe throughput, per 64 KiB write (256 MiB)|static pipe_64k systest filebench 64 256"
    "pingpong|1000|µs|pipe ping-pong, 1 byte there and back|static pipe_pingpong systest filebench 64 256"
    "twrite|1000|µs|tmpfs sequential write, per 1 MiB call (64 MiB file)|static tmpfs_write_1m systest filebench 64 256"
    "tread|1000|µs|tmpfs sequential read, per 1 MiB call|static tmpfs_read_1m systest filebench 64 256"
    "ofc|1000|µs|open + fstat + close|static open_fstat_close systest filebench 64 256"
    "true|1000000|ms|start to exit of dynamic /bin/true (root directory)|dyn /bin/true"
    "python|1000000|ms|start to exit of python3 -c pass|dyn /usr/bin/python3 -c pass"
    "bash|1000000|ms|start to exit of bash -c running 100 pipelines (echo, tr, cat: 300 processes)|dyn /bin/bash -c \$pipeline"
)
runtimes=(native vkernel_host vkernel_guest gvisor_ptrace uml)
declare -A title=(
    [native]="native" [vkernel_host]="vkernel pmap=host" [vkernel_guest]="vkernel pmap=guest"
    [gvisor_ptrace]="gVisor-ptrace" [uml]="UML"
)

# uml RUNIN-ARGS...: boots UML with runin as its init and RUNIN-ARGS as
# runin's; its console (boot messages, the program's output, runin's
# `runin: exit N`) on stdout. console=tty0 is given here, else UML
# appends it to init's arguments.
uml() {
    timeout 600 linux.uml mem=256M root=/dev/root rootfstype=hostfs rootflags=/ rw \
        console=tty0 con=null con0=fd:0,fd:1 init="$work/runin" -- "$@" </dev/null 2>&1 | tr -d '\r'
}

# run RUNTIME FLAGS PROG ARGS...: PROG (a path of $work, or with -r of
# the root directory) in RUNTIME; FLAGS is "-t" (a tmpfs /tmp), "-r" (in
# the root directory) or "-".
run() {
    local rt=$1 flags=$2
    shift 2
    case $rt in
    native)
        case $flags in
        -t) "$work/runin" -t "$@" ;;
        -r) "$work/runin" -r "$rootfs" "$@" ;;
        *) "$@" ;;
        esac ;;
    vkernel_host | vkernel_guest)
        local pmap=${rt#vkernel_}
        case $flags in
        -r) "$VK" run --pmap "$pmap" --memory 256 --rootfs "$rootfs" -- "$@" ;;
        *) "$VK" run --pmap "$pmap" --memory 256 --pool 512 -- "$@" ;;
        esac ;;
    gvisor_ptrace)
        case $flags in
        -r) timeout 600 runsc --network=none --platform=ptrace do -root "$rootfs" "$@" ;;
        *) timeout 600 runsc --network=none --platform=ptrace do "$@" ;;
        esac ;;
    uml)
        local pre=()
        case $flags in
        -t) pre=(-t) ;;
        -r) pre=(-r "$rootfs") ;;
        esac
        # The command goes through a file: the kernel command line would
        # split `bash -c SCRIPT` at its spaces.
        printf '%s\0' "$@" >"$work/uml-command"
        uml "${pre[@]}" -f "$work/uml-command" | grep -a -v '^runin: exit 0$' ;;
    esac
}

# Why RUNTIME cannot run here ("" when it can).
declare -A unavailable=()
for rt in "${runtimes[@]}"; do unavailable[$rt]=""; done
if ! installed runsc; then
    unavailable[gvisor_ptrace]="not installed (runsc; bench/peers.sh --install)"
elif ! as_root; then
    unavailable[gvisor_ptrace]="needs root (runsc do)"
elif ! out=$(run gvisor_ptrace - "$work/microbench" exit 2>&1); then
    unavailable[gvisor_ptrace]="does not run here: $(printf '%s\n' "$out" | grep -a . | tail -1)"
fi
if ! installed linux.uml; then
    unavailable[uml]="not installed (user-mode-linux; bench/peers.sh --install)"
else
    # One boot first: on some machines UML's kernel panics at init.
    out=$(uml "$work/microbench" exit)
    if ! grep -a -q '^runin: exit 0$' <<<"$out"; then
        reason=$(grep -a -m1 -E 'errno = |[Pp]anic' <<<"$out")
        unavailable[uml]="its kernel does not boot here: ${reason:-$(grep -a . <<<"$out" | tail -1)}"
    fi
fi
# Why a figure (its kind and arguments) cannot run in RUNTIME ("" when
# it can).
cannot() {
    local rt=$1 spec=$2
    if [[ $spec == dyn* ]] && [ ! -x "$rootfs/bin/true" ]; then
        echo "no root directory (images/debian/build.sh, or --rootfs /)"
    elif [ "$rt" = native ] && [[ $spec == dyn* || $spec == *systest* ]] && ! as_root; then
        echo "needs root (runin: a tmpfs /tmp, chroot)"
    fi
}

# timed RUNTIME FLAGS PROG ARGS...: the wall time in ns from the start
# to the exit of PROG in RUNTIME, or nothing if it failed.
timed() {
    local rt=$1 t0 t1 out
    t0=$(date +%s%N)
    out=$(run "$@" 2>&1) || return
    t1=$(date +%s%N)
    # UML's own exit status is 0 whatever init's was: runin prints
    # `runin: exit N`, and run() drops that line only for 0.
    if [ "$rt" = uml ] && grep -a -q -E '^runin: exit|Kernel panic' <<<"$out"; then return; fi
    echo $((t1 - t0))
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# Each program runs once per sample and gives several figures (filebench
# gives five): the samples are taken per distinct command, in rounds, so
# the runtimes take turns instead of one hogging a quiet spell.
declare -A samples=()
for ((round = 1; round <= runs; round++)); do
    echo "round $round of $runs" >&2
    for rt in "${runtimes[@]}"; do
        [ -n "${unavailable[$rt]}" ] && continue
        declare -A done_cmd=()
        for f in "${figures[@]}"; do
            IFS='|' read -r name _ _ _ spec <<<"$f"
            read -r kind rest <<<"$spec"
            [ -n "$(cannot "$rt" "$spec")" ] && continue
            if [ "$kind" = static ]; then
                # One run of the program for every figure it prints.
                read -r key cmd <<<"$rest"
                if [ -z "${done_cmd[$cmd]:-}" ]; then
                    # shellcheck disable=SC2086 # the command's words
                    done_cmd[$cmd]=$(run "$rt" "$([ "${cmd%% *}" = systest ] && echo -t || echo -)" \
                        "$work/${cmd%% *}" ${cmd#* } 2>/dev/null | tr -d '\r')
                fi
                v=$(printf '%s\n' "${done_cmd[$cmd]}" |
                    grep -a -E "^$key ns_per_op=|^bench $key " |
                    grep -a -o -E '(ns_per_op|median_ns)=[0-9.]+' | head -1 | cut -d= -f2)
            elif [ "$name" = bash ]; then
                v=$(timed "$rt" -r /bin/bash -c "$pipeline")
            elif [ "$kind" = dyn ]; then
                # shellcheck disable=SC2086 # the program and its words
                v=$(timed "$rt" -r $rest)
            else
                # shellcheck disable=SC2086
                v=$(timed "$rt" - "$work/"$rest)
            fi
            [ -n "$v" ] && samples[$rt.$name]="${samples[$rt.$name]:-} $v"
        done
        unset done_cmd
    done
done

floor_ns=$("$VK" bench --floor-only | grep -o 'median_ns=[0-9]*' | cut -d= -f2)

# --- The table.
fmt() { awk -v n="$1" -v d="$2" 'BEGIN { v = n / d; printf (v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f"), v }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; printf (r >= 100 ? "%.0f" : r >= 10 ? "%.1f" : "%.2f"), r }'; }
echo "Peers on $(hostname), $(date -u '+%Y-%m-%d %H:%M UTC'): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "Floor F (raw KVM exit round trip, \`vkernel bench --floor-only\`): $(fmt "${floor_ns:-0}" 1000) µs. Each cell: the median of $runs runs (its ratio to F for vkernel, to native, to gVisor-ptrace). Root directory of the dynamic figures: $rootfs."
echo
header="| figure"
for rt in "${runtimes[@]}"; do
    [ -n "${unavailable[$rt]}" ] || header="$header | ${title[$rt]}"
done
echo "$header |"
echo "$(sed 's/[^|]//g; s/|/| --- /g' <<<"$header")|"
for f in "${figures[@]}"; do
    IFS='|' read -r name div unit what spec <<<"$f"
    native=$(printf '%s\n' ${samples[native.$name]:-} | median)
    gvisor=$(printf '%s\n' ${samples[gvisor_ptrace.$name]:-} | median)
    row="| $what"
    for rt in "${runtimes[@]}"; do
        [ -n "${unavailable[$rt]}" ] && continue
        why=$(cannot "$rt" "$spec")
        m=$(printf '%s\n' ${samples[$rt.$name]:-} | median)
        if [ -n "$why" ]; then
            row="$row | – ($why)"
        elif [ -z "$m" ]; then
            row="$row | failed"
        else
            cell="$(fmt "$m" "$div") $unit"
            ratios=()
            [[ $rt == vkernel_* ]] && [ -n "${floor_ns:-}" ] && ratios+=("$(ratio "$m" "$floor_ns") F")
            [ "$rt" != native ] && [ -n "$native" ] && ratios+=("$(ratio "$m" "$native")")
            [ "$rt" != gvisor_ptrace ] && [ "$rt" != native ] && [ -n "$gvisor" ] && ratios+=("$(ratio "$m" "$gvisor")")
            [ ${#ratios[@]} -gt 0 ] && cell="$cell ($(IFS=';'; echo "${ratios[*]}" | sed 's/;/, /g'))"
            row="$row | $cell"
        fi
    done
    echo "$row |"
done
for rt in "${runtimes[@]}"; do
    [ -n "${unavailable[$rt]}" ] && echo && echo "${title[$rt]}: no figures, ${unavailable[$rt]}."
done
exit 0

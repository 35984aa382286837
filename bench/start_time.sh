#!/usr/bin/env bash
# Start time: `run` of /bin/true from a busybox bundle, N times (100 by
# default, in interleaved blocks of 2), berth against crun and runc, side by
# side. Prints each runtime's median in ms and the ratio berth/crun (target:
# <= 0.8).
#   bench/start_time.sh [RUNS]        (root; BERTH=/path/to/berth to choose the binary,
#                                     BERTH_READONLY=1 to run it from a read-only mount,
#                                     BLOCK=N for blocks of N runs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bundle.sh"
runs=${1:-100}
[ "$(id -u)" = 0 ] || { echo "start_time.sh: needs root" >&2; exit 1; }
berth=$(find_berth)
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make_bundle "$tmp/bundle"
berth=$(ship_berth "$berth" "$tmp")
# BERTH_READONLY=1: berth on a read-only mount, as on a gateway's A/B root,
# where it needs no protected re-exec (runtime/exe_protect.hpp).
if [ -n "${BERTH_READONLY:-}" ]; then
    mount --bind "$berth" "$berth" && mount -o remount,bind,ro "$berth"
    trap 'umount "$berth"; rm -rf "$tmp"' EXIT
fi

# The timing loop, as a shell snippet so crun's can run inside its namespace.
# Prints one duration in microseconds per run; a failed run aborts.
loop() { # runtime command line (without `run ID`), number of runs
    cat <<SH
cd "$tmp/bundle"
i=0
while [ \$i -lt $2 ]; do
    t0=\$(date +%s%N)
    $1 run bench-\$\$ >/dev/null 2>"$tmp/err" || { echo "run failed:" >&2; cat "$tmp/err" >&2; exit 1; }
    t1=\$(date +%s%N)
    echo \$(( (t1 - t0) / 1000 ))
    i=\$((i + 1))
done
SH
}

# Interleaved blocks of 2 runs (berth, crun, runc, berth, ...), so that a
# change in the machine's load reaches all three alike and the ratios hold
# on a busy machine too: with blocks of 10 (0.2-0.4 s each), the same
# binary gave ratios 0.63-0.92 on this machine under a load of 7-12,
# with blocks of 2 within 0.56-0.71.
block=${BLOCK:-2}
declare -A all
for ((done_runs = 0; done_runs < runs; done_runs += block)); do
    n=$(( runs - done_runs < block ? runs - done_runs : block ))
    for rt in berth crun runc; do
        case $rt in
            berth) out=$(sh -c "$(loop "$berth --root $tmp/state-berth" "$n")") ;;
            crun) out=$(crun_wrap "$(loop "crun --root $tmp/state-crun" "$n")") ;;
            runc) out=$(sh -c "$(loop "runc --root $tmp/state-runc" "$n")") ;;
        esac
        all[$rt]+="$out"$'\n'
    done
done
declare -A med
for rt in berth crun runc; do
    med[$rt]=$(printf '%s' "${all[$rt]}" | grep . | median)
    printf '%-6s median %8.2f ms over %d runs\n' "$rt" "$(echo "${med[$rt]} / 1000" | bc -l)" "$runs"
done
printf 'ratio berth/crun: %.2f (target <= 0.80)\n' "$(echo "${med[berth]} / ${med[crun]}" | bc -l)"
printf 'ratio berth/runc: %.2f\n' "$(echo "${med[berth]} / ${med[runc]}" | bc -l)"

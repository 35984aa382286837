#!/usr/bin/env bash
# Memory: peak RSS (GNU time's %M, in KiB) of one `run` of /bin/true from a
# busybox bundle, berth against crun and runc; the median of 5 runs each.
# Prints the ratios berth/crun (target <= 1.0) and berth/runc.
#   bench/memory.sh                   (root; BERTH=/path/to/berth to choose the binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bundle.sh"
[ "$(id -u)" = 0 ] || { echo "memory.sh: needs root" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "memory.sh: needs GNU time (/usr/bin/time)" >&2; exit 1; }
berth=$(find_berth)
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
make_bundle "$tmp/bundle"
berth=$(ship_berth "$berth" "$tmp")

measure() { # runtime command line; prints KiB, one line per run
    cat <<SH
cd "$tmp/bundle"
for i in 1 2 3 4 5; do
    /usr/bin/time -f %M -o "$tmp/rss" $1 run mem-\$\$ >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    cat "$tmp/rss"
done
SH
}

declare -A kib
for rt in berth crun runc; do
    case $rt in
        berth) out=$(sh -c "$(measure "$berth --root $tmp/state-berth")") ;;
        crun) out=$(crun_wrap "$(measure "crun --root $tmp/state-crun")") ;;
        runc) out=$(sh -c "$(measure "runc --root $tmp/state-runc")") ;;
    esac
    kib[$rt]=$(echo "$out" | median)
    printf '%-6s peak RSS %8d KiB\n' "$rt" "${kib[$rt]%.*}"
done
printf 'ratio berth/crun: %.2f (target <= 1.00)\n' "$(echo "${kib[berth]} / ${kib[crun]}" | bc -l)"
printf 'ratio berth/runc: %.2f\n' "$(echo "${kib[berth]} / ${kib[runc]}" | bc -l)"

#!/usr/bin/env bash
# Smallest memory limit: the smallest `podman run --memory` with which a
# container (busybox, /bin/true) starts and exits 0, per runtime: berth, crun
# and runc, bisected over 256 KiB .. 8 MiB to 16 KiB. podman gets its own
# storage (vfs) in a temporary directory; crun runs in a private mount
# namespace without the cgroup2 mount (crun 1.8 refuses hybrid hosts).
# Prints each minimum and the ratios berth/crun and berth/runc (berth's target: <= 512 KiB).
#   bench/min_memory.sh              (root; BERTH=/path/to/berth to choose the binary)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/bundle.sh"
[ "$(id -u)" = 0 ] || { echo "min_memory.sh: needs root" >&2; exit 1; }
command -v podman >/dev/null || { echo "min_memory.sh: needs podman" >&2; exit 1; }
berth=$(find_berth)
case $berth in /*) ;; *) berth=$(pwd)/$berth ;; esac
tmp=$(mktemp -d /tmp/berth-bench.XXXXXX)
P="podman --root $tmp/storage --runroot $tmp/run --tmpdir $tmp/tmpdir --storage-driver vfs --cgroup-manager cgroupfs --events-backend file"
had_libpod_cg=$(ls -d /sys/fs/cgroup/*/libpod_parent 2>/dev/null | head -1 || true)
cleanup() {
    $P rm -af >/dev/null 2>&1 || true
    $P rmi -af >/dev/null 2>&1 || true
    if [ -z "$had_libpod_cg" ]; then
        for d in /sys/fs/cgroup/*/libpod_parent/conmon /sys/fs/cgroup/*/libpod_parent; do rmdir "$d" 2>/dev/null || true; done
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
make_bundle "$tmp/bundle"
berth=$(ship_berth "$berth" "$tmp")
tar -C "$tmp/bundle/rootfs" -cf "$tmp/rootfs.tar" .
$P import "$tmp/rootfs.tar" localhost/berth-bench:min >/dev/null 2>&1
UL="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

starts() { # runtime KiB -> exit 0 when the container ran
    local cmd="$P --runtime $1 run --rm --network none $UL --memory ${2}k localhost/berth-bench:min /bin/true"
    if [ "$(basename "$1")" = crun ]; then crun_wrap "$cmd" >/dev/null 2>&1; else sh -c "$cmd" >/dev/null 2>&1; fi
}

minimum() { # runtime -> smallest KiB that works, "<=256" or ">8192"
    local rt=$1 lo=256 hi=8192 mid
    if starts "$rt" $lo; then echo 256; return; fi
    if ! starts "$rt" $hi; then echo ">8192"; return; fi
    while [ $((hi - lo)) -gt 16 ]; do
        mid=$(((lo + hi) / 2))
        if starts "$rt" $mid; then hi=$mid; else lo=$mid; fi
    done
    echo $hi
}

declare -A kib
for rt in berth crun runc; do
    path=$rt
    [ $rt = berth ] && path=$berth
    [ $rt = berth ] || path=$(command -v $rt)
    kib[$rt]=$(minimum "$path")
    note=
    [ "${kib[$rt]}" = 256 ] && note=" (the lowest tried: it may start with less)"
    printf '%-6s smallest --memory: %s KiB%s\n' "$rt" "${kib[$rt]}" "$note"
done
ratio() { case "$1$2" in *'>'*) echo "n/a" ;; *) echo "scale=2; $1 / $2" | bc ;; esac; }
echo "ratio berth/crun: $(ratio "${kib[berth]}" "${kib[crun]}")"
echo "ratio berth/runc: $(ratio "${kib[berth]}" "${kib[runc]}")"
[ "${kib[berth]}" != ">8192" ] && [ "${kib[berth]}" -le 512 ] && echo "berth meets its target (<= 512 KiB)" || echo "berth misses its target (<= 512 KiB)"

#!/usr/bin/env bash
# Size report: the stripped size of berth for x86_64, armhf and arm64, from
# build/, build-armhf/ and build-arm64/ (as ./run.sh test leaves them), each
# stripped with its own toolchain's strip into a temporary file. Checks the
# armhf budget (dynamically linked against Debian's libraries: < 1.5 MiB) and
# exits 1 with OVER BUDGET when it is exceeded or cannot be checked.
#   bench/size.sh            or   meson compile -C build size
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
budget=$((3 * 1024 * 1024 / 2))   # 1.5 MiB, armhf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

report() { # arch, build dir, strip program
    local arch=$1 dir=$root/$2 strip=$3 bin size
    bin=$dir/berth
    [ -f "$bin" ] || bin=$dir/src/berth
    if [ ! -f "$bin" ]; then
        printf '%-7s  not built (%s/berth missing)\n' "$arch" "$2"
        [ "$arch" != armhf ] || { echo "armhf budget cannot be checked"; status=1; }
        return
    fi
    "$strip" -o "$tmp/berth-$arch" "$bin"
    size=$(stat -c %s "$tmp/berth-$arch")
    awk -v a="$arch" -v s="$size" -v u="$(stat -c %s "$bin")" \
        'BEGIN { printf "%-7s %9d bytes  %7.1f KiB  (unstripped %d)\n", a, s, s / 1024, u }'
    if [ "$arch" = armhf ]; then
        if [ "$size" -ge "$budget" ]; then
            echo "OVER BUDGET: armhf berth is $size bytes, budget $budget (1.5 MiB)"
            status=1
        else
            echo "armhf within budget: $size < $budget bytes (1.5 MiB)"
        fi
    fi
}

report x86_64 build strip
report armhf build-armhf arm-linux-gnueabihf-strip
report arm64 build-arm64 aarch64-linux-gnu-strip
exit $status

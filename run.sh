#!/usr/bin/env bash
# berth's entry points on a fresh Debian 12 machine (run as root, or with sudo
# available for apt-get). Each command installs what it needs first.
#
#   ./run.sh demo           build berth and run its main job (for now: a busybox container, the native
#                           and the armhf binary, the latter under qemu-arm)
#   ./run.sh test [--slow]  build natively and for armhf (arm64 too with BERTH_CROSS), run every unit
#                           test natively and under QEMU, print one summary line
#                           `N passed, N failed, N skipped`; exit 1 if any failed
#   ./run.sh deps           only install the Debian packages listed in .ci/packages
#
# Environment:
#   BERTH_SLOW_TESTS=1   same as --slow: also run the 'slow' suite (see meson.build)
#   BERTH_CROSS="armhf arm64"  the cross builds `test` makes (default: "armhf",
#                        which keeps CI near 15 minutes on 2 cores; empty: native only)
#   BERTH_JOBS=N         parallel compile jobs (default: number of CPUs)
#
# Build directories: build/ (native), build-armhf/, build-arm64/; sysroots in
# .sysroot/ (cross/build-sysroot.sh). All are reused when they exist.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

jobs=${BERTH_JOBS:-$(nproc)}
cross_arches=${BERTH_CROSS-armhf}

step() { printf '\n== %s  [%ds]\n' "$*" "$SECONDS"; }   # SECONDS: since start
die() { echo "run.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- setup steps

# Installs the packages of .ci/packages that are missing. Idempotent: when all
# are installed it neither updates nor installs anything.
deps() {
    local pkgs missing=() p sudo=()
    pkgs=$(sed 's/#.*//' .ci/packages | tr -s ' \t' '\n' | grep -v '^$')
    for p in $pkgs; do
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all $(wc -w <<<"$pkgs") packages of .ci/packages are installed"
        return
    fi
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    step "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q "${missing[@]}"
}

build_native() {
    step "native build (build/)"
    # (Called in `if`, where set -e does not apply: hence the `|| return`.)
    if [ -f build/build.ninja ]; then
        meson configure build -Dwerror=true || return
    else
        meson setup build -Dwerror=true || return
    fi
    meson compile -C build -j "$jobs"
}

# build_cross ARCH: the sysroot, then build-ARCH/ with cross/ARCH.ini.
build_cross() {
    local arch=$1
    step "sysroot for $arch (.sysroot/$arch)"
    cross/build-sysroot.sh "$arch" || return
    step "cross build for $arch (build-$arch/)"
    if [ -f "build-$arch/build.ninja" ]; then
        meson configure "build-$arch" -Dwerror=true || return
    else
        meson setup "build-$arch" --cross-file ".sysroot/$arch.ini" \
            --cross-file "cross/$arch.ini" -Dwerror=true || return
    fi
    meson compile -C "build-$arch" -j "$jobs"
}

# qemu_run ARCH COMMAND...: runs a binary of ARCH under QEMU user emulation with
# the sysroot's loader and libraries.
qemu_run() {
    local arch=$1; shift
    local qemu
    case $arch in armhf) qemu='qemu-arm-static' ;; arm64) qemu='qemu-aarch64-static' ;; esac
    "$qemu" -L ".sysroot/$arch" "$@"
}

# ---------------------------------------------------------------- demo

demo_version() {
    step "berth version (x86_64, build/berth)"
    build/berth version
}

demo_arm() {
    build_cross armhf
    step "berth version (armhf, under qemu-arm)"
    qemu_run armhf build-armhf/berth version
    step "file build-armhf/berth"
    file build-armhf/berth
}

# A busybox container run by berth as an OCI runtime: a bundle made of
# Debian's busybox-static and the config.json `berth spec` writes.
demo_container() {
    step "a busybox container run by berth (berth spec + berth run)"
    local tmp
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bundle/rootfs/bin"
    cp /bin/busybox "$tmp/bundle/rootfs/bin/busybox"
    for applet in sh echo uname id hostname cat; do ln -s busybox "$tmp/bundle/rootfs/bin/$applet"; done
    (cd "$tmp/bundle" && "$OLDPWD/build/berth" spec)
    jq '.process.terminal = false
        | .process.args = ["/bin/sh", "-c", "echo hello from a berth container; id; hostname; uname -m"]' \
        "$tmp/bundle/config.json" > "$tmp/config.json"
    mv "$tmp/config.json" "$tmp/bundle/config.json"
    local rc=0
    build/berth --root "$tmp/state" run --bundle "$tmp/bundle" berth-demo || rc=$?
    rm -rf "$tmp"
    return "$rc"
}

demo() {
    deps
    build_native
    demo_version
    demo_container
    demo_arm
}

# ---------------------------------------------------------------- test

tested_dirs=()
build_failures=0

# run_tests DIR [meson test options]: runs DIR's tests; the summary reads
# DIR/meson-logs/testlog.json afterwards.
run_tests() {
    local dir=$1; shift
    step "meson test -C $dir $*"
    rm -f "$dir/meson-logs/testlog.json"
    tested_dirs+=("$dir")
    meson test -C "$dir" --print-errorlogs "$@" || true
}

# Prints `N passed, N failed, N skipped` over every suite of every build dir
# tested; a build that failed counts as one failure. Returns 1 if any failed.
summary() {
    /usr/bin/python3 - "$build_failures" "${tested_dirs[@]}" <<'PY'
import json, os, sys
passed, failed, skipped = 0, int(sys.argv[1]), 0
for d in sys.argv[2:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"{d}: no test log (meson test did not run)")
        failed += 1
        continue
    for line in open(log):
        if not line.strip():
            continue
        r = json.loads(line)["result"]
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"{d}: {json.loads(line)['name']}: {r}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed else 0)
PY
}

test_all() {
    local setup=()
    if [ "${1:-}" = --slow ]; then
        BERTH_SLOW_TESTS=1
    elif [ -n "${1:-}" ]; then
        echo "usage: ./run.sh test [--slow]" >&2; exit 2
    fi
    [ "${BERTH_SLOW_TESTS:-0}" = 1 ] && setup=(--setup slow)
    export BERTH_SLOW_TESTS=${BERTH_SLOW_TESTS:-0}

    deps
    if build_native; then
        run_tests build "${setup[@]}"
    else
        echo "run.sh: native build failed"; build_failures=$((build_failures + 1))
    fi
    local arch
    for arch in $cross_arches; do
        if build_cross "$arch"; then
            run_tests "build-$arch" "${setup[@]}"
        else
            echo "run.sh: $arch build failed"; build_failures=$((build_failures + 1))
        fi
    done
    step "summary"
    summary
}

# ---------------------------------------------------------------- main

case ${1:-} in
    demo) shift; [ $# -eq 0 ] || die "usage: ./run.sh demo"; demo ;;
    test) shift; test_all "$@" ;;
    deps) deps ;;
    *) echo "usage: ./run.sh demo | test [--slow] | deps" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# berth's entry points on a fresh Debian 12 machine (run as root, or with sudo
# available for apt-get). Each command installs what it needs first.
#
#   ./run.sh demo [PART]    build berth and run its main job, the sensor-update story
#                           (examples/demo/sensor_story.py): sensor 1.0, 2.0, 3.0 built for armhf
#                           with `berth build` under QEMU, pushed and signed to a local registry;
#                           a fleet channel (berth fleet, nginx); an emulated armhf gateway
#                           (qemu-system-arm, berth as PID 1) that follows it: 2.0 committed, a
#                           broken 3.0 rolled back, a replayed 1.0 refused. PART runs one of the
#                           earlier demos instead: `images` (a signed busybox image pushed, pulled,
#                           verified and run; the device daemon's updates; the offline import),
#                           `runtime` (a bundle run as podman would, runc mode), `arm` (the
#                           cross builds under qemu-user), `all` (the story, then the three)
#   ./run.sh test [--slow]  build natively and for armhf (arm64 too with BERTH_CROSS), with the
#                           test hooks (-Dtest_hooks=true), then run every test: natively, under qemu-user, and the armhf berth booted on a real
#                           kernel in qemu-system-arm (qemu-tests/); print one summary line
#                           `N passed, N failed, N skipped`; exit 1 if any failed
#   ./run.sh deps           only install the Debian packages listed in .ci/packages
#
# Environment:
#   BERTH_SLOW_TESTS=1   same as --slow: also run the 'slow' suite (see meson.build)
#   BERTH_CROSS="armhf arm64"  the cross builds `test` makes and `demo arm` runs under QEMU
#                        (default: "armhf", which keeps CI near 15 minutes on 2 cores;
#                        empty: native only; the story always builds armhf, its gateway's)
#   BERTH_JOBS=N         parallel compile jobs (default: number of CPUs)
#   BERTH_BUILD_DIR=DIR  the native build directory (default: build)
#
# Build directories: build/ (native), build-armhf/, build-arm64/; sysroots in
# .sysroot/ (cross/build-sysroot.sh). All are reused when they exist.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive

jobs=${BERTH_JOBS:-$(nproc)}
cross_arches=${BERTH_CROSS-armhf}
native=${BERTH_BUILD_DIR:-build}

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

# The test hooks (BERTH_FAILPOINTS, BERTH_DISABLE_SYSCALLS read from the
# environment) are compiled in for `test` only; `demo` builds as a device
# would run berth, without them.
test_hooks=false

build_native() {
    step "native build ($native/, test_hooks=$test_hooks)"
    # (Called in `if`, where set -e does not apply: hence the `|| return`.)
    if [ -f "$native/build.ninja" ]; then
        # (--reconfigure, not `meson configure`: it also knows options added since the setup)
        meson setup --reconfigure "$native" -Dwerror=true -Dtest_hooks=$test_hooks || return
    else
        meson setup "$native" -Dwerror=true -Dtest_hooks=$test_hooks || return
    fi
    meson compile -C "$native" -j "$jobs"
}

# build_cross ARCH: the sysroot, then build-ARCH/ with cross/ARCH.ini.
build_cross() {
    local arch=$1
    step "sysroot for $arch (.sysroot/$arch)"
    cross/build-sysroot.sh "$arch" || return
    step "cross build for $arch (build-$arch/)"
    if [ -f "build-$arch/build.ninja" ]; then
        meson setup --reconfigure "build-$arch" -Dwerror=true -Dtest_hooks=$test_hooks || return
    else
        meson setup "build-$arch" --cross-file ".sysroot/$arch.ini" \
            --cross-file "cross/$arch.ini" -Dwerror=true -Dtest_hooks=$test_hooks || return
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

berth_bin() { echo "$PWD/$native/berth"; }

demo_version() {
    step "berth version (x86_64, $native/berth)"
    "$(berth_bin)" version
}

demo_arm() {
    local arch qemu
    for arch in $cross_arches; do
        build_cross "$arch"
        case $arch in armhf) qemu='qemu-arm' ;; arm64) qemu='qemu-aarch64' ;; esac
        step "berth version ($arch, under $qemu)"
        qemu_run "$arch" "build-$arch/berth" version
        step "file build-$arch/berth"
        file "build-$arch/berth"
    done
}

# make_image LAYOUT: an OCI image layout made with umoci: tag `1` is
# busybox-static with its applets; tag `unsigned` has another config, so
# another digest, which nobody signs.
make_image() {
    local layout=$1 work r a
    work=$(mktemp -d)
    umoci init --layout "$layout" >/dev/null
    umoci new --image "$layout:1" >/dev/null
    umoci unpack --image "$layout:1" "$work/b" >/dev/null
    r=$work/b/rootfs
    mkdir -p "$r/bin" "$r/etc" "$r/tmp"
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    umoci repack --image "$layout:1" "$work/b" >/dev/null
    # shellcheck disable=SC2016  # expanded in the container
    umoci config --image "$layout:1" --config.cmd /bin/sh --config.cmd -c \
        --config.cmd 'echo "hello from $(hostname), a signed image run by berth on $(uname -m)"' >/dev/null
    umoci config --image "$layout:1" --tag unsigned --config.cmd /bin/echo --config.cmd 'never printed' >/dev/null
    umoci gc --layout "$layout"
    rm -rf "$work"
}

# start_registry DIR: Debian's docker-registry on 127.0.0.1, on a free port,
# with its storage in DIR; sets $registry_pid and $registry (host:port).
start_registry() {
    local dir=$1 port
    port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$dir"
    printf '%s\n' 'version: 0.1' 'log: {level: error}' "storage: {filesystem: {rootdirectory: $dir/data}}" \
        "http: {addr: \"127.0.0.1:$port\", secret: berth-demo}" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
    registry_pid=$!
    registry=127.0.0.1:$port
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
        kill -0 "$registry_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/registry.log" >&2
    die "docker-registry did not start"
}

# demo_revision VERSION SENSOR_SCRIPT HEALTH_PATH: an update manifest for the
# demo's app revision: `sensor` appends readings to its volume, `web`
# (depends on sensor) serves them over http on 127.0.0.1:8080, checked by
# an http health check on HEALTH_PATH. Both from the signed image, pinned
# by digest. Uses $digest and $registry of demo_images.
demo_revision() {
    local version=$1 sensor=$2 health=$3
    jq -n --argjson v "$version" --arg img "$registry/demo/busybox@$digest" --arg sensor "$sensor" --arg health "$health" '{
      version: $v, name: "sensor app \($v).0", health_window: "30s",
      containers: [
        {name: "sensor", image: $img, restart: "always", stop_grace: "2s",
         volumes: [{name: "readings", path: "/data"}],
         args: ["/bin/sh", "-c", "trap \"exit 0\" TERM; while :; do \($sensor) >> /data/readings; tail -n 1 /data/readings; sleep 1; done"]},
        {name: "web", image: $img, restart: "always", depends_on: ["sensor"], stop_grace: "2s",
         volumes: [{name: "readings", path: "/data", readonly: true}],
         args: ["/bin/sh", "-c", "trap \"exit 0\" TERM; mkdir -p /tmp/www; ln -sf /data/readings /tmp/www/readings; httpd -p 127.0.0.1:8080 -h /tmp/www; while :; do sleep 1; done"],
         health: {kind: "http", port: 8080, path: $health, interval: "500ms", timeout: "2s", retries: 3}}]}'
}

# The device's side of the story (DESIGN.md): berth daemon supervises the
# app revision; sensor 1.0 reads temperature, 2.0 also humidity and is
# committed once healthy; a broken 3.0 fails its health check and is rolled
# back by itself; a replayed 1.0 is refused (downgrade).
demo_daemon() {
    local run=$tmp/run dev=$tmp/device rc
    d() { "$berth" --root "$run" --store "$dev" "$@"; }
    digest=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "1") | .digest' "$tmp/layout/index.json")

    step "berth daemon: the device's supervisor (PID 1 on a box; here a subreaper), images under the same policy"
    mkdir -p "$dev"
    "$berth" --root "$run" daemon --store "$dev" --policy "$policy" &
    daemon_pid=$!
    for _ in $(seq 100); do d daemon status >/dev/null 2>&1 && break; sleep 0.1; done
    d daemon status

    step "update to sensor 1.0 (temperature): staged, started in dependency order, committed once healthy"
    demo_revision 1 'echo "temperature 21.5"' /readings | d update apply -
    d ps

    step "update to sensor 2.0 (temperature and humidity): pulled while 1.0 runs, switched, committed"
    demo_revision 2 'echo "temperature 21.5 humidity 40"' /readings | d update apply -
    sleep 1
    d logs --tail 2 sensor

    step "a broken 3.0 (its health check fails): rolled back to 2.0 by the device itself"
    rc=0
    demo_revision 3 'echo "temperature 21.5 humidity 40 pressure 1013"' /missing | d update apply - || rc=$?
    [ "$rc" -ne 0 ] || die "the broken revision was committed"
    d ps

    step "a replayed 1.0 is refused (the version only grows); 2.0 keeps running"
    rc=0
    demo_revision 1 'echo "temperature 21.5"' /readings | d update apply - || rc=$?
    [ "$rc" -ne 0 ] || die "the downgrade was applied"
    d update history
    d update status

    step "berth system poweroff: containers stopped in reverse dependency order, the daemon exits"
    d system poweroff
    wait "$daemon_pid"
    daemon_pid=
}

# berth's main job: a signed image from a registry to a running container,
# and the offline path (an OCI layout imported). A subshell whose EXIT trap
# stops the registry and removes every container and file it made, whether
# the demo succeeds or fails.
demo_images() (
    berth=$(berth_bin)
    tmp=$(mktemp -d /tmp/berth-demo.XXXXXX)
    registry_pid=
    daemon_pid=
    # shellcheck disable=SC2317  # called by the trap
    cleanup() {
        set +e
        if [ -n "$daemon_pid" ]; then kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null; fi
        for root in "$tmp/state" "$tmp/run/runtime"; do
            for id in $("$berth" --root "$root" list -q 2>/dev/null); do "$berth" --root "$root" delete -f "$id"; done
        done
        awk -v t="$tmp/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l
        if [ -n "$registry_pid" ]; then kill "$registry_pid"; wait "$registry_pid" 2>/dev/null; fi
        rm -rf "$tmp"
    }
    trap cleanup EXIT
    b() { "$berth" --root "$tmp/state" "$@"; }

    step "a busybox OCI image from /bin/busybox (umoci), a local docker-registry, an ECDSA P-256 key (openssl)"
    make_image "$tmp/layout"
    start_registry "$tmp/registry"
    echo "docker-registry listening on $registry, storage in $tmp/registry/data"
    openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key.pem"
    openssl ec -in "$tmp/key.pem" -pubout -out "$tmp/key.pub" 2>/dev/null
    image=$registry/demo/busybox:1

    step "berth image push, berth image sign (cosign simple signing)"
    b image push --quiet "oci:$tmp/layout:1" "$image"
    b image push --quiet "oci:$tmp/layout:unsigned" "$registry/demo/busybox:unsigned"
    b image sign --quiet --key "$tmp/key.pem" "$image"

    step "the trust policy: images of $registry/demo must be signed by that key; nothing else runs"
    policy=$tmp/policy.json
    printf '%s\n' '{"default": [{"type": "reject"}],' \
        " \"transports\": {\"docker\": {\"$registry/demo\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"$tmp/key.pub\"}]}}}" \
        >"$policy"
    cat "$policy"
    b image verify --quiet --policy "$policy" "$image"

    step "berth run --rm $image: pull, verify, unpack, run, all in one process"
    b run --rm --store "$tmp/store" --policy "$policy" "$image"

    step "an unsigned image does not run (refused before any layer is fetched)"
    if b run --rm --store "$tmp/store" --policy "$policy" --quiet "$registry/demo/busybox:unsigned"; then
        die "the unsigned image ran"
    fi

    step "a command, its exit code; without --rm the container stays until berth delete"
    rc=0
    b run --name demo-kept --store "$tmp/store" --policy "$policy" --quiet "$image" \
        sh -c 'echo "a command of mine, exiting with 3"; exit 3' || rc=$?
    echo "berth run exited with $rc"
    b list
    b delete demo-kept

    demo_daemon

    step "offline: berth image import of the OCI layout directory, then berth run (no registry)"
    b --root "$tmp/offline" image import --ref-name 1 "$tmp/layout" localhost/demo/busybox:1
    if b run --rm --store "$tmp/offline" --quiet localhost/demo/busybox:1; then
        die "the device default policy let an unsigned image run"
    fi
    echo "(the device default refused it: no policy file, no key under $tmp/offline/trust)"
    echo '{"default": [{"type": "reject"}], "transports": {"docker": {"localhost/demo": [{"type": "insecureAcceptAnything"}]}}}' \
        | tee "$tmp/offline/policy.json"
    b run --rm --store "$tmp/offline" --quiet localhost/demo/busybox:1 echo "hello from an imported image, run offline"
)

# The runtime as podman and containerd use it (runc mode): a bundle made of
# Debian's busybox-static and the config.json `berth spec` writes.
demo_container() {
    step "a bundle run by berth as an OCI runtime (berth spec; berth run --bundle DIR ID)"
    local tmp berth
    berth=$(berth_bin)
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bundle/rootfs/bin"
    cp /bin/busybox "$tmp/bundle/rootfs/bin/busybox"
    for applet in sh echo uname id hostname cat; do ln -s busybox "$tmp/bundle/rootfs/bin/$applet"; done
    (cd "$tmp/bundle" && "$berth" spec)
    jq '.process.terminal = false
        | .process.args = ["/bin/sh", "-c", "echo hello from a berth container; id; hostname; uname -m"]' \
        "$tmp/bundle/config.json" > "$tmp/config.json"
    mv "$tmp/config.json" "$tmp/bundle/config.json"
    local rc=0
    "$berth" --root "$tmp/state" run --bundle "$tmp/bundle" berth-demo || rc=$?
    rm -rf "$tmp"
    return "$rc"
}

# The sensor-update story (issue 13's main job). Each piece it needs is
# built or fetched first; one that fails to build is left out, and the story
# says what it cannot show and goes on with the rest.
demo_story() {
    local armhf_berth=$PWD/build-armhf/berth
    if ! build_cross armhf; then
        echo "run.sh: the armhf build failed: the story runs without its gateway"
        armhf_berth=$PWD/build-armhf/berth.missing
    fi
    step "the gateway's kernel (.sysroot/armhf-kernel) and the busybox base image (.sysroot/images/busybox)"
    qemu-tests/fetch-kernel.sh armhf || echo "run.sh: fetching the armhf kernel failed"
    cross/make-base-image.sh busybox armhf || echo "run.sh: making the busybox base image failed"
    step "the sensor-update story (examples/demo/sensor_story.py)"
    /usr/bin/python3 examples/demo/sensor_story.py --berth "$(berth_bin)" --armhf-berth "$armhf_berth"
}

demo() {
    local part=${1:-story}
    case $part in
        story|images|runtime|arm|all) ;;
        *) die "usage: ./run.sh demo [story|images|runtime|arm|all]" ;;
    esac
    deps
    build_native
    demo_version
    case $part in
        story) demo_story ;;
        images) demo_images ;;
        runtime) demo_container ;;
        arm) demo_arm ;;
        all) demo_story; demo_images; demo_container; demo_arm ;;
    esac
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
    test_hooks=true
    # Every build before any test: the native run's qemu-system tests
    # (qemu-tests/) boot the armhf berth built here, named in
    # BERTH_QEMU_ARMHF_BERTH (left empty when armhf is not built: they skip),
    # and the arm64 board's test the arm64 one (BERTH_QEMU_ARM64_BERTH).
    local native_ok=0 arch built=()
    export BERTH_QEMU_ARMHF_BERTH= BERTH_QEMU_ARM64_BERTH=
    if build_native; then
        native_ok=1
    else
        echo "run.sh: native build failed"; build_failures=$((build_failures + 1))
    fi
    for arch in $cross_arches; do
        if build_cross "$arch"; then
            built+=("$arch")
        else
            echo "run.sh: $arch build failed"; build_failures=$((build_failures + 1))
        fi
    done
    if [[ " ${built[*]} " == *" armhf "* ]]; then
        BERTH_QEMU_ARMHF_BERTH=$PWD/build-armhf/berth
        step "kernel for the qemu-system tests (.sysroot/armhf-kernel)"
        qemu-tests/fetch-kernel.sh armhf ||
            { echo "run.sh: fetching the armhf kernel failed"; build_failures=$((build_failures + 1)); }
        if [ "$BERTH_SLOW_TESTS" = 1 ]; then
            step "Debian 11's kernel for the slow qemu-system tests (.sysroot/armhf-5.10-kernel)"
            qemu-tests/fetch-kernel.sh armhf-5.10 ||
                { echo "run.sh: fetching the 5.10 kernel failed"; build_failures=$((build_failures + 1)); }
        fi
    fi
    if [[ " ${built[*]} " == *" arm64 "* ]] && [ "$BERTH_SLOW_TESTS" = 1 ]; then
        BERTH_QEMU_ARM64_BERTH=$PWD/build-arm64/berth
        step "kernel for the arm64 board's test (.sysroot/arm64-kernel)"
        qemu-tests/fetch-kernel.sh arm64 ||
            { echo "run.sh: fetching the arm64 kernel failed"; build_failures=$((build_failures + 1)); }
    fi
    [ "$native_ok" = 1 ] && run_tests "$native" "${setup[@]}"
    for arch in "${built[@]}"; do
        run_tests "build-$arch" "${setup[@]}"
    done
    step "summary"
    summary
}

# ---------------------------------------------------------------- main

case ${1:-} in
    demo) shift; [ $# -le 1 ] || die "usage: ./run.sh demo [story|images|runtime|arm|all]"; demo "$@" ;;
    test) shift; test_all "$@" ;;
    deps) deps ;;
    *) echo "usage: ./run.sh demo [story|images|runtime|arm|all] | test [--slow] | deps" >&2; exit 2 ;;
esac

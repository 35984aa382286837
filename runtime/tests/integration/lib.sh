# Shared helpers of the runtime integration tests (sourced).
#
# A script is a list of test cases, one behaviour each: shell functions named
# t_NAME (NAME with '_' for '-'), run by `run_cases` at the end of the script
# (cases.sh: SCRIPT --list | SCRIPT BERTH [CASE]; meson registers one test per
# case: runtime-lifecycle/kill-stops, ...).
#
# Each case makes its bundles in a temporary directory on a busybox-static
# rootfs (shared_rootfs), uses its own --root, and removes everything
# (containers, state, the temporary tree) on exit. Cases need root and exit 77 (skipped) without
# it, or with `skip REASON` when the host lacks what they check.
set -u
. "$(dirname "$0")/cases.sh"
BERTH=${1:?usage: $0 BERTH [CASE] | $0 --list}
CASE=${2:-}
case $BERTH in /*) ;; *) BERTH=$PWD/$BERTH ;; esac
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
fail=0

skip() { echo "SKIP: $*"; exit 77; }
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

b() { "$BERTH" --root "$ROOT" "$@"; }

# state_field ID FIELD: one number or string field of `berth state ID`
# (sed, not python: it runs in most cases).
state_field() { b state "$1" | sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\).*/\1/p"; }

# wait_for SECONDS COMMAND...: polls COMMAND every 20 ms until it succeeds
# (0) or SECONDS have passed (1).
wait_for() {
    _deadline=$(($(date +%s%N) / 1000000 + $1 * 1000)); shift
    until "$@"; do
        [ $(($(date +%s%N) / 1000000)) -ge $_deadline ] && return 1
        sleep 0.02
    done
}
# status_is ID STATUS: the container's state says STATUS.
status_is() { b state "$1" 2>/dev/null | grep -q "\"status\": \"$2\""; }

# make_rootfs DIR: busybox-static with its applets as symlinks.
make_rootfs() {
    file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || BUSYBOX=/bin/busybox
    file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || skip "needs busybox-static"
    mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/etc" "$1/tmp" "$1/root"
    cp "$BUSYBOX" "$1/bin/busybox"
    "$1/bin/busybox" --list | $PY -c '
import os, sys
d = sys.argv[1]
for a in sys.stdin.read().split():
    if not os.path.lexists(os.path.join(d, a)): os.symlink("busybox", os.path.join(d, a))' "$1/bin"
    echo "root:x:0:0:root:/root:/bin/sh" >"$1/etc/passwd"
    # The in-container checker (runtime/tests/checker), when it was built.
    [ -n "$CHECKER" ] && cp "$CHECKER" "$1/bin/berth-check"
    return 0
}

# make_bundle DIR PYTHON-EDIT ARGS...: a runc-like default config.json with
# ARGS as process.args; PYTHON-EDIT is python code that may change `c`.
make_bundle() {
    dir=$1 edit=$2; shift 2
    mkdir -p "$dir"
    [ -e "$dir/rootfs" ] || ln -s "$ROOTFS" "$dir/rootfs"
    $PY - "$dir" "$edit" "$@" <<'PYEOF'
import json, sys
d, edit, args = sys.argv[1], sys.argv[2], sys.argv[3:]
caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
c = {
 "ociVersion": "1.0.2",
 "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
   "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
   "cwd": "/", "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
   "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True},
 "root": {"path": "rootfs", "readonly": True},
 "hostname": "berth-test",
 "mounts": [
   {"destination": "/proc", "type": "proc", "source": "proc"},
   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
   {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
   {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
   {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
   {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
   {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}],
 "linux": {
   "resources": {"devices": [{"allow": False, "access": "rwm"}]},
   "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
   "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                   "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
   "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]}}
exec(edit)
json.dump(c, open(d + "/config.json", "w"), indent=1)
PYEOF
}

# snapshot FILE: the host mounts and cgroups this case could leave behind
# (mount points under its temporary dir or rootfs, or naming its run id;
# others come and go with whatever else runs on the host), to compare
# before/after failures.
snapshot() {
    { awk '{print $5}' /proc/self/mountinfo | grep -F -e "$TMP" -e "$ROOTFS" -e "$RUN_ID" | sort
      find /sys/fs/cgroup -maxdepth 3 -type d -name "*$RUN_ID*" 2>/dev/null | sort; } >"$1"
}

# cleanup (on exit): $case_cleanup (what a case set up outside berth), the
# containers, the temporary tree.
cleanup() {
    [ -n "${case_cleanup:-}" ] && eval "$case_cleanup"
    for _id in $("$BERTH" --root "$ROOT" list -q 2>/dev/null); do "$BERTH" --root "$ROOT" delete -f "$_id" >/dev/null 2>&1; done
    rm -rf "$TMP"
}

# run_cases: the last line of every script. Runs CASE.
run_cases() {
    _fn=$(case_function "$CASE") || exit 2
    setup
    shared_rootfs
    "$_fn"
    [ $fail = 0 ] && echo "passed: $CASE"
    exit $fail
}

# setup: root, busybox, the checker, the temporary tree and its cleanup.
setup() {
    [ "$(id -u)" = 0 ] || skip "needs root"
    BUSYBOX=$(command -v busybox || echo /bin/busybox)
    # The static in-container checker beside berth in the build tree (empty: not built).
    CHECKER=${BERTH_CHECK:-$(dirname "$BERTH")/../runtime/tests/berth-check}
    [ -x "$CHECKER" ] || CHECKER=
    TMP=$(mktemp -d /tmp/berth-it.XXXXXX)
    chmod 755 "$TMP"  # a user namespace's root (an unmapped host uid) must reach the rootfs
    ROOT=$TMP/state
    RUN_ID=$(basename "$TMP" | tr -cd 'a-zA-Z0-9')
    trap cleanup EXIT
    trap 'exit 1' INT TERM HUP PIPE  # runs the EXIT trap too
}

# shared_rootfs: ROOTFS is $BERTH_IT_CACHE/rootfs (meson gives a folder in the
# build dir), made once for all cases and again when busybox or the checker
# change: a rootfs costs ~0.5 s of symlinks, more than most cases. Without
# BERTH_IT_CACHE (a script run by hand), a fresh one in $TMP. Cases read it
# only; a case whose container writes to its rootfs, or creates mount points
# or a cwd in it, calls private_rootfs first.
shared_rootfs() {
    [ -n "${BERTH_IT_CACHE:-}" ] || { private_rootfs; return; }
    mkdir -p "$BERTH_IT_CACHE"
    _stamp=$(stat -L -c '%n %s %Y' "$BUSYBOX" ${CHECKER:+"$CHECKER"} | tr '\n' ' ')
    exec 9>"$BERTH_IT_CACHE/.lock"
    flock 9
    if [ "$(cat "$BERTH_IT_CACHE/stamp" 2>/dev/null)" != "$_stamp" ]; then
        rm -rf "$BERTH_IT_CACHE/rootfs" "$BERTH_IT_CACHE/new"
        make_rootfs "$BERTH_IT_CACHE/new" && mv "$BERTH_IT_CACHE/new" "$BERTH_IT_CACHE/rootfs" \
            && echo "$_stamp" >"$BERTH_IT_CACHE/stamp"
    fi
    exec 9>&-
    ROOTFS=$BERTH_IT_CACHE/rootfs
}
private_rootfs() { ROOTFS=$TMP/rootfs; [ -d "$ROOTFS" ] || make_rootfs "$ROOTFS"; }

# need_checker: skips the case when the static checker was not built.
need_checker() { [ -n "$CHECKER" ] || skip "berth-check (runtime/tests/checker) was not built"; }

# A script without t_ cases (SCRIPT BERTH) runs as one piece, as the scripts
# did before cases: set up now, on a rootfs of its own, and end with finish.
# scanner_setup ID: for the CVE-2019-5736 tests (exe_protect*_test.sh): the
# attacker (../exe_scanner.c) built static into $TMP/out, berth copied to
# $TMP/bin so a failure corrupts only the copy, its sum and identity in
# $sum and $devino, the container id $RUN_ID-ID in $id.
scanner_setup() {
    CC=$(command -v cc || command -v gcc || true)
    [ -n "$CC" ] || skip "needs a C compiler for the attacker program"
    mkdir -p "$TMP/bin" "$TMP/out"
    "$CC" -static -O2 -o "$TMP/out/exe_scanner" "$(dirname "$0")/../exe_scanner.c" 2>"$TMP/cc.log" \
        || skip "cannot build a static program: $(head -c 300 "$TMP/cc.log")"
    cp "$BERTH" "$TMP/bin/berth"
    BERTH=$TMP/bin/berth
    sum=$(sha256sum "$BERTH" | cut -d' ' -f1)
    devino=$(stat -L -c '%d %i' "$BERTH")
    id=$RUN_ID-$1
}

finish() { [ $fail = 0 ] && echo "all passed"; exit $fail; }
if [ -z "$CASE" ]; then
    setup
    private_rootfs
fi

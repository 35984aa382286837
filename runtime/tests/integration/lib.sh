# Shared helpers of the runtime integration tests (sourced).
#
# Each test builds its own busybox-static rootfs and bundles in a temporary
# directory, uses its own --root, and removes everything (containers, state,
# the temporary tree) on exit. Tests need root and exit 77 (skipped) without it.
set -u
BERTH=${1:?usage: $0 BERTH}
case $BERTH in /*) ;; *) BERTH=$PWD/$BERTH ;; esac
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
fail=0
TMP=$(mktemp -d /tmp/berth-it.XXXXXX)
chmod 755 "$TMP"  # a user namespace's root (an unmapped host uid) must reach the rootfs
ROOT=$TMP/state
RUN_ID=$(basename "$TMP" | tr -cd 'a-zA-Z0-9')

skip() { echo "SKIP: $*"; rm -rf "$TMP"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root"
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] && file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || skip "needs busybox-static"

cleanup() {
    for id in $("$BERTH" --root "$ROOT" list -q 2>/dev/null); do "$BERTH" --root "$ROOT" delete -f "$id" >/dev/null 2>&1; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE  # runs the EXIT trap too

ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
finish() { [ $fail = 0 ] && echo "all passed"; exit $fail; }

# make_rootfs DIR: busybox-static with its applets as symlinks.
make_rootfs() {
    mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/etc" "$1/tmp" "$1/root"
    cp "$BUSYBOX" "$1/bin/busybox"
    for a in $("$1/bin/busybox" --list); do [ -e "$1/bin/$a" ] || ln -s busybox "$1/bin/$a"; done
    echo "root:x:0:0:root:/root:/bin/sh" >"$1/etc/passwd"
}
ROOTFS=$TMP/rootfs
make_rootfs "$ROOTFS"

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

b() { "$BERTH" --root "$ROOT" "$@"; }

# snapshot: host mounts and cgroups, to compare before/after failures.
snapshot() {
    { awk '{print $5}' /proc/self/mountinfo | grep -v berth-exe | sort; find /sys/fs/cgroup -maxdepth 3 -type d -name "*$RUN_ID*" 2>/dev/null | sort; } >"$1"
}

#!/usr/bin/env bash
# The device daemon's costs, measured on a real `berth daemon` (subreaper,
# temporary store and run directory, Debian's docker-registry on 127.0.0.1
# holding a busybox image; needs root):
#
#   idle RSS      VmRSS of the daemon supervising 5 containers, after 5 s idle
#                 (goal <= 3 MiB; balena-supervisor idles at 85 MB)
#   restarts      a container that exits 1 after 20 ms, restarted without backoff
#                 (BERTH_RESTART_BACKOFF_MS=0, read by test builds only,
#                 -Dtest_hooks=true): RSS after RESTARTS restarts (default
#                 10000) against RSS after the first 100 (goal: < 5 % growth),
#                 and the restart latency from the container's exit to its
#                 next start (the kernel's proc connector timestamps: exit
#                 event -> exec of the next container process), p50 and p99
#   crash CPU     the same container with the real backoff (100 ms doubling
#                 to 60 s): the CPU the daemon and its children use over
#                 CRASH_S seconds (default 120) once it is crash-looping
#                 (goal <= 1 %)
#
#   bench/daemon.sh            (BERTH=/path/to/berth, RESTARTS=N, CRASH_S=S)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "daemon.sh: needs root" >&2; exit 1; }
. "$here/bundle.sh"
berth=$(find_berth)
exec /usr/bin/python3 - "$berth" "$here/../src/tests" <<'PY'
import json, os, socket, struct, sys, threading, time
sys.argv = [sys.argv[0], sys.argv[1]] + sys.argv[2:]
sys.path.insert(0, sys.argv[2])
from daemon_lib import DaemonEnv, poll, sh_service, service

RESTARTS = int(os.environ.get("RESTARTS", "10000"))
CRASH_S = int(os.environ.get("CRASH_S", "120"))


def status_kib(pid, field, path="status"):
    for line in open(f"/proc/{pid}/{path}"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15])  # utime stime cutime cstime


class ProcEvents:
    """The kernel's proc connector: exec and exit events with timestamps (ns)."""

    def __init__(self, marker):
        self.marker = marker.encode()
        self.s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 11)  # NETLINK_CONNECTOR
        self.s.bind((0, 1))  # CN_IDX_PROC
        op = struct.pack("I", 1)  # PROC_CN_MCAST_LISTEN
        cn = struct.pack("IIIIHH", 1, 1, 0, 0, len(op), 0) + op
        self.s.send(struct.pack("IHHII", 16 + len(cn), 3, 0, 0, 0) + cn)
        self.ours = set()
        self.start_of = {}  # tgid -> its last exec (berth's init execs the dmz, then the app: same tgid)
        self.exits = []
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.stop:
            data = self.s.recv(65536)
            what, _, ts = struct.unpack_from("IIQ", data, 36)
            if what == 0x2:  # exec
                pid, tgid = struct.unpack_from("ii", data, 52)
                try:
                    if self.marker in open(f"/proc/{tgid}/cmdline", "rb").read():
                        self.ours.add(tgid)
                        self.start_of[tgid] = ts
                except OSError:
                    pass
            elif what == 0x80000000:  # exit
                pid, tgid = struct.unpack_from("ii", data, 52)
                if pid == tgid and tgid in self.ours:
                    self.ours.discard(tgid)
                    self.exits.append(ts)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


env = DaemonEnv("berth-bench-daemon-")
try:
    # ---- idle RSS with 5 containers
    assert env.start_daemon(), "the daemon does not start"
    five = [sh_service(f"idle{i}", env.image, "while :; do busybox sleep 3600; done", restart="always", stop_grace="1s")
            for i in range(5)]
    r = env.apply(env.manifest(1, five, window="30s"))
    assert r.returncode == 0, r.stderr
    time.sleep(5)
    pid = env.daemon.pid
    print(f"idle RSS with 5 containers: {rss_kib(pid) / 1024:.2f} MiB (goal <= 3 MiB); of it anonymous "
          f"{status_kib(pid, 'RssAnon') / 1024:.2f} MiB, files (libc, berth, libcrypto ... shared) "
          f"{status_kib(pid, 'RssFile') / 1024:.2f} MiB; PSS {status_kib(pid, 'Pss', 'smaps_rollup') / 1024:.2f} MiB",
          flush=True)
    env.stop_daemon()

    # ---- 10,000 restarts without backoff: RSS and latency. The container
    # runs until a file appears in its volume, then exits 1 at every start:
    # committed first (a TRYING revision that crash-loops rolls back).
    vol = [{"name": "bench", "path": "/data"}]
    crash = service("crash", env.image, ["/bin/sh", "-c", "[ -e /data/crash ] && { busybox usleep 20000; exit 1; }; trap 'exit 0' TERM; "
                                         "while :; do busybox sleep 1; done", "crashbench"],
                    restart="always", stop_grace="1s", volumes=vol)
    os.environ["BERTH_RESTART_BACKOFF_MS"] = "0"
    assert env.start_daemon(), "the daemon does not start"
    os.environ.pop("BERTH_RESTART_BACKOFF_MS")
    pid = env.daemon.pid
    r = env.apply(env.manifest(2, [crash], window="30s"))
    assert r.returncode == 0, r.stderr
    ev = ProcEvents("crashbench")
    open(os.path.join(env.store, "volumes", "bench", "crash"), "w").close()
    os.kill(env.containers()["crash.r2"][1], 9)
    t0 = time.monotonic()
    rss100 = None
    while RESTARTS and len(ev.start_of) < RESTARTS:
        if rss100 is None and len(ev.start_of) >= 100:
            rss100 = rss_kib(pid)
        if time.monotonic() - t0 > 3600:
            break
        time.sleep(0.5)
    rss_end = rss_kib(pid)
    n = len(ev.start_of)
    lat = []
    exits = sorted(ev.exits)
    starts = sorted(ev.start_of.values())
    j = 0
    for e in exits:
        while j < len(starts) and starts[j] <= e:
            j += 1
        if j < len(starts):
            lat.append((starts[j] - e) / 1e6)
    el = time.monotonic() - t0
    print(f"restarts: {n} in {el:.0f} s ({n / el:.1f}/s)")
    print(f"RSS after 100 restarts: {(rss100 or 0) / 1024:.2f} MiB, after {n}: {rss_end / 1024:.2f} MiB "
          f"({(rss_end - (rss100 or rss_end)) * 100.0 / max(rss100 or rss_end, 1):+.1f} %; goal < 5 %)")
    print(f"restart latency exit -> next start: p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms "
          f"over {len(lat)} restarts (with no backoff)", flush=True)
    ev.stop = True

    # ---- crash-loop CPU with the real backoff: a daemon without the knob
    # adopts the crash loop.
    env.kill_daemon()
    assert env.start_daemon()
    pid = env.daemon.pid
    time.sleep(15)  # the backoff has grown past a few seconds
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(CRASH_S)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    hz = os.sysconf("SC_CLK_TCK")
    print(f"crash loop CPU (real backoff, daemon + children, {CRASH_S} s): {(c1 - c0) / hz / (t1 - t0) * 100:.3f} % "
          f"(goal <= 1 %)", flush=True)
finally:
    env.cleanup()
PY

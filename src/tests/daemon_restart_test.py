#!/usr/bin/python3
"""`berth daemon` killed with SIGKILL and started again: its containers keep
running meanwhile, the new daemon adopts them (same pids, no restart), and
no log line is lost: a container numbering its lines 50 times a second has
every number in `berth logs`, in order, including those written while no
daemon ran. Usage: daemon_restart_test.py BERTH"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DaemonEnv, poll, sh_service  # noqa: E402
from remote_lib import Checks  # noqa: E402


def numbers(env):
    r = env.berth("logs", "talker")
    if r.returncode != 0:
        return None
    return [int(line.split()[1]) for line in r.stdout.splitlines() if line.startswith("line ")]


env = DaemonEnv("berth-drestart-")
c = Checks()
try:
    c.ok(env.start_daemon(), "the daemon starts")
    talker = sh_service("talker", env.image, "i=0; while :; do i=$((i+1)); echo line $i; busybox usleep 20000; done",
                        restart="always", stop_grace="1s")
    r = env.apply(env.manifest(1, [talker], window="10s"))
    c.ok(r.returncode == 0, f"revision 1 committed: {r.stdout} {r.stderr}")
    pid = env.containers().get("talker.r1", ("", 0))[1]
    c.ok(poll(lambda: (numbers(env) or [0])[-1] >= 20, 10), "the talker's lines reach berth logs")

    env.kill_daemon()
    c.ok(env.containers().get("talker.r1") == ("running", pid), "SIGKILL of the daemon: the container keeps running")
    log = os.path.join(env.store, "logs", "talker", "current")
    size = os.path.getsize(log) if os.path.exists(log) else 0
    c.ok(poll(lambda: os.path.exists(log) and os.path.getsize(log) > size + 200, 10),
         "the container goes on writing its log while no daemon runs")

    c.ok(env.start_daemon() and env.wait_idle(), "the daemon starts again")
    c.ok(env.containers().get("talker.r1") == ("running", pid), f"it adopted the container (same pid {pid}): {env.containers()}")
    r = env.berth("ps", "--json")
    ps = json.loads(r.stdout) if r.returncode == 0 else []
    c.ok(ps and ps[0]["restarts"] == 0, f"no restart counted: {ps}")
    n0 = (numbers(env) or [0])[-1]
    c.ok(poll(lambda: (numbers(env) or [0])[-1] > n0 + 20, 10), "new lines keep coming after the restart")
    n = numbers(env) or []
    c.ok(n and n == list(range(n[0], n[-1] + 1)) and n[0] == 1, f"no line lost or doubled: {len(n)} lines, 1..{n[-1] if n else 0}")
    r = env.berth("logs", "--tail", "5", "talker")
    c.ok(r.returncode == 0 and len(r.stdout.splitlines()) == 5, f"logs --tail 5: {r.stdout!r}")

    # logs -f streams until the client goes.
    import subprocess
    p = subprocess.Popen([env.exe, "--root", env.run_dir, "logs", "-f", "--tail", "1", "talker"], stdout=subprocess.PIPE,
                         text=True)
    got = [p.stdout.readline() for _ in range(10)]
    p.kill()
    p.wait()
    nums = [int(x.split()[1]) for x in got if x.startswith("line ")]
    c.ok(len(nums) == 10 and nums == list(range(nums[0], nums[0] + 10)), f"logs -f streams new lines in order: {got}")
    st = env.daemon_status()
    c.ok(st and st["containers"] == 1, f"the daemon still answers after the follower went: {st}")
finally:
    env.cleanup()
c.exit()

#!/usr/bin/python3
"""A stop cut short by a daemon crash: the daemon sent a container of the
committed revision its stop signal (an update stopping the old revision)
and was killed before the container exited. The next daemon adopts the
container, which then exits; the supervisor restarts it (an adopted exit
counts as a failure), so the revision runs fully again, with no stray.

This is the moment the random crash loop (daemon_crash_test.py --random)
once caught as "a container of the committed revision missing": between
the exit and the restart the container is gone from the runtime's list,
which is why check_invariant polls for the whole condition.
Usage: daemon_stop_cut_test.py BERTH"""
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DaemonEnv, check_invariant, poll, start_committed  # noqa: E402
from remote_lib import Checks  # noqa: E402

env = DaemonEnv("berth-dstopcut-")
c = Checks()
try:
    start_committed(env, c)
    db = f"{env.db}.r1"
    pid = env.containers().get(db, ("", 0))[1]
    c.ok(pid > 0, f"db runs: {env.containers()}")
    # What the killed daemon did last: db's stop signal (db's shell exits on
    # TERM once its `sleep 1` returns, so after the next daemon adopted it).
    os.kill(pid, signal.SIGTERM)
    env.kill_daemon()
    c.ok(env.start_daemon() and env.wait_idle(), "the daemon starts again")

    def restarted():
        r = env.berth("ps", "--json")
        if r.returncode != 0:
            return None
        s = [x for x in json.loads(r.stdout) if x["id"] == db]
        return s[0] if s and s[0]["restarts"] == 1 and s[0]["pid"] not in (0, pid) else None
    s = poll(restarted, 30)
    c.ok(s is not None, f"db, adopted, exits and is restarted with a new pid: {env.berth('ps').stdout}")
    c.ok(s is not None and "adopted" in s["why"], f"why says the exit was an adopted container's: {s}")
    check_invariant(env, c, [1], "after the restart")
finally:
    env.cleanup()
c.exit()

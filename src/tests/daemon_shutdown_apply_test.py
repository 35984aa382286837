#!/usr/bin/python3
"""SIGTERM to `berth daemon` in the middle of an apply: the daemon stops at
once (within its containers' grace periods), not when the apply would have
ended, and leaves a state the next start finishes: exactly the committed
revision runs again, nothing stray.

The apply is held in the start of the new revision: web depends on db,
whose health check (an http port nothing listens on, probed every 30 s)
keeps it `starting`, so the start waits for it up to the 120 s window.
Usage: daemon_shutdown_apply_test.py BERTH"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DaemonEnv, check_invariant, good_revision, poll, start_committed  # noqa: E402
from remote_lib import Checks  # noqa: E402

env = DaemonEnv("berth-dshutapply-")
c = Checks()
try:
    start_committed(env, c)
    doc = json.loads(good_revision(env, 2, window="120s"))
    doc["containers"][0]["health"] = {"kind": "http", "port": 9, "path": "/", "interval": "30s", "timeout": "1s",
                                      "retries": 3}
    p = subprocess.Popen([env.exe, "--root", env.run_dir, "--store", env.store, "update", "apply", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    p.stdin.write(json.dumps(doc))
    p.stdin.close()
    db2 = f"{env.db}.r2"
    c.ok(poll(lambda: env.containers().get(db2, ("", 0))[0] == "running", 60) is not None,
         f"the apply starts db of revision 2 and waits for it to be healthy: {env.containers()}")
    time.sleep(1)
    c.ok(p.poll() is None, "the apply is still going on")
    t0 = time.monotonic()
    env.daemon.send_signal(signal.SIGTERM)
    try:
        env.daemon.wait(30)
    except subprocess.TimeoutExpired:
        pass
    took = time.monotonic() - t0
    c.ok(env.daemon.poll() is not None and took < 20,
         f"SIGTERM during the apply: the daemon exits within 20 s, not at the end of the window (took {took:.1f} s)")
    env.kill_daemon()
    p.wait(120)
    c.ok(env.containers() == {}, f"no container left running: {env.containers()}")
    c.ok(env.start_daemon() and env.wait_idle(), "the daemon starts again")
    check_invariant(env, c, [1], "after the interrupted apply")
    h = env.berth("update", "history", "--json")
    last = [e for e in json.loads(h.stdout) if e["version"] == 2][-1:] if h.returncode == 0 else []
    c.ok(last and last[0]["event"] == "rolled-back" and "shutting down" in last[0].get("reason", ""),
         f"the history says revision 2 was rolled back as the daemon shut down: {last}")
finally:
    env.cleanup()
c.exit()

#!/usr/bin/python3
"""The test-only failpoint `daemon.hang` blocks the daemon's main loop (what
the watchdog tests use: a hung loop stops feeding the watchdog): armed to
fire on the 3rd heartbeat (one a second), the daemon answers its control
socket at first and no longer after it; SIGTERM cannot end it, SIGKILL
does. Test builds only (-Dtest_hooks=true), else exit 77.
Usage: daemon_hang_test.py BERTH"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

exe = os.path.abspath(sys.argv[1])
if os.geteuid() != 0:
    print("skipped: needs root")
    sys.exit(77)
if "test-hooks" not in subprocess.run([exe, "version"], capture_output=True, text=True).stdout:
    print("skipped: not a test build (-Dtest_hooks=true)")
    sys.exit(77)
failed = 0


def ok(cond, what):
    global failed
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    failed += 0 if cond else 1


def ask(run_dir, timeout):
    """The daemon's answer to daemon-status, or None when none comes in time."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(os.path.join(run_dir, "daemon.sock"))
        s.sendall(b'{"op":"daemon-status"}\n')
        return json.loads(s.makefile().readline())
    except (OSError, ValueError):
        return None
    finally:
        s.close()


tmp = tempfile.mkdtemp(prefix="berth-dhang-")
run_dir = os.path.join(tmp, "run")
env = dict(os.environ, BERTH_FAILPOINTS="daemon.hang=error@3")
p = subprocess.Popen([exe, "--root", run_dir, "daemon", "--store", os.path.join(tmp, "store")], env=env)
try:
    first = None
    end = time.monotonic() + 10
    while first is None and time.monotonic() < end and p.poll() is None:
        first = ask(run_dir, 1)
        time.sleep(0.05)
    ok(first is not None and first.get("ok") is True, f"the daemon answers before the hang: {first}")
    time.sleep(3.5)
    ok(ask(run_dir, 2) is None, "after the 3rd heartbeat its loop hangs: no answer within 2 s")
    p.terminate()
    time.sleep(1)
    ok(p.poll() is None, "a hung loop does not even handle SIGTERM")
    with open(os.path.join(tmp, "store", "daemon.log")) as f:
        ok("daemon.hang" in f.read(), "the daemon logged the failpoint before it hung")
finally:
    p.kill()
    p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{failed} failed" if failed else "all passed")
sys.exit(1 if failed else 0)

#!/usr/bin/python3
"""A main loop blocked past its heartbeat is said in the daemon's log, so a
watchdog reset can be told from a hung loop or a starved machine: the
test-only failpoint `daemon.stall` blocks the loop for 3 s once (right
after the 3rd heartbeat, one a second without a watchdog); the next
heartbeat logs how late it ran (about 2 s), and the daemon goes on
answering. Test builds only (-Dtest_hooks=true), else exit 77.
Usage: daemon_stall_test.py BERTH"""
import json
import os
import re
import shutil
import signal
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

tmp = tempfile.mkdtemp(prefix="berth-daemon-stall-")
store, run = os.path.join(tmp, "store"), os.path.join(tmp, "run")
os.makedirs(store)
log = os.path.join(store, "daemon.log")
env = dict(os.environ, BERTH_FAILPOINTS="daemon.stall=error@3")
d = subprocess.Popen([exe, "--root", run, "daemon", "--store", store], env=env, stdout=subprocess.DEVNULL,
                     stderr=open(os.path.join(tmp, "stderr"), "w"))
failed = 0
try:
    late = None
    end = time.monotonic() + 30
    while time.monotonic() < end and d.poll() is None:
        text = open(log).read() if os.path.exists(log) else ""
        m = re.search(r"the main loop was (\d+) ms late to its heartbeat", text)
        if m:
            late = int(m.group(1))
            break
        time.sleep(0.1)
    if late is None:
        print(f"FAIL: no late heartbeat in the log: {text[-600:]}")
        failed += 1
    elif not 1000 < late < 10000:
        print(f"FAIL: the late heartbeat says {late} ms, the stall was 3 s (1 s late at the least)")
        failed += 1
    else:
        print(f"ok: the log says the loop was {late} ms late to its heartbeat")
    r = subprocess.run([exe, "--root", run, "daemon", "status", "--json"], capture_output=True, text=True)
    if r.returncode != 0 or json.loads(r.stdout).get("pid") != d.pid:
        print(f"FAIL: the daemon does not answer after the stall: {r.stdout} {r.stderr}")
        failed += 1
    else:
        print("ok: the daemon answers after the stall")
    warned = len(re.findall(r"late to its heartbeat", open(log).read()))
    if warned != 1:
        print(f"FAIL: {warned} late heartbeats logged, one stall")
        failed += 1
finally:
    if d.poll() is None:
        d.send_signal(signal.SIGTERM)
        try:
            d.wait(30)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{3 - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)

#!/usr/bin/python3
"""RUN steps that fail leave nothing: a step exiting 3 reports "exit status
3" (its stdout and stderr in the output), a command that does not exist
fails, a step interrupted with SIGTERM or SIGINT is killed at once (a shell
as the container's init ignores both) and reported; after each, no mount,
no container state, no bundle and no cgroup is left. A runner killed with
SIGKILL mid-step leaves its container running; the next runner removes
it (processes, cgroup, state, bundle).
Usage: build_run_cleanup_test.py BERTH BUILD_RUN_STEP"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Setup, busybox_files, tar_layer  # noqa: E402


def wait_for(cond, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def text(path):
    return open(path).read() if os.path.exists(path) else ""


t = Setup("berth-buildrun-cleanup-")
c = Checks()
try:
    lowers = t.image([tar_layer(busybox_files())])

    r, upper, out = t.step(lowers, ["sh", "-c", "echo out; echo err >&2; touch /made; exit 3"])
    c.ok(r.returncode == 1 and "exit status 3" in r.stderr,
         f"a step exiting 3 fails with its exit status: rc={r.returncode} {r.stderr.strip()}")
    c.ok(text(out) == "out\nerr\n", f"its stdout and stderr went to the output: {text(out)!r}")
    c.ok("mounts left: 0" in r.stderr and t.leftovers() == [],
         f"... and it leaves no mount, state, bundle or cgroup: {r.stderr.strip()} {t.leftovers()}")

    r, upper, out = t.step(lowers, ["/bin/no-such-program"])
    c.ok(r.returncode == 1 and "no-such-program" in r.stderr and "mounts left: 0" in r.stderr and t.leftovers() == [],
         f"a missing program fails and leaves nothing: rc={r.returncode} {r.stderr.strip()} {t.leftovers()}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        p, upper, out = t.step(lowers, ["sh", "-c", "echo started; sleep 1000"], wait=False)
        c.ok(wait_for(lambda: text(out) == "started\n"), f"{sig.name}: the step started")
        start = time.monotonic()
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
        took = time.monotonic() - start
        c.ok(p.returncode == 1 and "stopped by" in err and took < 10,
             f"{sig.name} stops the step at once ({took:.2f} s) and fails it: rc={p.returncode} {err.strip()}")
        c.ok("mounts left: 0" in err and t.leftovers() == [],
             f"... leaving no mount, state, bundle or cgroup: {err.strip()} {t.leftovers()}")

    p, upper, out = t.step(lowers, ["sh", "-c", "echo started; sleep 1000"], wait=False)
    c.ok(wait_for(lambda: text(out) == "started\n"), "SIGKILL: the step started")
    p.kill()
    p.communicate(timeout=30)
    left = t.leftovers()
    c.ok(any(x.startswith("run/") for x in left) and any(x.startswith("bundles/") for x in left),
         f"a runner killed with SIGKILL leaves its container: {left}")
    r = t.sweep()
    c.ok(r.returncode == 0 and t.leftovers() == [],
         f"the next runner removes it (state, bundle, cgroup): {r.stderr.strip()} {t.leftovers()}")
finally:
    t.cleanup()
c.exit()

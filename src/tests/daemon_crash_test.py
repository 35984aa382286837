#!/usr/bin/python3
"""The updater's crash loop, from outside: for every failpoint of the updater
(ota/updater.hpp, kFailpoints) and of staging (ota/stage.cpp) an update is
applied by a daemon armed with BERTH_FAILPOINTS=<name>=crash (a good
revision, or one whose health fails for the rollback steps, or one naming a
missing image for the staging cleanup), the daemon (or its staging child)
dies there (SIGKILL, as a power cut), is started again, and the invariant
is checked: exactly the old or the new revision runs, fully, with its
volume's file intact; no stray container, cgroup, mount or bundle; `berth
image fsck` clean.

With --random N (the slow suite): N rounds, each an apply killed with
SIGKILL at a random instant, then the same check.
Usage: daemon_crash_test.py BERTH [--random N]"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DaemonEnv, broken_revision, check_invariant, good_revision, missing_image_revision,  # noqa
                        updater_failpoints)
from remote_lib import Checks  # noqa: E402

rounds = int(sys.argv[sys.argv.index("--random") + 1]) if "--random" in sys.argv else 0
names = updater_failpoints()
if not rounds and not names:
    print("skipped: no failpoints listed in ota/updater.hpp")
    sys.exit(77)

env = DaemonEnv("berth-dcrash-")
c = Checks()
MARKER = "keep me\n"


def revision_for(name, version):
    if "rollback" in name or "rolled-back" in name:
        return broken_revision(env, version, window="5s")
    if "unstaged" in name:
        return missing_image_revision(env, version)
    return good_revision(env, version, window="20s")


try:
    c.ok(env.start_daemon(), "the daemon starts")
    r = env.apply(good_revision(env, 1))
    c.ok(r.returncode == 0, f"revision 1 committed: {r.stderr}")
    with open(os.path.join(env.store, "volumes", "data", "marker"), "w") as f:
        f.write(MARKER)
    env.stop_daemon()
    version = 1
    if not rounds:
        for name in names:
            version += 1
            st0 = env.update_status()
            old = st0["current"]["version"] if st0 and st0["current"] else 1
            c.ok(env.start_daemon(failpoints=f"{name}=crash"), f"{name}: the daemon starts armed")
            r = env.apply(revision_for(name, version))
            time.sleep(0.2)
            print(f"{name}: apply exit {r.returncode}, the daemon {'died' if env.daemon.poll() is not None else 'lives'}",
                  flush=True)
            env.kill_daemon()
            c.ok(env.start_daemon() and env.wait_idle(), f"{name}: the daemon starts again")
            check_invariant(env, c, [old, version], name, marker=MARKER)
            env.stop_daemon()
    else:
        rng = random.Random(int(os.environ.get("BERTH_CRASH_SEED", "0")) or None)
        for i in range(rounds):
            version += 1
            st0 = env.update_status()
            old = st0["current"]["version"] if st0 and st0["current"] else 1
            c.ok(env.start_daemon() and env.wait_idle(), f"round {i}: the daemon starts")
            doc = good_revision(env, version) if rng.random() < 0.6 else broken_revision(env, version, window="3s")
            p = subprocess.Popen([env.exe, "--root", env.run_dir, "--store", env.store, "update", "apply", "-"],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
            p.stdin.write(doc)
            p.stdin.close()
            time.sleep(rng.uniform(0, 8.0))  # past the commit at times (about 5 s here)
            env.kill_daemon()
            p.wait(60)
            c.ok(env.start_daemon() and env.wait_idle(), f"round {i}: the daemon starts again")
            check_invariant(env, c, [old, version], f"round {i}", marker=MARKER)
            env.stop_daemon()
finally:
    env.cleanup()
c.exit()

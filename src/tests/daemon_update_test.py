#!/usr/bin/python3
"""`berth daemon` as a subreaper, end to end, against Debian's docker-registry:
a two-container revision starts in dependency order and its http health
check passes (committed); a killed container is restarted; a broken
revision (health fails) and a crash-looping one roll back by themselves to
the previous one (same bundles, the volume's file intact); a lower version
is refused with nothing stopped; `berth update status` works with and
without the daemon, `update apply` and `ps` need one; the control socket
refuses a non-root peer. Usage: daemon_update_test.py BERTH"""
import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import (DaemonEnv, broken_revision, check_invariant, crashloop_revision, good_revision, ids_of,  # noqa
                        poll)
from remote_lib import Checks  # noqa: E402

env = DaemonEnv("berth-daemon-")
c = Checks()
try:
    c.ok(env.start_daemon(), "the daemon starts as a subreaper")
    st = env.daemon_status()
    c.ok(st is not None and st["pid1"] is False and st["revision"] is None, f"daemon status answers: {st}")

    # 1: committed, in dependency order.
    r = env.apply(good_revision(env, 1))
    c.ok(r.returncode == 0 and "revision 1 committed" in r.stdout, f"revision 1 is committed: {r.stdout} {r.stderr}")
    c.ok(env.running() == ids_of(env, 1), f"db and web run: {env.containers()}")
    c.ok(env.volume_file("data", "order") == "db 1\nweb 1\n",
         f"db started before web (its dependency): {env.volume_file('data', 'order')!r}")
    with open(os.path.join(env.store, "volumes", "data", "marker"), "w") as f:
        f.write("precious\n")
    r = env.berth("ps", "--json")
    ps = json.loads(r.stdout) if r.returncode == 0 else []
    c.ok({s["name"]: s["status"] for s in ps}.get(env.web) == "healthy", f"berth ps shows web healthy: {r.stdout} {r.stderr}")
    st = env.update_status()
    c.ok(st["current"]["version"] == 1 and st["daemon"] is True, f"update status: current 1: {st}")

    # A killed container is restarted.
    web1 = f"{env.web}.r1"
    pid = env.containers()[web1][1]
    os.kill(pid, signal.SIGKILL)
    back = poll(lambda: (lambda st: st[0] == "running" and st[1] != pid)(env.containers().get(web1, ("", 0))), 10)
    c.ok(back, f"web killed is restarted: {env.containers()}")
    r = env.berth("ps", "--json")
    web = [s for s in json.loads(r.stdout) if s["name"] == env.web] if r.returncode == 0 else []
    c.ok(web and web[0]["restarts"] >= 1, f"ps counts the restart: {web}")
    healthy = poll(lambda: any(s["name"] == env.web and s["status"] == "healthy"
                               for s in json.loads(env.berth("ps", "--json").stdout or "[]")), 10)
    c.ok(healthy, "web is healthy again")
    before = env.containers()

    # 2: health fails -> rolled back to 1 by itself.
    r = env.apply(broken_revision(env, 2, window="10s"))
    c.ok(r.returncode == 1 and "rolled back" in r.stderr, f"revision 2 (health fails) rolls back: {r.stdout} {r.stderr}")
    check_invariant(env, c, [1], "after the broken revision", marker="precious\n")
    c.ok(env.bundles() == ids_of(env, 1), f"revision 2's bundles are gone, 1's kept: {env.bundles()}")
    c.ok(env.volume_file("data", "order").endswith("db 1\nweb 1\n"), "the rollback restarted revision 1 (db, then web)")

    # 3: crash loop -> rolled back.
    r = env.apply(crashloop_revision(env, 3))
    c.ok(r.returncode == 1 and "rolled back" in r.stderr and "crash" in r.stderr,
         f"revision 3 (crash loop) rolls back: {r.stderr}")
    check_invariant(env, c, [1], "after the crash-looping revision", marker="precious\n")

    # A version not above the committed one is refused, nothing stopped.
    before = env.containers()
    r = env.apply(good_revision(env, 1))
    c.ok(r.returncode == 1 and "version" in r.stderr, f"version 1 again is refused: {r.stderr.strip()}")
    c.ok(env.containers() == before, "nothing was stopped or restarted by the refusal")

    r = env.berth("update", "history", "--json")
    events = [(e["version"], e["event"]) for e in json.loads(r.stdout)] if r.returncode == 0 else []
    c.ok((1, "committed") in events and (2, "rolled-back") in events and (3, "rolled-back") in events,
         f"history records the outcomes: {events}")

    # The control socket: root only.
    sock = os.path.join(env.run_dir, "daemon.sock")
    c.ok(oct(os.stat(sock).st_mode & 0o777) == "0o600", "the control socket is mode 0600")
    os.chmod(env.run_dir, 0o755)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    r = subprocess.run(nobody + [env.exe, "--root", env.run_dir, "ps"], capture_output=True, text=True)
    c.ok(r.returncode == 1 and "permission denied" in r.stderr, f"a non-root user cannot connect: {r.stderr.strip()}")
    os.chmod(sock, 0o666)  # past the file mode, the daemon's peer check refuses
    r = subprocess.run(nobody + [env.exe, "--root", env.run_dir, "ps"], capture_output=True, text=True)
    c.ok(r.returncode == 1 and "root only" in r.stderr, f"the daemon refuses a non-root peer: {r.stderr.strip()}")
    os.chmod(sock, 0o600)

    # Without the daemon.
    c.ok(env.stop_daemon() == 0, "SIGTERM: the daemon exits 0")
    c.ok(env.containers() == {}, f"the daemon stopped its containers on the way out: {env.containers()}")
    r = env.berth("update", "status", "--json")
    st = json.loads(r.stdout) if r.returncode == 0 else {}
    c.ok(st.get("current", {}).get("version") == 1 and st.get("daemon") is False,
         f"update status without the daemon reads the state: {r.stdout} {r.stderr}")
    r = env.berth("update", "history")
    c.ok(r.returncode == 0 and "committed" in r.stdout, f"update history without the daemon: {r.stdout}")
    r = env.apply(good_revision(env, 4))
    c.ok(r.returncode == 1 and "no daemon is running" in r.stderr, f"apply without a daemon is refused: {r.stderr.strip()}")
    r = env.berth("ps")
    c.ok(r.returncode == 1 and "no daemon" in r.stderr, f"ps without a daemon says so: {r.stderr.strip()}")

    # Started again: the committed revision runs.
    c.ok(env.start_daemon() and env.wait_idle(), "the daemon starts again")
    check_invariant(env, c, [1], "after a daemon restart", marker="precious\n")
    r = env.berth("system", "poweroff")
    c.ok(r.returncode == 0, f"berth system poweroff: {r.stdout} {r.stderr}")
    c.ok(poll(lambda: env.daemon.poll() is not None, 30) and env.daemon.returncode == 0,
         "not PID 1: the daemon stops its containers and exits 0")
    c.ok(env.containers() == {}, "no container left")
finally:
    env.cleanup()
c.exit()

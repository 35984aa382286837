#!/usr/bin/python3
"""The fleet agent in `berth daemon`, end to end, polling (no broker): a TUF
repository (fleet_agent_lib.TufRepo) served by Debian's nginx on 127.0.0.1,
docker-registry with the image, and the daemon with <root>/fleet/agent.json.

- a release is polled, verified, applied and committed; the status reports
  (outbox) say downloading, staged, trying, committed for its deployment,
  with growing seq;
- a release for other boards (the target's custom.boards) is refused and
  reported, nothing applied;
- a mirror serving an expired timestamp is refused and reported while the
  committed revision keeps running; once it serves fresh metadata again
  the next release is committed;
- a release below the committed version (a downgrade) is refused and
  reported, not applied.
Usage: fleet_agent_test.py BERTH"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_agent_lib import FleetDevice, sha256  # noqa: E402
from remote_lib import Checks  # noqa: E402

env = FleetDevice("berth-fleet-agent-")
c = Checks()
try:
    env.write_agent_config(poll_interval_ms=1000, backoff_base_ms=300, backoff_max_ms=2000)
    c.ok(env.start_daemon(), "the daemon starts with the agent configured")
    started = env.wait_report(lambda r: r["state"] == "idle" and r["device"] == env.device_id)
    c.ok(started is not None, f"the agent reports itself idle on start: {env.reports()}")

    # Release 1: polled, verified, applied, committed.
    m1 = env.revision(1)
    env.repo.release("stable", m1)
    committed = env.wait_report(lambda r: r["state"] == "committed" and r["deployment"] == sha256(m1), 90)
    c.ok(committed is not None and env.committed() == 1,
         f"release 1 is polled, applied and committed: {env.update_status()} {[r['state'] for r in env.reports()]}")
    states = [r["state"] for r in env.reports() if r["deployment"] == sha256(m1)]
    c.ok(states[-4:] == ["downloading", "staged", "trying", "committed"],
         f"its reports say downloading, staged, trying, committed: {states}")
    seqs = [r["seq"] for r in env.reports()]
    c.ok(seqs == sorted(set(seqs)), f"seq grows with every report: {seqs}")
    c.ok(committed and committed["committed"] == 1 and committed["trying"] is None,
         f"the committed report carries the versions: {committed}")
    meta = os.path.join(env.store, "fleet", "metadata")
    c.ok(all(os.path.exists(os.path.join(meta, f)) for f in ("root.json", "timestamp.json", "snapshot.json", "targets.json")),
         f"the trusted metadata lives in <root>/fleet/metadata: {sorted(os.listdir(meta)) if os.path.isdir(meta) else []}")
    running = env.running()

    # Release 2 for other boards: refused and reported, not applied.
    m2 = env.revision(2)
    env.repo.release("stable", m2, custom={"boards": ["other-board"]})
    r = env.berth("update", "check")
    c.ok(r.returncode == 0, f"berth update check asks the agent to refresh now: {r.stdout} {r.stderr}")
    r = env.wait_report(lambda r: r["state"] == "refused" and r["deployment"] == sha256(m2))
    c.ok(r is not None and "not meant for board `test-board`" in r["detail"],
         f"a release for other boards is refused and reported: {r}")
    c.ok(env.committed() == 1 and env.running() == running, "revision 1 keeps running")

    # A frozen mirror: its timestamp has expired.
    env.repo.freeze()
    r = env.wait_report(lambda r: r["state"] == "refused" and "expired" in r["detail"])
    c.ok(r is not None, f"an expired timestamp is refused and reported: {r}")
    c.ok(env.committed() == 1 and env.running() == running, f"revision 1 keeps running: {env.containers()}")

    # Fresh metadata again: release 3 (for this board) is committed.
    m3 = env.revision(3)
    env.repo.release("stable", m3, custom={"boards": ["other-board", "test-board"]})
    r = env.wait_report(lambda r: r["state"] == "committed" and r["deployment"] == sha256(m3), 90)
    c.ok(r is not None and env.committed() == 3, f"once the mirror is fresh, release 3 is committed: {env.update_status()}")

    # A downgrade: refused before anything is pulled, not applied.
    m_old = env.revision(2).replace("echo app 2", "echo app 2 again")
    env.repo.release("stable", m_old)
    r = env.wait_report(lambda r: r["state"] == "refused" and r["deployment"] == sha256(m_old))
    c.ok(r is not None and "downgrade: version 2 is not above the committed 3" in r["detail"],
         f"a release below the committed version is refused and reported: {r}")
    c.ok(env.committed() == 3, "revision 3 stays committed")
    hist = env.berth("update", "history", "--json")
    versions = [e["version"] for e in json.loads(hist.stdout)] if hist.returncode == 0 else None
    c.ok(versions is not None and 2 not in versions, f"the updater never saw version 2: {versions}")
except Exception as e:  # a failed setup step: say which
    c.ok(False, f"unexpected {type(e).__name__}: {e}")
finally:
    if c.failed:
        print(env.daemon_log()[-4000:])
    env.cleanup()
c.exit()

#!/usr/bin/python3
"""The fleet agent in `berth daemon` with a broker, end to end, on the
controller's own tools: `berth fleet init|release|refresh` write the TUF
repository (served by nginx), `berth fleet publish` pushes its timestamp
through Debian's mosquitto on 127.0.0.1 (TLS, client certificates, ACLs:
mosquitto_lib.py); docker-registry holds the image (fleet_agent_lib.py).

- the device connects, flushes the reports it queued while offline and
  says it is online (retained on its status topic);
- a release whose timestamp is pushed (retained on the fleet's topic) is
  refreshed at once, well under the poll interval, and committed;
- garbage and a replayed timestamp pushed change nothing: no fetch, no report;
- the broker killed: the device keeps polling, a release is committed, its
  reports queue in the outbox; the broker back: the device reconnects and
  the outbox is flushed (the retained status is the last report, and
  `berth fleet status` shows it);
- the daemon killed: the broker publishes the will, the device is offline.
Usage: fleet_agent_mqtt_test.py BERTH"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet_agent_lib import FleetDevice, sha256  # noqa: E402
from mosquitto_lib import Broker, have_mosquitto, poll  # noqa: E402
from remote_lib import Checks  # noqa: E402

POLL_MS = 6000  # without the broker, polls come every 3 to 9 s
PUSHED_POLL_MS = 600000  # with it, every 5 to 15 min: a push is seen well before

if not have_mosquitto():
    print("skipped: mosquitto, mosquitto-clients or openssl is missing")
    sys.exit(77)

env = FleetDevice("berth-fleet-mqtt-", berth_fleet=True)
c = Checks()
broker = None
try:
    broker = Broker(fleet=env.fleet)
    cert, key = broker.identity(env.device_id)
    env.write_agent_config(poll_interval_ms=POLL_MS, pushed_poll_interval_ms=PUSHED_POLL_MS, backoff_base_ms=300, backoff_max_ms=2000,
                           mqtt={"host": broker.host, "port": broker.port, "ca_file": broker.ca, "cert_file": cert,
                                 "key_file": key, "reconnect_max_ms": 1000})
    status_topic = broker.status_topic(env.device_id)

    def retained_status():
        """The retained status as a new subscriber gets it (None if none)."""
        s = broker.subscribe("controller", status_topic)
        msgs = s.wait_for(lambda m: len(m) >= 1, timeout=5)
        s.stop()
        return json.loads(msgs[-1][1]) if msgs else None

    def push():
        """berth fleet publish: the repository's timestamp, retained on the fleet's topic."""
        r = subprocess.run([env.exe, "fleet", "publish", env.repo.dir, *broker.berth_args("controller"), "--fleet",
                            env.fleet], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"berth fleet publish: {r.stderr.strip()}")
        return r.returncode == 0

    def fetches():
        return len([p for p in env.nginx.requests() if p.endswith("timestamp.json")])

    c.ok(push(), "the controller publishes the repository's timestamp (retained)")
    c.ok(env.start_daemon(), "the daemon starts with the agent and a broker configured")
    online = poll(lambda: (lambda s: s if s and s.get("online") and s["device"] == env.device_id else None)(retained_status()),
                  20)
    c.ok(online is not None, f"the device connects and says it is online: {online}")
    c.ok(poll(lambda: not env.reports(), 10) is not None, f"the outbox is flushed: {env.reports()}")
    c.ok(poll(lambda: fetches() >= 1, 20) is not None, "the device refreshes from the repository")

    # A release pushed: refreshed at once (the next poll is minutes away), committed.
    sub = broker.subscribe("controller", status_topic)
    m1 = env.revision(1)
    env.repo.release("stable", m1)
    t0 = time.monotonic()
    c.ok(push(), "the release's timestamp is pushed")
    down = sub.wait_for(lambda m: any(json.loads(p).get("state") == "downloading" for _, p, _ in m), 20)
    latency = time.monotonic() - t0
    c.ok(down is not None and latency < 5,
         f"the push starts the update in {latency:.2f} s (polls come every {PUSHED_POLL_MS / 2000:.0f} to "
         f"{PUSHED_POLL_MS * 1.5 / 1000:.0f} s while the broker is connected)")
    ts_version = json.loads(env.repo.timestamp_bytes)["signed"]["version"]
    c.ok(f"fleet: pushed timestamp version {ts_version} " in env.daemon_log(), "the daemon log says the push triggered it")
    done = sub.wait_for(lambda m: any(json.loads(p).get("state") == "committed" for _, p, _ in m), 60)
    c.ok(done is not None and env.committed() == 1, f"release 1 is committed: {env.update_status()}")
    states = [json.loads(p)["state"] for _, p, _ in sub.messages()]
    c.ok(states[-4:] == ["downloading", "staged", "trying", "committed"], f"the reports arrive in order: {states}")
    sub.stop()

    # Garbage and a replayed timestamp change nothing; a newer one after
    # them (the broker delivers in order) marks the end.
    before_log, before_seq = len(env.daemon_log()), (retained_status() or {}).get("seq")
    old_timestamp = env.repo.timestamp_bytes
    fresh = env.repo.publish()  # the same targets, a new timestamp version
    broker.pub("controller", broker.timestamp_topic(), b"garbage", retain=True)
    broker.pub("controller", broker.timestamp_topic(), old_timestamp, retain=True)
    c.ok(push(), "a fresh timestamp is pushed after them")
    fresh_version = json.loads(fresh)["signed"]["version"]
    c.ok(poll(lambda: f"pushed timestamp version {fresh_version} " in env.daemon_log(), 10) is not None,
         "the fresh timestamp triggers a refresh")
    log = env.daemon_log()[before_log:]
    c.ok("a pushed message was ignored" in log, "the garbage is logged as ignored")
    triggered = [line for line in log.splitlines() if "fleet: pushed timestamp version" in line]
    c.ok(len(triggered) == 1, f"only the fresh timestamp triggered a refresh: {triggered}")
    c.ok((retained_status() or {}).get("seq") == before_seq, "nothing was reported")

    # The broker killed: polling goes on (every 3 to 9 s again), reports queue in the outbox.
    broker.kill()
    m2 = env.revision(2)
    env.repo.release("stable", m2)
    r = env.wait_report(lambda r: r["state"] == "committed" and r["deployment"] == sha256(m2), 60)
    c.ok(r is not None and env.committed() == 2, f"without the broker the device polls: release 2 is committed: {r}")
    queued = [x["state"] for x in env.reports()]
    c.ok(queued[-4:] == ["downloading", "staged", "trying", "committed"], f"its reports queue in the outbox: {queued}")

    # The broker back: reconnect, the outbox flushed.
    broker.start()
    c.ok(poll(lambda: not env.reports(), 20) is not None, f"the device reconnects and flushes its outbox: {env.reports()}")
    st = retained_status()
    c.ok(st is not None and st["state"] == "committed" and st["deployment"] == sha256(m2) and st["online"],
         f"the retained status is the last report: {st}")

    r = subprocess.run([env.exe, "fleet", "status", *broker.berth_args("controller"), "--fleet", env.fleet, "--json"],
                       capture_output=True, text=True)
    seen = [d for d in json.loads(r.stdout) if d.get("device") == env.device_id] if r.returncode == 0 else []
    c.ok(len(seen) == 1 and seen[0].get("committed") == 2 and seen[0].get("state") == "committed",
         f"berth fleet status shows the device at revision 2: {r.stdout.strip()} {r.stderr.strip()}")

    # The daemon killed: the broker publishes the will.
    env.daemon.send_signal(signal.SIGKILL)
    env.daemon.wait()
    env.daemon = None
    st = poll(lambda: (lambda s: s if s and s.get("online") is False else None)(retained_status()), 20)
    c.ok(st == {"device": env.device_id, "online": False}, f"the will says the device is offline: {st}")
except Exception as e:  # a failed setup step: say which
    c.ok(False, f"unexpected {type(e).__name__}: {e}")
finally:
    if c.failed:
        print(env.daemon_log()[-6000:])
        if broker:
            print(broker.log_text()[-3000:])
    if broker:
        broker.close()
    env.cleanup()
c.exit()

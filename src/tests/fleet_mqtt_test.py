#!/usr/bin/python3
"""`berth fleet publish|status` and berth's MQTT client against Debian's
mosquitto on 127.0.0.1 (TLS, client certificates, per-device ACLs:
mosquitto_lib.py). Usage: fleet_mqtt_test.py BERTH MQTT_PROBE

publish: the exact bytes of timestamp.json, retained, seen by a device;
ACL: a device cannot write another device's status; status: the reports of
several devices as a table and as JSON; the will: a device whose connection
dies without DISCONNECT shows offline; TLS refused either way, and a
broker that is down: one error line, quickly; the client reconnects after a broker restart and renews its
subscriptions. Skips (77) without mosquitto."""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mosquitto_lib import Broker, poll, test_arguments  # noqa: E402
from remote_lib import Checks  # noqa: E402  (mosquitto_lib puts image/tests on the path)

BERTH, PROBE = test_arguments("BERTH MQTT_PROBE")


def berth(*args, timeout=30):
    return subprocess.run([BERTH, *args], capture_output=True, text=True, timeout=timeout)


class Probe:
    """A device on berth's MqttClient (fleet/tests/mqtt_probe.cpp)."""

    def __init__(self, broker, name, will=None):
        cert, key = broker.identity(name)
        args = [PROBE, broker.host, str(broker.port), broker.ca, cert, key, name]
        if will:
            args += list(will)
        self.out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self.out, stderr=subprocess.STDOUT)

    def lines(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace").splitlines()

    def wait(self, cond, timeout=10):
        return poll(lambda: cond(self.lines()), timeout)

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def messages(lines, topic):
    """Payloads the probe received on `topic`."""
    out = []
    for line in lines:
        p = line.split(" ")
        if len(p) == 4 and p[0] == "message" and p[1] == topic:
            out.append(bytes.fromhex(p[2]))
    return out


c = Checks()
tmp = tempfile.mkdtemp(prefix="berth-fleet-mqtt-")
broker = Broker(fleet="f1")
probes = []
try:
    repo = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(repo, "metadata"))
    ts = (b'{"signatures":[{"keyid":"ab","sig":"00"}],"signed":{"_type":"timestamp","expires":"2030-01-01T00:00:00Z",'
          b'"meta":{"snapshot.json":{"version":1}},"spec_version":"1.0.31","version":7}}\n')
    with open(os.path.join(repo, "metadata", "timestamp.json"), "wb") as f:
        f.write(ts)

    # publish: the exact bytes, retained, QoS 1, on berth/f1/timestamp
    r = berth("fleet", "publish", repo, "--fleet", "f1", *broker.berth_args("controller"))
    c.ok(r.returncode == 0, f"fleet publish succeeds: {r.stdout.strip()} {r.stderr.strip()}")
    sub = broker.subscribe("dev1", "berth/+/timestamp")
    got = sub.wait_for(lambda m: len(m) >= 1)
    c.ok(got == [("berth/f1/timestamp", ts, True)], f"a device subscribing later gets the exact bytes, retained: {got}")
    sub.stop()

    r = broker.pub("dev1", broker.timestamp_topic(), b"forged", retain=True)
    sub = broker.subscribe("dev2", "berth/+/timestamp")
    got = sub.wait_for(lambda m: len(m) >= 1)
    c.ok(r.returncode == 0 and got == [("berth/f1/timestamp", ts, True)],
         f"a device cannot replace the fleet's timestamp (ACL): {got}")
    sub.stop()

    # ACL: dev1 writes dev2's status (dropped), then its own (the marker)
    watch = broker.subscribe("controller", "berth/f1/devices/+/status")
    r1 = broker.pub("dev1", broker.status_topic("dev2"), b'{"device":"dev2","online":true,"forged":true}', retain=True)
    r2 = broker.pub("dev1", broker.status_topic("dev1"), b'{"device":"dev1","online":true}', retain=True)
    c.ok(r1.returncode == 0 and r2.returncode == 0, "mosquitto_pub as dev1 runs")
    got = watch.wait_for(lambda m: any(t.endswith("/dev1/status") for t, _, _ in m))
    c.ok(got is not None and not any("/dev2/" in t for t, _, _ in got),
         f"a device cannot publish another device's status (nothing arrives before its own): {got}")
    watch.stop()
    fresh = broker.subscribe("controller", "berth/f1/devices/+/status")
    got = fresh.wait_for(lambda m: len(m) >= 1)
    c.ok(got is not None and [t for t, _, _ in got] == ["berth/f1/devices/dev1/status"],
         f"and nothing of it is retained: {got}")
    fresh.stop()

    # status: reports of several devices
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    reports = {
        "dev1": {"device": "dev1", "online": True, "committed": 3, "trying": None, "state": "committed",
                 "detail": "", "deployment": "v3", "seq": 4, "time": now},
        "dev2": {"device": "dev2", "online": True, "committed": 3, "trying": 4, "state": "trying",
                 "detail": "health window", "deployment": "v4", "seq": 9, "time": now},
        "dev3": {"device": "dev3", "online": True, "committed": 2, "trying": None, "state": "rolled-back",
                 "detail": "health check failed", "deployment": "v3", "seq": 2, "time": now},
    }
    for dev, rep in reports.items():
        r = broker.pub(dev, broker.status_topic(dev), json.dumps(rep), retain=True)
        c.ok(r.returncode == 0, f"{dev} reports its status")
    r = berth("fleet", "status", "--fleet", "f1", "--json", "--wait-ms", "500", *broker.berth_args("controller"))
    c.ok(r.returncode == 0, f"fleet status --json succeeds: {r.stderr.strip()}")
    got = json.loads(r.stdout) if r.returncode == 0 else []
    c.ok(got == [reports["dev1"], reports["dev2"], reports["dev3"]],
         f"fleet status --json lists every device's report, by id: {got}")
    r = berth("fleet", "status", "--fleet", "f1", "--wait-ms", "500", *broker.berth_args("controller"))
    lines = r.stdout.splitlines()
    c.ok(r.returncode == 0 and lines[0].split() == ["DEVICE", "ONLINE", "COMMITTED", "TRYING", "STATE", "DETAIL", "AGE"],
         f"fleet status prints a table: {r.stdout}")
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    c.ok(rows.get("dev2", [])[:5] == ["dev2", "yes", "3", "4", "trying"] and
         rows.get("dev3", [])[:5] == ["dev3", "yes", "2", "-", "rolled-back"] and
         "health check failed" in r.stdout, f"one row a device with its versions and state: {rows}")

    hostile = {"device": "dev6", "online": True, "state": "idle", "detail": "x\x1b[2J\nFAKE yes 99\r" + "y" * 200}
    broker.pub("dev6", broker.status_topic("dev6"), json.dumps(hostile), retain=True)
    r = berth("fleet", "status", "--fleet", "f1", "--wait-ms", "500", *broker.berth_args("controller"))
    row = [ln for ln in r.stdout.splitlines() if ln.startswith("dev6")]
    c.ok(r.returncode == 0 and "\x1b" not in r.stdout and len(r.stdout.splitlines()) == 5 and len(row) == 1 and
         "x?[2J?FAKE yes 99?yyy" in row[0] and len(row[0]) < 160,
         f"a device's text reaches the terminal without control characters, cut short: {r.stdout!r}")
    broker.pub("dev6", broker.status_topic("dev6"), b"", retain=True)  # cleared: out of the list again

    # the will: a device on berth's client, killed without DISCONNECT
    will = json.dumps({"device": "dev4", "online": False})
    p = Probe(broker, "dev4", will=(broker.status_topic("dev4"), will))
    probes.append(p)
    c.ok(p.wait(lambda ls: "connected" in ls), f"berth's client connects with TLS and a client certificate: {p.lines()}")
    p.send("pub " + broker.status_topic("dev4") + ' {"device":"dev4","online":true}')
    c.ok(p.wait(lambda ls: "acked " + broker.status_topic("dev4") in ls),
         "its QoS 1 publish is acknowledged")
    r = berth("fleet", "status", "--fleet", "f1", "--json", "--wait-ms", "300", *broker.berth_args("controller"))
    c.ok(r.returncode == 0 and {"device": "dev4", "online": True} in json.loads(r.stdout), "dev4 shows online")
    p.kill()

    def offline():
        r = berth("fleet", "status", "--fleet", "f1", "--json", "--wait-ms", "200", *broker.berth_args("controller"))
        return r.returncode == 0 and {"device": "dev4", "online": False} in json.loads(r.stdout)
    c.ok(poll(offline, 10), "killed without DISCONNECT, the device shows offline (its will)")

    # reconnect: subscriptions renewed, retained timestamp delivered again
    p = Probe(broker, "dev5")
    probes.append(p)
    p.send("sub berth/f1/timestamp")
    c.ok(p.wait(lambda ls: messages(ls, "berth/f1/timestamp") == [ts]), "the probe receives the retained timestamp")
    broker.kill()
    c.ok(p.wait(lambda ls: any(x.startswith("disconnected") for x in ls)), "a killed broker: the client says so")
    broker.start()
    c.ok(p.wait(lambda ls: ls.count("connected") >= 2, 15), f"the client reconnects to the restarted broker: {p.lines()}")
    r = berth("fleet", "publish", repo, "--fleet", "f1", *broker.berth_args("controller"))
    c.ok(p.wait(lambda ls: len(messages(ls, "berth/f1/timestamp")) >= 2),
         f"its subscription is renewed: the new publish arrives: {p.lines()}")

    # a flood of messages (as a hostile broker or publisher could send) never holds the loop long
    n = 20000
    data = b"".join(b"flood %06d\n" % i for i in range(n))
    r = subprocess.run(["mosquitto_pub", *broker.client_args("controller"), "-q", "0", "-t", "berth/f1/timestamp",
                        "-l"], input=data, capture_output=True, timeout=60)
    c.ok(p.wait(lambda ls: any(x.startswith("message berth/f1/timestamp " + b"flood 019999".hex()) for x in ls), 30),
         "the probe receives a flood of 20000 messages")
    p.send("lag")
    lag = p.wait(lambda ls: [int(x.split()[1]) for x in ls if x.startswith("lag ")])
    c.ok(lag and lag[0] < 1000, f"meanwhile a 50 ms timer on its loop was never more than 1 s late: {lag} ms")

    p.send("close")
    c.ok(poll(lambda: p.proc.poll() == 0, 5), "close() sends DISCONNECT and returns")

    # TLS both ways: a broker the CA does not vouch for, a client certificate the broker does not know
    with Broker(fleet="f1") as other:
        args = broker.berth_args("controller")
        args[args.index("--cafile") + 1] = other.ca
        for i in range(5):  # the handshake fails at connect or later in the loop: both paths end
            r = berth("fleet", "publish", repo, "--fleet", "f1", "--timeout-ms", "5000", *args)
            if r.returncode != 1 or "certificate verify failed" not in r.stderr or len(r.stderr.splitlines()) != 1:
                break
        c.ok(r.returncode == 1 and "certificate verify failed" in r.stderr and len(r.stderr.splitlines()) == 1,
             f"a broker whose certificate the CA does not vouch for: refused in one line: {r.stderr!r}")
        cert, key = other.identity("controller")
        args = broker.berth_args("controller")
        args[args.index("--cert") + 1], args[args.index("--key") + 1] = cert, key
        for i in range(5):
            r = berth("fleet", "publish", repo, "--fleet", "f1", "--timeout-ms", "5000", *args)
            if r.returncode != 1 or "client certificate" not in r.stderr or len(r.stderr.splitlines()) != 1:
                break
        c.ok(r.returncode == 1 and "client certificate" in r.stderr and len(r.stderr.splitlines()) == 1,
             f"a client certificate the broker does not trust: refused in one line: {r.stderr!r}")

    # a broker that is down: one line, quickly
    broker.stop()
    t0 = time.monotonic()
    r = berth("fleet", "publish", repo, "--fleet", "f1", *broker.berth_args("controller"))
    took = time.monotonic() - t0
    err = r.stderr.strip().splitlines()
    c.ok(r.returncode == 1 and len(err) == 1 and broker.address in err[0] and "refused" in err[0].lower(),
         f"publish to a broker that is down: one line naming it: {r.stderr!r}")
    c.ok(took < 5, f"and it does not hang ({took:.2f} s)")
    r = berth("fleet", "status", "--fleet", "f1", *broker.berth_args("controller"))
    c.ok(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, f"status too: {r.stderr!r}")
finally:
    for p in probes:
        p.kill()
    broker.close()
    subprocess.run(["rm", "-rf", tmp])
c.exit()

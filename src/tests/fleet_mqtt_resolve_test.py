#!/usr/bin/python3
"""berth's MQTT client and a broker given by name (src/fleet/resolve.hpp):
the name is resolved off the event loop, and TLS still checks the broker's
certificate against the name. The probe (fleet/tests/mqtt_probe.cpp) runs
in a mount namespace whose /etc/resolv.conf and /etc/nsswitch.conf send
every lookup to a name server this test runs on 127.0.0.77:53 (loopback
only), which answers after a delay. Against Debian's mosquitto on
127.0.0.1 (TLS, client certificates: mosquitto_lib.py), whose certificate
names `localhost`:

- `localhost`, answered after 1.5 s: the client connects, and a 50 ms
  timer on its loop was never late by more than a fraction of that;
- `broker.invalid`, answered with 127.0.0.1 too: refused by TLS (the
  certificate does not name it), never connected;
- `nx.invalid`, answered NXDOMAIN: the reason is said, and retried.

Usage: fleet_mqtt_resolve_test.py MQTT_PROBE. Needs root (mount namespace);
skips (77) without it, mosquitto or unshare."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mosquitto_lib import Broker, poll, test_arguments  # noqa: E402
from remote_lib import Checks  # noqa: E402  (mosquitto_lib puts image/tests on the path)

PROBE = test_arguments("MQTT_PROBE")[0]
if os.geteuid() != 0 or not shutil.which("unshare"):
    print("skip: needs root and unshare(1) for a mount namespace with its own resolv.conf")
    sys.exit(77)

NS_ADDR = "127.0.0.77"
DELAY_S = 1.5
ANSWERS = {"localhost": "127.0.0.1", "broker.invalid": "127.0.0.1"}  # anything else: NXDOMAIN


class SlowNameServer:
    """A name server on NS_ADDR:53 (UDP) answering A queries from ANSWERS after DELAY_S."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((NS_ADDR, 53))
        self.sock.settimeout(0.2)
        self.stopped = False
        self.queries = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopped:
            try:
                q, peer = self.sock.recvfrom(512)
            except socket.timeout:
                continue
            threading.Timer(DELAY_S, self.answer, (q, peer)).start()

    def answer(self, q, peer):
        if len(q) < 12:
            return
        qid, = struct.unpack("!H", q[:2])
        pos, labels = 12, []
        while pos < len(q) and q[pos] != 0:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode(errors="replace"))
            pos += 1 + n
        qtype, = struct.unpack("!H", q[pos + 1:pos + 3])
        question = q[12:pos + 5]
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        addr = ANSWERS.get(name)
        if addr is None:
            reply = struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        elif qtype == 1:
            rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton(addr)
            reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
        else:  # AAAA and the rest: no data
            reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    def stop(self):
        self.stopped = True
        self.thread.join()
        self.sock.close()


class Probe:
    """mqtt_probe connecting to `host`, in a mount namespace resolving through SlowNameServer."""

    def __init__(self, broker, tmp, host, name):
        cert, key = broker.identity(name)
        resolv = os.path.join(tmp, "resolv.conf")
        nss = os.path.join(tmp, "nsswitch.conf")
        with open(resolv, "w") as f:
            f.write(f"nameserver {NS_ADDR}\noptions timeout:10 attempts:1\n")
        with open(nss, "w") as f:
            f.write("hosts: dns\n")
        script = (f"mount --bind {resolv} /etc/resolv.conf && mount --bind {nss} /etc/nsswitch.conf && "
                  f"exec {PROBE} {host} {broker.port} {broker.ca} {cert} {key} {name}")
        self.out = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                     stdin=subprocess.PIPE, stdout=self.out, stderr=subprocess.STDOUT)

    def lines(self):
        self.out.seek(0)
        return self.out.read().decode(errors="replace").splitlines()

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def lag_ms(self):
        self.send("lag")
        if not poll(lambda: any(x.startswith("lag ") for x in self.lines()), 5):
            return None
        return int([x for x in self.lines() if x.startswith("lag ")][-1].split()[1])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


c = Checks()
tmp = tempfile.mkdtemp(prefix="berth-fleet-resolve-")
broker = Broker(fleet="f1")
ns = SlowNameServer()
probes = []
try:
    t0 = time.monotonic()
    p = Probe(broker, tmp, "localhost", "dev1")
    probes.append(p)
    c.ok(poll(lambda: "connected" in p.lines(), 15), f"a broker given by name is connected to: {p.lines()}")
    took = time.monotonic() - t0
    c.ok(took >= DELAY_S, f"after the name server's answer ({took:.2f} s)")
    lag = p.lag_ms()
    c.ok(lag is not None and lag < 500,
         f"the client's loop never waited for the name: a 50 ms timer was at most {lag} ms late")
    c.ok(("localhost", 1) in ns.queries, f"the name went to the name server: {ns.queries}")
    p.kill()

    p = Probe(broker, tmp, "broker.invalid", "dev2")
    probes.append(p)
    c.ok(poll(lambda: any("certificate verify failed" in x for x in p.lines()), 15),
         f"a name the broker's certificate does not carry is refused by TLS: {p.lines()}")
    c.ok("connected" not in p.lines(), "and never connected")
    p.kill()

    p = Probe(broker, tmp, "nx.invalid", "dev3")
    probes.append(p)
    c.ok(poll(lambda: sum(1 for x in p.lines() if x.startswith("disconnected resolve")) >= 2, 20),
         f"a name that does not resolve is said and tried again: {p.lines()}")
    lag = p.lag_ms()
    c.ok(lag is not None and lag < 500, f"without holding the loop ({lag} ms)")
finally:
    for p in probes:
        p.kill()
    ns.stop()
    broker.close()
    shutil.rmtree(tmp, ignore_errors=True)
c.exit()

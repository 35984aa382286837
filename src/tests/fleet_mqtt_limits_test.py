#!/usr/bin/python3
"""berth's MQTT client asks Debian's mosquitto (on 127.0.0.1, TLS, client
certificates, ACLs: mosquitto_lib.py) for a maximum packet size (MQTT 5's
CONNECT property): a message larger than that is dropped by the broker for
this client, never sent to it, while the messages around it arrive; the
session (MQTT 5) outlives the connection as 3.1.1's persistent one does.
Usage: fleet_mqtt_limits_test.py MQTT_PROBE. Skips (77) without mosquitto."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mosquitto_lib import Broker, poll, test_arguments  # noqa: E402
from remote_lib import Checks  # noqa: E402  (mosquitto_lib puts image/tests on the path)

PROBE = test_arguments("MQTT_PROBE")[0]


def start_probe(broker, name, max_packet):
    """mqtt_probe (fleet/tests/mqtt_probe.cpp) as device `name`; its output goes to a temporary file."""
    cert, key = broker.identity(name)
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen([PROBE, "--max-packet", str(max_packet), broker.host, str(broker.port), broker.ca, cert,
                             key, name], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    return proc, out


def lines(out):
    out.seek(0)
    return out.read().decode(errors="replace").splitlines()


def received(out, topic):
    """Payload sizes of the messages the probe got on `topic`."""
    sizes = []
    for line in lines(out):
        p = line.split(" ")
        if len(p) == 4 and p[0] == "message" and p[1] == topic:
            sizes.append(len(bytes.fromhex(p[2])))
    return sizes


c = Checks()
broker = Broker(fleet="f1")
proc = None
try:
    topic = broker.timestamp_topic()
    proc, out = start_probe(broker, "dev1", 4096)
    proc.stdin.write(f"sub {topic}\n".encode())
    proc.stdin.flush()
    c.ok(poll(lambda: "connected" in lines(out), 10), f"the client connects asking for 4096-byte packets: {lines(out)}")
    # The subscription is in place once a first message comes through.
    c.ok(poll(lambda: (broker.pub("controller", topic, b"s" * 100).returncode == 0 and
                       100 in received(out, topic)), 10, 0.5), f"a small message arrives: {lines(out)}")
    for size in (100_000, 5_000, 200):
        r = broker.pub("controller", topic, b"x" * size)
        c.ok(r.returncode == 0, f"the controller publishes {size} bytes")
    c.ok(poll(lambda: 200 in received(out, topic), 10), f"the message after the large ones arrives: {lines(out)}")
    got = received(out, topic)
    c.ok(100_000 not in got and 5_000 not in got, f"the messages over 4096 bytes never reach the client: {got}")
    c.ok("connected" in lines(out) and not any(x.startswith("disconnected") for x in lines(out)),
         f"and its connection stays up: {lines(out)}")

    # MQTT 5 ends a session with its connection unless the client asks
    # otherwise: the device's session (its subscription, a QoS 1 message
    # sent while it was away) outlives the connection, as in 3.1.1.
    proc.kill()
    proc.wait()
    r = broker.pub("controller", topic, b"q" * 300)
    c.ok(r.returncode == 0, "a message is published while the device is away")
    proc, out = start_probe(broker, "dev1", 4096)  # no `sub`: the session has it
    c.ok(poll(lambda: 300 in received(out, topic), 10),
         f"back on its persistent session, the device gets what came while it was away: {lines(out)}")
finally:
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    broker.close()
c.exit()

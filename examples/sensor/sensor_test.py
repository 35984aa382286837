#!/usr/bin/python3
"""The sensor app (examples/sensor/sensor) run by the host's busybox, as the
image runs it: 1.0 serves the temperature, 2.0 the temperature and the
humidity, both healthy; 3.0 cannot read its sensor, so / and /health fail
with 503. It reads the sensor file a device writes, simulates one when
there is none, and stops on SIGTERM. Skips (77) without busybox.
Usage: sensor_test.py"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "image", "tests"))
from remote_lib import Checks, free_port  # noqa: E402

APP = os.path.join(HERE, "sensor")
BUSYBOX = shutil.which("busybox")
if not BUSYBOX:
    print("SKIP: needs busybox")
    sys.exit(77)
c = Checks()
ok = c.ok


def get(port, path):
    """(status, body) of GET path; polls until the app answers."""
    end = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            if time.monotonic() > end:
                return None, ""
            time.sleep(0.05)


class App:
    def __init__(self, tmp, version, sensor_file):
        self.port = free_port()
        env = dict(os.environ, PORT=str(self.port), SENSOR_FILE=sensor_file, SENSOR_VERSION=version,
                   PATH=f"{tmp}/bin:/usr/bin:/bin")
        self.p = subprocess.Popen([BUSYBOX, "sh", APP, "serve"], env=env, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=10)
        finally:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)  # whatever the app left in its session
            except ProcessLookupError:
                pass
        return rc


tmp = tempfile.mkdtemp(prefix="berth-sensor-")
try:
    # The applets the app uses, from this busybox (the image has them all).
    os.makedirs(f"{tmp}/bin")
    for a in ("sh", "nc", "sed", "grep", "cat", "mkdir", "mv", "sleep", "dirname"):
        os.symlink(BUSYBOX, f"{tmp}/bin/{a}")
    device = f"{tmp}/device-readings"
    with open(device, "w") as f:
        f.write("temperature=23.5\nhumidity=55.0\n")

    for version, want in (("1.0", {"version": "1.0", "temperature": 23.5}),
                          ("2.0", {"version": "2.0", "temperature": 23.5, "humidity": 55.0})):
        app = App(tmp, version, device)
        try:
            status, body = get(app.port, "/")
            ok(status == 200 and json.loads(body or "null") == want, f"{version} serves {want}: {status} {body!r}")
            status, body = get(app.port, "/health")
            ok(status == 200 and body == "ok\n", f"{version} is healthy: {status} {body!r}")
            status, _ = get(app.port, "/nope")
            ok(status == 404, f"{version}: another path is 404: {status}")
        finally:
            rc = app.stop()
        ok(rc == 0, f"{version} stops on SIGTERM with status 0: {rc}")

    app = App(tmp, "3.0", device)
    try:
        status, body = get(app.port, "/health")
        ok(status == 503, f"3.0 fails its health check: {status} {body!r}")
        status, body = get(app.port, "/")
        ok(status == 503, f"... and serves no reading: {status} {body!r}")
    finally:
        app.stop()

    simulated = f"{tmp}/sim/readings"
    app = App(tmp, "2.0", simulated)
    try:
        status, body = get(app.port, "/")
        end = time.monotonic() + 10
        while status != 200 and time.monotonic() < end:  # the simulator's first reading
            time.sleep(0.1)
            status, body = get(app.port, "/")
        r = json.loads(body) if status == 200 else {}
        ok(status == 200 and 21 <= r.get("temperature", 0) < 22 and 40 <= r.get("humidity", 0) < 43,
           f"without a device, readings are simulated: {status} {body!r}")
    finally:
        app.stop()
finally:
    shutil.rmtree(tmp, ignore_errors=True)
c.exit()

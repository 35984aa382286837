"""A TLS MQTT broker for berth's fleet tests: Debian's mosquitto on 127.0.0.1
with client certificates and per-device ACLs, as a fleet's broker would be
set up (docs/fleet-agent.md, "MQTT"). Run tests with /usr/bin/python3.

    from mosquitto_lib import Broker, have_mosquitto, poll, terminate

    if not have_mosquitto():          # mosquitto and mosquitto-clients
        print("skip: ..."); sys.exit(77)
    with Broker(fleet="f1") as b:     # temp dir, CA, server cert, config, started
        b.port, b.host, b.address     # 17345, "127.0.0.1", "127.0.0.1:17345"
        cert, key = b.identity("dev1")    # a client cert with CN=dev1 (made once)
        b.identities([f"d{i}" for i in range(500)])  # many, in parallel: [(cert, key)]
        b.berth_args("controller")    # ["--mqtt", b.address, "--cafile", ..., "--cert", ..., "--key", ...]
        b.client_args("dev1")         # the same for mosquitto_pub/sub (-h -p --cafile --cert --key)
        b.pub("dev1", b.status_topic("dev1"), b'{"online":true}', retain=True)
        s = b.subscribe("controller", "berth/f1/devices/+/status")  # mosquitto_sub in the background
        s.wait_for(lambda msgs: len(msgs) >= 1, timeout=10)  # [(topic, payload bytes, retained)]
        s.stop()
        b.kill(); b.start()           # SIGKILL the broker; start it again on the same port
    # left: broker stopped, temp dir removed
    poll(cond, timeout)               # cond() until true (returned) or None
    terminate(proc)                   # SIGTERM, SIGKILL after 5 s, wait

Identities are certificate common names; mosquitto makes them the user name
(use_identity_as_username). The ACL (file `acl` in b.dir):
  - every identity may read berth/+/timestamp;
  - a device may write only berth/<fleet>/devices/<its CN>/status (a
    message to another topic is dropped by the broker: MQTT 3.1.1 has no
    way to refuse a publish, so the publisher still gets its PUBACK);
  - `controller` may also write berth/<fleet>/timestamp and read
    berth/<fleet>/devices/+/status.
Persistence is off unless Broker(persistence=True) (then in b.dir, so a
restarted broker keeps sessions and retained messages). Broker(extra=...)
appends lines to mosquitto.conf (max_connections, max_queued_messages, ...).
Broker(host=ADDR) listens on another local address than 127.0.0.1 (a
test's bridge; the server certificate names it). Broker(tmp=DIR) works in
DIR and leaves it. The broker's log is b.log_text().
"""
import concurrent.futures
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from daemon_lib import poll  # noqa: E402,F401  (re-exported: poll(cond, timeout))
from remote_lib import free_port  # noqa: E402


def have_mosquitto():
    """Whether the broker and its command-line clients are installed."""
    return bool((shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")) and
                all(shutil.which(p) for p in ("mosquitto_pub", "mosquitto_sub", "openssl")))


def test_arguments(usage):
    """The test's arguments (`usage` names them after the script), or its
    exit: 2 with the usage when they are wrong, 77 (skip) without mosquitto."""
    script = os.path.basename(sys.argv[0])
    if len(sys.argv) != len(usage.split()) + 1:
        sys.exit(f"usage: {script} {usage}")
    if not have_mosquitto():
        print("skip: mosquitto, mosquitto-clients or openssl missing (apt install mosquitto mosquitto-clients)")
        sys.exit(77)
    return sys.argv[1:]


def mosquitto_binary():
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def terminate(proc, grace=5):
    """SIGTERM, then SIGKILL after `grace` seconds; waits for the process."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Subscriber:
    """mosquitto_sub in the background; messages() parses what it printed so far."""

    def __init__(self, broker, identity, topics, extra=()):
        self.out_path = os.path.join(broker.dir, f"sub-{identity}-{time.monotonic_ns()}.out")
        self.out = open(self.out_path, "wb")
        args = ["mosquitto_sub", *broker.client_args(identity), "-q", "1", "-F", "%r %t %x"]
        for t in ([topics] if isinstance(topics, str) else topics):
            args += ["-t", t]
        self.proc = subprocess.Popen(args + list(extra), stdout=self.out, stderr=subprocess.STDOUT)

    def messages(self):
        """[(topic, payload bytes, retained)] received so far."""
        with open(self.out_path, "rb") as f:
            lines = f.read().decode(errors="replace").split("\n")
        msgs = []
        for line in lines[:-1]:  # the last one may be incomplete
            parts = line.split(" ")
            if len(parts) == 3 and parts[0] in ("0", "1"):
                msgs.append((parts[1], bytes.fromhex(parts[2]), parts[0] == "1"))
        return msgs

    def wait_for(self, cond, timeout=10.0):
        """Polls until cond(messages()) is true; returns the messages, or None on timeout."""
        return poll(lambda: (lambda m: m if cond(m) else None)(self.messages()), timeout)

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        terminate(self.proc)
        self.out.close()


class Broker:
    def __init__(self, fleet="default", persistence=False, extra="", tmp=None, host="127.0.0.1"):
        self.fleet = fleet
        self.owned_tmp = tmp is None
        self.dir = tmp or tempfile.mkdtemp(prefix="berth-mqtt-")
        self.host = host
        self.port = None
        self.proc = None
        self.persistence = persistence
        self.extra = extra
        self.subscribers = []
        self._lock = threading.Lock()
        self._name_locks = {}
        try:
            self._make_ca()
            self.start()
        except BaseException:
            self.close()
            raise

    # -------------------------------------------------------- certificates

    def _make_ca(self):
        d = self.dir
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=berth-test-ca", cwd=d)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", "server.key", "-out", "server.crt", "-days", "2", "-subj", "/CN=localhost",
                 "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-addext", f"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:{self.host}",
                 "-addext", "extendedKeyUsage=serverAuth", cwd=d)
        self.ca = os.path.join(d, "ca.crt")

    def identity(self, name):
        """(cert path, key path) of a client certificate with CN=name, made on first use."""
        cert = os.path.join(self.dir, f"id-{name}.crt")
        key = os.path.join(self.dir, f"id-{name}.key")
        with self._lock:
            lock = self._name_locks.setdefault(name, threading.Lock())
        with lock:
            if not os.path.exists(cert):
                _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                         "-keyout", key, "-out", cert + ".tmp", "-days", "2", "-subj", f"/CN={name}",
                         "-CA", "ca.crt", "-CAkey", "ca.key", "-addext", "extendedKeyUsage=clientAuth", cwd=self.dir)
                os.rename(cert + ".tmp", cert)
        return cert, key

    def identities(self, names, workers=4):
        """identity() of many names, made `workers` at a time (about 45 ms each on one core)."""
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            return list(pool.map(self.identity, names))

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def berth_args(self, name):
        """`berth fleet publish|status` options connecting as identity `name`."""
        cert, key = self.identity(name)
        return ["--mqtt", self.address, "--cafile", self.ca, "--cert", cert, "--key", key]

    def client_args(self, name):
        """mosquitto_pub/mosquitto_sub options connecting as identity `name`."""
        cert, key = self.identity(name)
        return ["-h", self.host, "-p", str(self.port), "--cafile", self.ca, "--cert", cert, "--key", key,
                "-i", f"{name}-{os.getpid()}-{time.monotonic_ns()}"]

    def timestamp_topic(self):
        return f"berth/{self.fleet}/timestamp"

    def status_topic(self, device):
        return f"berth/{self.fleet}/devices/{device}/status"

    # -------------------------------------------------------- the broker

    def _write_config(self):
        f = self.fleet
        with open(os.path.join(self.dir, "acl"), "w") as a:
            a.write(f"""# every identity: the fleets' timestamps; a device: its own status only
pattern read berth/+/timestamp
pattern write berth/{f}/devices/%u/status

user controller
topic write berth/{f}/timestamp
topic read berth/{f}/devices/+/status
""")
        persist = (f"persistence true\npersistence_location {self.dir}/\n" if self.persistence
                   else "persistence false\n")
        with open(os.path.join(self.dir, "mosquitto.conf"), "w") as c:
            c.write(f"""user root
log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
{persist}per_listener_settings false
allow_anonymous false
acl_file {self.dir}/acl
listener {self.port} {self.host}
cafile {self.dir}/ca.crt
certfile {self.dir}/server.crt
keyfile {self.dir}/server.key
tls_version tlsv1.2
require_certificate true
use_identity_as_username true
{self.extra}
""")

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "mosquitto.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def start(self, timeout=10.0):
        """Starts mosquitto (on a free port the first time, the same one after) and waits until it listens."""
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port()
            self._write_config()
            log = open(os.path.join(self.dir, "mosquitto.log"), "ab")
            mark = log.tell()
            self.proc = subprocess.Popen([mosquitto_binary(), "-c", os.path.join(self.dir, "mosquitto.conf")],
                                         stdout=log, stderr=subprocess.STDOUT)
            log.close()

            def up():
                if self.proc.poll() is not None:
                    return "exited"
                with open(os.path.join(self.dir, "mosquitto.log"), "rb") as f:
                    f.seek(mark)
                    return "up" if b" running" in f.read() else None

            state = poll(up, timeout)
            if state == "up":
                return
            self.stop()
            if state is None:
                raise RuntimeError(f"mosquitto did not start within {timeout} s:\n{self.log_text()}")
        raise RuntimeError(f"mosquitto did not start (port {self.port}):\n{self.log_text()}")

    def stop(self):
        """Stops the broker (SIGTERM, then SIGKILL after 5 s)."""
        if self.proc:
            terminate(self.proc)
        self.proc = None

    def kill(self):
        """SIGKILL: no will is sent for anyone, sessions end without DISCONNECT."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -------------------------------------------------------- clients

    def pub(self, identity, topic, payload, retain=False, qos=1, timeout=10):
        """mosquitto_pub once as `identity`; the CompletedProcess."""
        args = ["mosquitto_pub", *self.client_args(identity), "-q", str(qos), "-t", topic, "-s"]
        if retain:
            args.append("-r")
        return subprocess.run(args, input=payload if isinstance(payload, bytes) else payload.encode(),
                              capture_output=True, timeout=timeout)

    def subscribe(self, identity, topics, extra=()):
        """A Subscriber (mosquitto_sub) as `identity` on `topics` (a string or a list); stopped by close()."""
        s = Subscriber(self, identity, topics, extra)
        self.subscribers.append(s)
        return s

    def close(self):
        for s in self.subscribers:
            s.stop()
        self.subscribers = []
        self.stop()
        if self.owned_tmp:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

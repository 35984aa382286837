"""Helpers of the fleet agent's end-to-end tests (run with /usr/bin/python3).

- TufRepo: a small TUF repository writer (python3-cryptography, ECDSA P-256,
  one key per top-level role, consistent snapshots, hash-prefixed targets),
  independent of berth's own code, that can also do what a controller must
  not: sign a timestamp that is already expired (a frozen mirror), set a
  target's `custom` (board selectors).
- Nginx: Debian's nginx serving a repository's metadata/ and targets/ on
  127.0.0.1 from a config in a temporary directory.
- FleetDevice: a DaemonEnv (daemon_lib.py: docker-registry with the test
  image, a device root, `berth daemon`) with the agent's files: the pinned
  root in <root>/trust/tuf/root.json and <root>/fleet/agent.json; its status
  reports read from <root>/fleet/outbox.
"""
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daemon_lib import DaemonEnv, poll, sh_service  # noqa: E402

NGINX = "/usr/sbin/nginx"
ROLES = ("root", "targets", "snapshot", "timestamp")


def canonical(obj):
    """TUF's canonical JSON (OLPC): sorted keys, no spaces, strings escaping only `"` and `\\`."""
    if isinstance(obj, dict):
        return b"{" + b",".join(canonical(k) + b":" + canonical(obj[k]) for k in sorted(obj)) + b"}"
    if isinstance(obj, list):
        return b"[" + b",".join(canonical(v) for v in obj) + b"]"
    if isinstance(obj, str):
        return ('"' + obj.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()
    if obj is True or obj is False or obj is None:
        return json.dumps(obj).encode()
    if isinstance(obj, int):
        return str(obj).encode()
    raise ValueError(f"no canonical form for {obj!r}")


def expiry(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


class TufRepo:
    """A TUF repository in DIR (metadata/, targets/) with its keys in memory."""

    def __init__(self, path):
        self.dir = path
        self.keys = {r: ec.generate_private_key(ec.SECP256R1()) for r in ROLES}
        self.keyids = {}
        self.key_entries = {}
        for r, k in self.keys.items():
            pub = k.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            entry = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pub}}
            kid = hashlib.sha256(canonical(entry)).hexdigest()
            self.keyids[r], self.key_entries[kid] = kid, entry
        self.targets = {}  # path -> {"length", "hashes", "custom"?}
        self.versions = {"targets": 0, "snapshot": 0, "timestamp": 0}
        root = {"_type": "root", "spec_version": "1.0.31", "version": 1, "expires": expiry(365 * 86400),
                "consistent_snapshot": True, "keys": self.key_entries,
                "roles": {r: {"keyids": [self.keyids[r]], "threshold": 1} for r in ROLES}}
        self.root_bytes = self.envelope(root, "root")
        write_atomic(os.path.join(self.dir, "metadata", "1.root.json"), self.root_bytes)
        self.publish()

    def envelope(self, signed, role):
        sig = self.keys[role].sign(canonical(signed), ec.ECDSA(hashes.SHA256())).hex()
        return json.dumps({"signatures": [{"keyid": self.keyids[role], "sig": sig}], "signed": signed},
                          indent=1).encode()

    def meta(self, path):
        return os.path.join(self.dir, "metadata", path)

    def publish(self, timestamp_expires=86400):
        """New targets, snapshot and timestamp versions (timestamp.json written last)."""
        for r in self.versions:
            self.versions[r] += 1
        v = self.versions
        targets = {"_type": "targets", "spec_version": "1.0.31", "version": v["targets"], "expires": expiry(90 * 86400),
                   "targets": self.targets}
        write_atomic(self.meta(f"{v['targets']}.targets.json"), self.envelope(targets, "targets"))
        snapshot = {"_type": "snapshot", "spec_version": "1.0.31", "version": v["snapshot"], "expires": expiry(7 * 86400),
                    "meta": {"targets.json": {"version": v["targets"]}}}
        snap = self.envelope(snapshot, "snapshot")
        write_atomic(self.meta(f"{v['snapshot']}.snapshot.json"), snap)
        ts = {"_type": "timestamp", "spec_version": "1.0.31", "version": v["timestamp"],
              "expires": expiry(timestamp_expires),
              "meta": {"snapshot.json": {"version": v["snapshot"], "length": len(snap),
                                         "hashes": {"sha256": hashlib.sha256(snap).hexdigest()}}}}
        self.timestamp_bytes = self.envelope(ts, "timestamp")
        write_atomic(self.meta("timestamp.json"), self.timestamp_bytes)
        return self.timestamp_bytes

    def release(self, channel, manifest, custom=None):
        """Adds channels/<channel>/manifest.json (bytes) and publishes."""
        data = manifest.encode() if isinstance(manifest, str) else manifest
        digest = hashlib.sha256(data).hexdigest()
        name = f"channels/{channel}/manifest.json"
        write_atomic(os.path.join(self.dir, "targets", "channels", channel, f"{digest}.manifest.json"), data)
        entry = {"length": len(data), "hashes": {"sha256": digest}}
        if custom is not None:
            entry["custom"] = custom
        self.targets[name] = entry
        return self.publish()

    def freeze(self):
        """What a frozen mirror serves once its timestamp has run out: a
        timestamp (properly signed) whose expiry has passed."""
        return self.publish(timestamp_expires=-3600)


class Nginx:
    """nginx serving ROOT/metadata and ROOT/targets on 127.0.0.1."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.dir = tempfile.mkdtemp(prefix="berth-nginx-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.port = None

    def start(self):
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /metadata/ {{ root {self.root}; add_header Cache-Control "no-cache"; }}
        location /targets/ {{ root {self.root}; }}
        location / {{ return 404; }}
    }}
}}
""")
            self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            end = time.time() + 10
            while time.time() < end and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    self.port = port
                    return self
                except OSError:
                    time.sleep(0.05)
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            self.stop()
            if "Address already in use" not in err:
                raise RuntimeError(f"nginx did not start: {err}")
        raise RuntimeError("nginx found no free port")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def requests(self):
        """Paths requested so far (the access log)."""
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return [line.split('"')[1].split()[1] for line in f if '"' in line]
        except OSError:
            return []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class FleetDevice(DaemonEnv):
    """A device root with the agent's files, its repository and its nginx.
    Skips (exit 77) without root, docker-registry or nginx."""

    def __init__(self, prefix, board="test-board"):
        if not os.access(NGINX, os.X_OK):
            print(f"skipped: {NGINX} is missing (apt-get install nginx)")
            raise SystemExit(77)
        super().__init__(prefix)
        self.board = board
        self.repo = TufRepo(os.path.join(self.tmp, "repo"))
        self.nginx = Nginx(self.repo.dir).start()
        self.device_id = f"dev-{self.tag[:6]}"
        self.fleet = f"fleet-{self.tag[:6]}"
        trust = os.path.join(self.store, "trust", "tuf")
        os.makedirs(trust)
        with open(os.path.join(trust, "root.json"), "wb") as f:
            f.write(self.repo.root_bytes)
        os.makedirs(os.path.join(self.store, "fleet"))

    def write_agent_config(self, **extra):
        cfg = {"device_id": self.device_id, "fleet": self.fleet, "channel": "stable", "board": self.board,
               "metadata_url": self.nginx.url + "/metadata", "targets_url": self.nginx.url + "/targets"}
        cfg.update(extra)
        with open(os.path.join(self.store, "fleet", "agent.json"), "w") as f:
            json.dump(cfg, f)

    def revision(self, version):
        """One container, no health check: committed once it has run 3 s."""
        app = sh_service(f"app-{self.tag[:6]}", self.image, f"echo app {version}; while :; do busybox sleep 1; done",
                         restart="always", stop_grace="2s")
        return self.manifest(version, [app], "20s")

    def reports(self):
        """The status reports queued in the outbox (oldest first)."""
        try:
            with open(os.path.join(self.store, "fleet", "outbox")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except OSError:
            return []

    def wait_report(self, pred, timeout=30):
        return poll(lambda: next((r for r in self.reports() if pred(r)), None), timeout, 0.1)

    def committed(self):
        st = self.update_status()
        return st and st["current"] and st["current"]["version"]

    def daemon_log(self):
        try:
            with open(os.path.join(self.store, "daemon.log")) as f:
                return f.read()
        except OSError:
            return ""

    def cleanup(self):
        try:
            super().cleanup()
        finally:
            self.nginx.close()


def sha256(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

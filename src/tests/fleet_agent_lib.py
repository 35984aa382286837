"""Helpers of the fleet agent's end-to-end tests (run with /usr/bin/python3).

- TufRepo: a small TUF repository writer (python3-cryptography, ECDSA P-256,
  one key per top-level role, consistent snapshots, hash-prefixed targets),
  independent of berth's own code, that can also do what a controller must
  not: sign a timestamp that is already expired (a frozen mirror), set a
  target's `custom` (board selectors).
- BerthFleetRepo: the same operations through the controller's own
  `berth fleet init|release|refresh` (the real publishing path).
- Nginx: fleet_repo_lib's (Debian's nginx on 127.0.0.1), with its access log.
- FleetDevice: a DaemonEnv (daemon_lib.py: docker-registry with the test
  image, a device root, `berth daemon`) with the agent's files: the pinned
  root in <root>/trust/tuf/root.json and <root>/fleet/agent.json; its status
  reports read from <root>/fleet/outbox.
"""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from daemon_lib import DaemonEnv, poll, sh_service  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ota", "tests"))
import fleet_repo_lib  # noqa: E402
from fleet_repo_lib import canonical, keyid  # noqa: E402

ROLES = ("root", "targets", "snapshot", "timestamp")


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
            kid = keyid("ecdsa", "ecdsa-sha2-nistp256", pub)
            self.keyids[r] = kid
            self.key_entries[kid] = {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256", "keyval": {"public": pub}}
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


class BerthFleetRepo:
    """A repository made by `berth fleet` (keys in DIR.keys), with TufRepo's operations."""

    def __init__(self, berth, path):
        self.berth = berth
        self.dir = path
        self.fleet("init", path)
        with open(os.path.join(path, "metadata", "root.json"), "rb") as f:
            self.root_bytes = f.read()

    def fleet(self, *args):
        r = subprocess.run([self.berth, "fleet", *args], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"berth fleet {' '.join(args)}: {r.stderr.strip()}")
        return r

    @property
    def timestamp_bytes(self):
        with open(os.path.join(self.dir, "metadata", "timestamp.json"), "rb") as f:
            return f.read()

    def release(self, channel, manifest):
        path = os.path.join(self.dir + ".keys", f"release-{time.monotonic_ns()}.json")
        with open(path, "w") as f:
            f.write(manifest)
        self.fleet("release", self.dir, "--channel", channel, path)
        os.unlink(path)
        return self.timestamp_bytes

    def publish(self):
        """A new timestamp version, nothing else changed."""
        self.fleet("refresh", self.dir, "--within", "3650d")
        return self.timestamp_bytes


class Nginx(fleet_repo_lib.Nginx):
    def requests(self):
        """Paths requested so far (the access log)."""
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return [line.split('"')[1].split()[1] for line in f if '"' in line]
        except OSError:
            return []


class FleetDevice(DaemonEnv):
    """A device root with the agent's files, its repository (TufRepo, or
    with `berth_fleet` BerthFleetRepo) and its nginx. Skips (exit 77)
    without root, docker-registry or nginx."""

    def __init__(self, prefix, board="test-board", berth_fleet=False):
        if not os.access(fleet_repo_lib.NGINX, os.X_OK):
            print(f"skipped: {fleet_repo_lib.NGINX} is missing (apt-get install nginx)")
            raise SystemExit(77)
        super().__init__(prefix)
        self.board = board
        path = os.path.join(self.tmp, "repo")
        self.repo = BerthFleetRepo(self.exe, path) if berth_fleet else TufRepo(path)
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

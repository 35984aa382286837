"""The host's side of an emulated gateway that follows a fleet channel: what
examples/demo/sensor_story.py and the A/B update tests
(qemu-tests/ab_update_test.py, ab_campaign.py) share.

- FleetRepo: a `berth fleet` repository (TUF metadata signed by the native
  berth) served by Debian's nginx on 127.0.0.1 (ota/tests/fleet_repo_lib.py),
  its releases on a channel, and a mirror's replay of the repository as it
  was earlier (a snapshot served in its place).
- user_netdev: QEMU's user network restricted to the host (`restrict=on`):
  one `guestfwd` per host port makes the registry, nginx and a broker
  appear at GUEST_HOST (each connection relayed by `busybox nc` to
  127.0.0.1), nothing else is reachable; `hostfwd` rules bring guest ports
  to 127.0.0.1.
- device_root: what a device root needs to follow the channel: the fleet's
  TUF root (trust/tuf/root.json), the agent's configuration
  (fleet/agent.json, docs/fleet-agent.md) and a trust policy for the
  images of its updates (policy.json), written into a directory that
  becomes the device's state disk or data partition.

Everything listens on 127.0.0.1 only; the guest reaches it through QEMU.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
for d in (os.path.join("image", "tests"), os.path.join("ota", "tests")):
    sys.path.insert(0, os.path.join(TOP, d))

GUEST_HOST = "10.0.2.100"   # where the guest sees the host's services (guestfwd)
GUEST_ADDR = "10.0.2.15"    # the guest's own address on QEMU's user network
GUEST_GATEWAY = "10.0.2.2"


def user_netdev(ports, hostfwd=(), netdev_id="net"):
    """The value of `-netdev` for QEMU's user network restricted to the
    host: the host's `ports` at GUEST_HOST, `hostfwd` [(host port, guest
    port)] brought to 127.0.0.1."""
    relay = "cmd:busybox nc 127.0.0.1 {}"
    return ",".join(["user", f"id={netdev_id}", "restrict=on"]
                    + [f"guestfwd=tcp:{GUEST_HOST}:{p}-{relay.format(p)}" for p in ports]
                    + [f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in hostfwd])


class FleetRepo:
    """`berth fleet init DIR`, served by nginx; release() signs a manifest
    into a channel. Raises RuntimeError when berth refuses to make it."""

    def __init__(self, berth, path):
        from fleet_repo_lib import Nginx
        self.berth, self.path = berth, path
        r = subprocess.run([berth, "fleet", "init", path], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"berth fleet init: {last_line(r.stderr)}")
        self.nginx = Nginx(path).start()

    @property
    def port(self):
        return self.nginx.port

    @property
    def root_json(self):
        return os.path.join(self.path, "metadata", "root.json")

    def release(self, manifest, channel, extra=()):
        """`berth fleet release`: (True, "") or (False, why berth refused)."""
        r = subprocess.run([self.berth, "fleet", "release", self.path, "--channel", channel, *extra, manifest],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False, last_line(r.stderr) or last_line(r.stdout)
        return True, ""

    def snapshot(self, dest):
        """A copy of the repository as it is now (a mirror that stops here)."""
        shutil.copytree(self.path, dest)
        return dest

    def replay(self, snapshot):
        """nginx serves `snapshot` instead of the repository until the
        returned function is called."""
        current = self.path + ".now"
        os.rename(self.path, current)
        shutil.copytree(snapshot, self.path)

        def restore():
            shutil.rmtree(self.path)
            os.rename(current, self.path)
        return restore

    def close(self):
        self.nginx.close()


def agent_config(device, fleet, channel, nginx_port, poll_interval_ms=2000, **extra):
    """fleet/agent.json of a device polling the repository at GUEST_HOST
    (short intervals: a device polls every 15 min, 4 h with a broker)."""
    c = {"device_id": device, "fleet": fleet, "channel": channel,
         "metadata_url": f"http://{GUEST_HOST}:{nginx_port}/metadata",
         "targets_url": f"http://{GUEST_HOST}:{nginx_port}/targets",
         "poll_interval_ms": poll_interval_ms, "pushed_poll_interval_ms": 5000, "backoff_base_ms": 1000,
         "backoff_max_ms": 5000}
    c.update(extra)
    return c


def device_root(root, tuf_root, agent, policy, files=()):
    """Writes a device root into directory `root` (made): the TUF root,
    fleet/agent.json, policy.json, and `files` [(relative path, source)]."""
    for d in ("trust/tuf", "fleet"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy(tuf_root, os.path.join(root, "trust", "tuf", "root.json"))
    with open(os.path.join(root, "fleet", "agent.json"), "w") as f:
        json.dump(agent, f, indent=1)
    with open(os.path.join(root, "policy.json"), "w") as f:
        json.dump(policy, f, indent=1)
    for rel, src in files:
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        shutil.copy(src, os.path.join(root, rel))


def signed_policy(repo_prefix, key_path, signed_prefix=None):
    """A trust policy: images under `repo_prefix` (as the guest names them)
    signed by the key at `key_path` (a path in the guest), nothing else.
    `signed_prefix`: the name they were signed under, when it differs."""
    req = {"type": "sigstoreSigned", "keyPath": key_path}
    if signed_prefix:
        req["signedIdentity"] = {"type": "remapIdentity", "prefix": repo_prefix, "signedPrefix": signed_prefix}
    return {"default": [{"type": "reject"}], "transports": {"docker": {repo_prefix: [req]}}}


def last_line(text):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""

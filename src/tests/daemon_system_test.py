#!/usr/bin/python3
"""`berth daemon` applying an update manifest with a `system` part, end to
end against Debian's docker-registry: a board profile with two file slots
and the file bootloader backend; the system image is a blob in the
registry. The test plays the bootloader and the reboots: a "reboot" is the
daemon exiting on the updater's request, then the test spends one attempt
of the first slot of BOOT_ORDER with attempts left (as the boot script
does) and starts the daemon again with BERTH_BOOTED=<that slot> and a new
BERTH_BOOT_ID (test builds only; skipped otherwise).

Covered: a system update written into the inactive slot and read back,
tried after the reboot, its revision health-gated and committed with the
system version; one whose revision fails its health checks in the new slot
marked bad, the box back in the old slot with the old revision, the
failure in the history; that version refused afterwards; a system version
not above the committed one refused. Usage: daemon_system_test.py BERTH"""
import hashlib
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_lib import DaemonEnv, broken_revision, check_invariant, good_revision, poll  # noqa: E402
from remote_lib import Checks  # noqa: E402

IMAGE_SIZE = 3 << 20


class SystemEnv(DaemonEnv):
    def __init__(self):
        super().__init__("berth-daemon-system-")
        self.board = os.path.join(self.tmp, "board.json")
        self.env_file = os.path.join(self.tmp, "boot.env")
        for name in ("a", "b"):
            with open(os.path.join(self.tmp, f"{name}.img"), "wb") as f:
                f.write(b"factory system %s\n" % name.encode())
        with open(self.board, "w") as f:
            json.dump({"name": "test", "slots": [{"name": "A", "file": "a.img"}, {"name": "B", "file": "b.img"}],
                       "bootloader": {"kind": "file", "env": "boot.env", "attempts": 3}}, f)
        self.booted, self.boot_id = "A", 1
        r = self.berth("slot", "mark-good", "--board", self.board, "--booted", "A")
        if r.returncode != 0:
            raise RuntimeError(f"slot mark-good: {r.stderr}")
        self.images = {}

    def push_system(self, version):
        data = hashlib.sha256(b"system %d" % version).digest() * (IMAGE_SIZE // 32)
        digest = self.reg.put_blob(f"{self.tag}/os", data)
        self.images[version] = data
        part = {"image": f"{self.reg.host}/{self.tag}/os@{digest}", "size": len(data), "version": version,
                "fstype": "ext4"}
        if version > 1:  # replaces the one before only
            part.update(min_version=version - 1, max_version=version - 1)
        return part

    def start(self):
        env = dict(os.environ, BERTH_BOOTED=self.booted, BERTH_BOOT_ID=str(self.boot_id))
        env.pop("BERTH_FAILPOINTS", None)
        self.daemon = subprocess.Popen([self.exe, "--root", self.run_dir, "daemon", "--store", self.store, "--board",
                                        self.board], env=env, stdout=subprocess.DEVNULL,
                                       stderr=open(os.path.join(self.tmp, "daemon.stderr"), "a"))
        return poll(lambda: self.daemon.poll() is not None or self.berth("daemon", "status").returncode == 0, 30)

    def boot_vars(self):
        out = {}
        if os.path.exists(self.env_file):
            for line in open(self.env_file):
                k, _, v = line.rstrip("\n").partition("=")
                out[k] = v
        return out

    def reboot(self):
        """The daemon has exited (or is stopped); the bootloader picks a slot."""
        if self.daemon and self.daemon.wait(60) is None:
            raise RuntimeError("the daemon did not exit")
        self.daemon = None
        v = self.boot_vars()
        for slot in v.get("BOOT_ORDER", "").split():
            left = int(v.get(f"BOOT_{slot}_LEFT", "0"))
            if left > 0:
                lines = [ln for ln in open(self.env_file).read().splitlines() if not ln.startswith(f"BOOT_{slot}_LEFT=")]
                lines.append(f"BOOT_{slot}_LEFT={left - 1}")
                with open(self.env_file, "w") as f:
                    f.write("\n".join(lines) + "\n")
                self.booted, self.boot_id = slot, self.boot_id + 1
                return slot
        raise RuntimeError(f"no slot to boot: {v}")

    def slot_bytes(self, slot):
        with open(os.path.join(self.tmp, f"{slot.lower()}.img"), "rb") as f:
            return f.read()


def with_system(manifest, system):
    doc = json.loads(manifest)
    doc["system"] = system
    return json.dumps(doc)


env = SystemEnv()
c = Checks()
try:
    r = env.berth("version")
    if "test-hooks" not in r.stdout:
        print("skipped: berth is not a test build (meson configure -Dtest_hooks=true): BERTH_BOOTED is ignored")
        sys.exit(77)
    c.ok(env.start() and env.daemon.poll() is None, "the daemon starts with a board of two file slots, booted A")
    r = env.apply(good_revision(env, 1))
    c.ok(r.returncode == 0 and "revision 1 committed" in r.stdout, f"an app-only revision commits: {r.stdout} {r.stderr}")

    # 2 with system 1: into B, reboot, tried, committed.
    sys1 = env.push_system(1)
    r = env.apply(with_system(good_revision(env, 2), sys1))
    c.ok(r.returncode == 0 and "rebooting into it" in r.stdout, f"apply installs the system and reboots: {r.stdout} {r.stderr}")
    c.ok(poll(lambda: env.daemon.poll() is not None, 60) and env.daemon.returncode == 0, "the daemon exits for the reboot")
    c.ok(env.slot_bytes("B")[:IMAGE_SIZE] == env.images[1], "slot B holds the system image")
    v = env.boot_vars()
    c.ok(v.get("BERTH_TRYING") == "B" and v.get("BOOT_ORDER") == "B A", f"the bootloader tries B next: {v}")
    c.ok(env.reboot() == "B", "the bootloader boots B")
    c.ok(env.start(), "the daemon starts in slot B")
    st = poll(lambda: (lambda s: s if s and s.get("current") and s["current"]["version"] == 2 else None)(env.update_status()), 60)
    c.ok(st is not None and st["system"]["version"] == 1 and st["system"]["slot"] == "B",
         f"revision 2 and system 1 in slot B are committed together: {env.update_status()}")
    check_invariant(env, c, [2], "after the system update")
    v = env.boot_vars()
    c.ok(v.get("BOOT_ORDER", "").startswith("B") and v.get("BOOT_B_LEFT") == "3" and "BERTH_TRYING" not in v,
         f"slot B is good: {v}")

    # 3 with system 2: health fails in slot A -> marked bad, back to B.
    sys2 = env.push_system(2)
    r = env.apply(with_system(broken_revision(env, 3, window="10s"), sys2))
    c.ok(r.returncode == 0 and "rebooting" in r.stdout, f"system 2 installed into A: {r.stdout} {r.stderr}")
    c.ok(poll(lambda: env.daemon.poll() is not None, 60), "the daemon exits for the reboot")
    c.ok(env.reboot() == "A", "the bootloader boots A")
    c.ok(env.start(), "the daemon starts in slot A")
    c.ok(poll(lambda: env.daemon.poll() is not None, 90) and env.daemon.returncode == 0,
         "revision 3 fails its health checks in slot A: the daemon reboots")
    v = env.boot_vars()
    c.ok(v.get("BOOT_A_LEFT") == "0" and v.get("BOOT_ORDER") == "B" and "BERTH_TRYING" not in v, f"slot A is bad: {v}")
    c.ok(env.reboot() == "B", "the bootloader boots B again")
    c.ok(env.start(), "the daemon starts in slot B")
    c.ok(env.wait_idle(), "the daemon is idle")
    st = env.update_status()
    c.ok(st["current"]["version"] == 2 and st["system"]["version"] == 1 and st["system"]["failed"] == [2],
         f"revision 2 and system 1 stay committed; system 2 is remembered as failed: {st}")
    check_invariant(env, c, [2], "after the failed system update")
    r = env.berth("update", "history", "--json")
    last = [e for e in json.loads(r.stdout) if e["event"] == "rolled-back"][-1] if r.returncode == 0 else {}
    c.ok(last.get("version") == 3 and "system 2 in slot A" in last.get("reason", ""), f"the history says why: {last}")

    r = env.apply(with_system(good_revision(env, 4), sys2))
    c.ok(r.returncode == 1 and "failed before" in r.stderr, f"system 2 is not tried again: {r.stderr.strip()}")
    r = env.apply(with_system(good_revision(env, 4), sys1))
    c.ok(r.returncode == 1 and "not above the committed system version" in r.stderr,
         f"system 1 again is refused: {r.stderr.strip()}")
    c.ok(env.boot_vars().get("BOOT_ORDER") == "B", "the refusals left the bootloader alone")
finally:
    try:
        env.stop_daemon()
    finally:
        env.cleanup()
c.exit()

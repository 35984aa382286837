#!/usr/bin/python3
"""`berth daemon` as PID 1 of a real machine under qemu-system, driven and
judged through its serial console: the device daemon's scenario of issue 10.

    qemu-tests/daemon_scenario_test.py [--berth build-armhf/berth] [--keep DIR]
    qemu-tests/daemon_scenario_test.py --kernel armhf-5.10 [--cgroups hybrid]

The initramfs has qemu-tests/daemon_scenario.sh as /init: it mounts /proc,
/sys and /dev, loads the modules, mounts the state disk (an ext4 image made
here, the device root holding an armhf busybox image imported by the native
berth, a policy that accepts anything, and the update manifests), starts a
shell on the serial console in the background, and execs
`berth daemon --init --watchdog /dev/watchdog` (the softdog: the armmp
kernel has no driver for QEMU's i6300esb). The test sends that shell one
command a line and reads the answers; every fact is read in the guest from
the kernel (cgroup.procs and /proc for what runs, the app's http answer
fetched with busybox nc inside its network namespace, the volume's files
on the disk), not from berth's own report, except the update history. No
network (-nic none); no -no-reboot, so a reset boots the machine again.

The revisions: `db` (a volume `data`, no health check) and `web` (depends on
db, the same volume, busybox httpd on 127.0.0.1:8080 serving `web N`, an
http health check); both write `<name> <version>` to the volume's `order`
when they start.

  boot 1  pid1            berth daemon --init is PID 1, its control socket
                          appears, its mounts are there
          revision-1      `update apply` of revision 1 exits 0 (committed);
                          db.r1 and web.r1 run, web answers `web 1`, db
                          started first (the volume's order)
          kill-restart    web's main process killed (SIGKILL): another main
                          process in its cgroup, serving again
          unhealthy-restart web's page removed (through /proc/PID/root): the
                          page fails, then web is restarted and serves again
          revision-2      revision 2 committed: only db.r2 and web.r2 run,
                          web answers `web 2`, the volume's marker intact
          broken-rollback revision 3 (its health check asks for a missing
                          page) rolls back by itself: apply exits 1, only
                          revision 2 runs again, the marker intact
          crashloop-rollback revision 4 (web exits 1, restart always) rolls
                          back by itself, the same way
          reboot-trying   revision 5 applied with --no-wait (a 10 min
                          window its check never passes in) runs, then
                          sysrq b (a reset without sync, as a power cut)
  boot 2  (reboot-trying) revision 2 runs again, nothing of 5 is left, the
                          history says 5 rolled back, the marker intact;
                          the boot-to-all-healthy time (kernel start to
                          db.r2 running and web.r2 answering)
          clean-reboot    /test/failpoints on the disk, then
                          `berth system reboot`: the machine comes back
  boot 3  watchdog-reset  the daemon started with BERTH_FAILPOINTS=
                          daemon.hang=error@N hangs its loop (a test
                          build's failpoint), the softdog resets the
                          machine no sooner than its timeout
  boot 4  (watchdog-reset) revision 2 runs again, healthy
          poweroff        `berth system poweroff`: QEMU exits by itself,
                          the disk is clean and e2fsck passes
  boot 5  cold-boot       a new QEMU on the same disk: revision 2 comes up;
                          the boot-to-all-healthy time from QEMU's start
          cold-poweroff   powered off again, the disk clean

`--kernel armhf-5.10` runs it on Debian 11's 5.10 armmp kernel; `--cgroups
hybrid` puts berth.cgroups=hybrid on the kernel command line, so the
daemon's bring-up mounts v1 hierarchies and the unified cgroup2 mount (as a
systemd-era vendor image has them) and the containers run under the v1
controllers; the helpers then read the unified tree.

Printed for the benchmarks: kernel-start-to-healthy (the guest's uptime
when the revision answered, after the sysrq and watchdog resets and the
cold boot) and qemu-start-to-healthy (the cold boot, on the host's clock).

Exits 0 when every check passed, 1 otherwise, 77 (skipped, with the reason)
when QEMU, e2fsprogs, the kernel and its modules, the sysroot, the native
berth or the armhf berth is missing, or the armhf berth is not a test build
(-Dtest_hooks=true: the hang failpoint). The armhf berth: --berth, else
$BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth (as boot_test.py).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from boot_test import CMDLINE, HERE, skip
from console import ConsoleLines
from daemon_test import IMAGE, disk_problems, machine_args, machine_inputs, make_initramfs, make_state_root

WATCHDOG_TIMEOUT = 10  # daemon_scenario.sh's --watchdog-timeout
HANG_AT = 8            # the heartbeat (one every third of the timeout) that hangs: about 23 s after the start


# ---------------------------------------------------------------- the revisions

def revision(version, image, window="60s", web_script=None, health=None, web_restart="always"):
    """db (the volume) then web (depends on db, http health check on 8080)."""
    vol = [{"name": "data", "path": "/data"}]
    db = {"name": "db", "image": image, "restart": "always", "volumes": vol, "stop_grace": "3s",
          "args": ["/bin/sh", "-c", f"trap 'exit 0' TERM; echo db {version} >> /data/order; "
                   "while :; do sleep 1; done"]}
    script = web_script or (f"echo web {version} > /www/index.html; echo web {version} >> /data/order; "
                            "httpd -f -p 127.0.0.1:8080 -h /www & while :; do sleep 1; done")
    web = {"name": "web", "image": image, "restart": web_restart, "depends_on": ["db"], "volumes": vol,
           "stop_grace": "3s", "args": ["/bin/sh", "-c", f"trap 'exit 0' TERM; {script}"],
           "health": health or {"kind": "http", "port": 8080, "path": "/index.html", "interval": "1s",
                                "timeout": "2s", "retries": 2}}
    return json.dumps({"version": version, "name": f"scenario {version}", "health_window": window,
                       "containers": [db, web]}, indent=1)


def manifests(image):
    missing_page = {"kind": "http", "port": 8080, "path": "/missing.html", "interval": "1s", "timeout": "2s",
                    "retries": 2}
    return {
        1: revision(1, image),
        2: revision(2, image),
        3: revision(3, image, health=missing_page),
        4: revision(4, image, web_script="echo web 4 >> /data/order; exit 1"),
        # Never healthy within the reboot's time, never unhealthy either
        # (failures in the start period do not count).
        5: revision(5, image, window="10m", health=dict(missing_page, start_period="10m")),
    }


# ---------------------------------------------------------------- the machine

class Machine(ConsoleLines):
    """qemu-system-arm with the serial console on stdin/stdout: every line
    echoed with its time since the start, kept, and searchable."""

    def __init__(self, cmd, timeout):
        self.start = time.monotonic()
        self.lines = []  # (seconds, text)
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.killer = threading.Timer(timeout, self.proc.kill)
        self.killer.start()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 0

    def now(self):
        return time.monotonic() - self.start

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            t = self.now()
            print(f"[{t:6.1f}] {line}", flush=True)
            with self.cond:
                self.lines.append((t, line))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def console_open(self):
        return self.proc.poll() is None or self.reader.is_alive()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def run(self, command, timeout=60):
        """Runs `command` in the guest's console shell: (status, output
        lines); status None when no answer came in time."""
        self.next_id += 1
        tag = f"c{self.next_id}"
        since = self.mark()
        try:
            self.proc.stdin.write(f"{tag} {command}\n".encode())
            self.proc.stdin.flush()
        except OSError:
            return None, []
        end = self.wait(rf"BERTH-END {tag} (\d+)", timeout, since)
        if not end:
            return None, []
        begin = self.wait(rf"BERTH-BEGIN {tag}$", 0, since)
        first = begin[0] + 1 if begin else since
        with self.cond:
            out = [text for _, text in self.lines[first:end[0]]]
            # Output without a final newline shares the marker's line.
            rest = self.lines[end[0]][1][:end[2].start()]
        return int(end[2].group(1)), out + ([rest] if rest else [])

    def exited(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self):
        self.killer.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.reader.join(5)


class Checks:
    def __init__(self):
        self.failed = []
        self.passed = []

    def case(self, name, problems, detail=""):
        if problems:
            self.failed.append(name)
            print(f"BERTH-CHECK fail {name}: " + "; ".join(problems), flush=True)
        else:
            self.passed.append(name)
            print(f"BERTH-CHECK ok {name}" + (f": {detail}" if detail else ""), flush=True)


# ---------------------------------------------------------------- the scenario

class Scenario:
    def __init__(self, m, checks, cgroups="v2"):
        self.m = m
        self.c = checks
        self.cgroups = cgroups
        self.boot_index = 0  # the console line where the current boot began
        self.timings = {}

    def sh(self, command, timeout=60):
        rc, out = self.m.run(command, timeout)
        return rc, "\n".join(out).strip()

    def expect(self, problems, command, what, timeout=60, want_rc=0):
        """Runs `command`; a status other than `want_rc` is a problem named `what`."""
        rc, out = self.sh(command, timeout)
        if rc != want_rc:
            problems.append(f"{what}: `{command}` gave {'no answer' if rc is None else f'status {rc}'}: {out[-400:]!r}")
        return rc, out

    def wait_boot(self, timeout=180):
        """The next boot's shell: (boot number, uptime at the shell's start),
        or None."""
        boot = self.m.wait(r"BERTH-FACT boot (\d+) failpoints (\S+)", timeout, self.boot_index)
        if not boot:
            return None
        self.boot_index = boot[0] + 1
        shell = self.m.wait(r"BERTH-SHELL ready uptime ([0-9.]+)", timeout, boot[0])
        if not shell:
            return None
        return int(boot[2].group(1)), boot[2].group(2), boot[1]

    def containers(self):
        _, out = self.sh("containers")
        return sorted(out.split())

    def only(self, p, version, what="", wait=60, marker=True, timing=False):
        """Revision `version` comes up (within `wait` s): db.rVERSION and
        web.rVERSION are the only container cgroups, web answers `web
        VERSION`, and (`marker`) the volume's marker is intact. `timing`:
        after a boot, the guest's uptime then is a boot-to-all-healthy time.
        Returns what wait_for said."""
        what = f"{what}: " if what else ""
        rc, out = self.sh(f"wait_for {wait} up {version}", wait + 30)
        if rc != 0:
            p.append(f"{what}revision {version} is not up: {out}")
            return out
        cs = self.containers()
        if cs != [f"db.r{version}", f"web.r{version}"]:
            p.append(f"{what}container cgroups {cs}, wanted only revision {version}'s")
        if marker:
            _, text = self.sh("volume marker")
            if text != "precious":
                p.append(f"{what}the volume's marker is {text!r}")
        up = re.search(r"uptime ([0-9.]+)", out)
        if timing and up:
            self.timings.setdefault("kernel-start-to-healthy", []).append(float(up.group(1)))
        return out

    def order_tail(self):
        _, out = self.sh("volume order")
        return out.split("\n")

    # -- boot 1
    def pid1(self):
        p = []
        got = self.wait_boot(240)
        if not got:
            self.c.case("pid1", ["the machine's console shell never came up"])
            return False
        rc, out = self.expect(p, "wait_for 60 daemon_up", "the daemon's control socket")
        _, cmdline = self.sh("tr '\\0' ' ' </proc/1/cmdline")
        if "daemon --init" not in cmdline:
            p.append(f"PID 1 is {cmdline!r}, not berth daemon --init")
        _, mounts = self.sh("awk '{ for (i = 7; $i != \"-\"; i++); print $5, $(i + 1) }' /proc/1/mountinfo")
        layout = ("/sys/fs/cgroup tmpfs", "/sys/fs/cgroup/unified cgroup2", "/sys/fs/cgroup/memory cgroup") \
            if self.cgroups == "hybrid" else ("/sys/fs/cgroup cgroup2",)
        for want in ("/proc proc", "/run tmpfs", "/mnt/disk ext4") + layout:
            if want not in mounts.split("\n"):
                p.append(f"no {want} in PID 1's mount table")
        self.c.case("pid1", p, f"berth daemon --init is PID 1, its socket {out}")
        return got is not None

    def revision_1(self):
        p = []
        rc, out = self.expect(p, "berth update apply /mnt/disk/manifests/1.json", "apply revision 1", 300)
        if "revision 1 committed" not in out:
            p.append(f"apply did not say committed: {out!r}")
        self.only(p, 1, marker=False)
        order = self.order_tail()
        if order != ["db 1", "web 1"]:
            p.append(f"the volume's order is {order}, wanted db first, then web")
        _, pid = self.sh("main_pid web.r1")
        _, cg = self.sh(f"cat /proc/{pid}/cgroup")
        # Every hierarchy's line (hybrid: each v1 controller's and the unified one).
        lines = cg.split("\n")
        if "0::/berth/web.r1" not in lines or any(not x.endswith(":/berth/web.r1") for x in lines) or \
                (self.cgroups == "hybrid") != any(":memory:" in x for x in lines):
            p.append(f"web's main process {pid} is in cgroup {cg!r}")
        self.sh("echo precious > $STORE/volumes/data/marker && sync")
        self.c.case("revision-1", p, f"db.r1 and web.r1 run, web answers `web 1`, order {order}")

    def kill_restart(self):
        p = []
        _, pid = self.sh("main_pid web.r1")
        self.expect(p, f"kill -9 {pid}", "kill web's main process")
        rc, out = self.expect(p, f"wait_for 30 changed web.r1 {pid}", "another main process in web's cgroup")
        rc2, out2 = self.expect(p, "wait_for 30 serves web.r1 'web 1'", "web serves again")
        self.c.case("kill-restart", p, f"web's main process {pid} killed: a new one {out}, serving {out2}")

    def unhealthy_restart(self):
        p = []
        _, pid = self.sh("main_pid web.r1")
        self.expect(p, f"rm /proc/{pid}/root/www/index.html", "remove web's page")
        _, gone = self.expect(p, "wait_for 10 fails web.r1", "the page fails")
        rc, out = self.expect(p, f"wait_for 60 changed web.r1 {pid}", "web restarted")
        rc2, out2 = self.expect(p, "wait_for 30 serves web.r1 'web 1'", "web serves again")
        self.c.case("unhealthy-restart", p, f"page gone, failing {gone}; restarted {out}; serving {out2}")

    def apply_commit(self, version):
        p = []
        t = time.monotonic()
        rc, out = self.expect(p, f"berth update apply /mnt/disk/manifests/{version}.json", f"apply revision {version}", 300)
        took = time.monotonic() - t
        if f"revision {version} committed" not in out:
            p.append(f"apply did not say committed: {out!r}")
        self.only(p, version, f"revision {version}")
        order = self.order_tail()
        if order[-2:] != [f"db {version}", f"web {version}"]:
            p.append(f"the volume's order ends {order[-2:]}, wanted db {version} then web {version}")
        self.c.case(f"revision-{version}", p, f"committed in {took:.1f} s; only db.r{version} and web.r{version} run")
        # A figure for the notes, not a check: the daemon's memory on the ARM
        # kernel, supervising this revision's two containers.
        _, mem = self.sh("grep -E '^(VmRSS|RssAnon|RssFile)' /proc/1/status | tr -s ' \\t' ' ' | tr '\\n' ' '")
        print(f"BERTH-MEASURE daemon (PID 1) memory with revision {version}: {mem}", flush=True)

    def apply_rollback(self, name, version, reason, back_to):
        p = []
        t = time.monotonic()
        rc, out = self.expect(p, f"berth update apply /mnt/disk/manifests/{version}.json", f"apply revision {version}",
                              300, want_rc=1)
        took = time.monotonic() - t
        if "rolled back" not in out or reason not in out:
            p.append(f"apply did not say rolled back ({reason}): {out!r}")
        self.only(p, back_to, "after the rollback")
        order = self.order_tail()
        if f"web {version}" not in order:
            p.append(f"revision {version}'s web never started: {order}")
        if order[-2:] != [f"db {back_to}", f"web {back_to}"]:
            p.append(f"the volume's order ends {order[-2:]}: revision {back_to} was not restarted")
        self.c.case(name, p, f"rolled back in {took:.1f} s ({out.splitlines()[-1] if out else ''}); "
                             f"only revision {back_to} runs")

    def reboot_trying(self):
        p = []
        rc, out = self.expect(p, "berth update apply --no-wait /mnt/disk/manifests/5.json", "apply revision 5", 300)
        self.expect(p, "wait_for 60 main_pid web.r5", "web.r5 runs")
        cs = self.containers()
        if cs != ["db.r5", "web.r5"]:
            p.append(f"while trying: container cgroups {cs}, wanted revision 5's")
        # A reset without sync, as a power cut: no answer comes.
        mark = self.m.mark()
        self.m.run("echo b > /proc/sysrq-trigger", 1)
        got = self.wait_boot(240)
        if not got:
            self.c.case("reboot-trying", p + ["the machine did not boot again after sysrq b"])
            return False
        boot, _, t_boot = got
        if boot != 2:
            p.append(f"the disk counts boot {boot}, wanted 2")
        if self.m.wait(r"BERTH-FACT boot 1 ", 0, mark):
            p.append("a boot-1 line after the reset")
        up = self.only(p, 2, wait=180, timing=True)
        rc, out = self.sh("berth update history --json")
        try:
            rolled = [e.get("reason", "") for e in json.loads(out) if (e["version"], e["event"]) == (5, "rolled-back")]
        except (ValueError, KeyError, TypeError):
            rolled = []
        if not rolled or "reboot" not in rolled[-1]:
            p.append(f"the history has no rollback of revision 5 for the reboot: {out[-300:]!r}")
        rc, out = self.sh("berth update status --json")
        try:
            st = json.loads(out)
            if st["current"]["version"] != 2 or st["trying"] is not None:
                p.append(f"update status: current {st['current']}, trying {st['trying']}")
        except (ValueError, KeyError, TypeError):
            p.append(f"update status: {out!r}")
        self.c.case("reboot-trying", p, f"after the reset revision 2 runs again ({up}), 5 rolled back "
                                        f"({rolled[-1] if rolled else '?'})")
        return True

    def watchdog_reset(self):
        p = []
        self.expect(p, f"echo daemon.hang=error@{HANG_AT} > /mnt/disk/test/failpoints && sync", "write the failpoint")
        rc, out = self.sh("berth system reboot", 30)
        got = self.wait_boot(240)
        if not got or got[1] != f"daemon.hang=error@{HANG_AT}":
            self.c.case("clean-reboot", [f"no boot with the failpoint after `berth system reboot`: {got}"])
            return False
        self.c.case("clean-reboot", [], f"`berth system reboot` ({out}): boot {got[0]}")
        boot = got[0]
        hung = self.m.run("wait_for 120 sh -c 'dmesg | grep -q daemon.hang'", 150)
        rc, out = self.sh("dmesg | grep -m1 'daemon.hang'")
        hang = re.search(r"^\[\s*([0-9.]+)\]", out)
        if hung[0] != 0 or not hang:
            p.append(f"the daemon never logged the hang: {hung}")
        elif float(hang.group(1)) < WATCHDOG_TIMEOUT:
            p.append(f"the daemon hung {hang.group(1)} s after the kernel started: the watchdog was never fed for long")
        mark = self.m.mark()
        nxt = self.wait_boot(240)
        if not nxt:
            self.c.case("watchdog-reset", p + ["the machine was not reset"])
            return False
        if nxt[0] != boot + 1 or nxt[1] != "none":
            p.append(f"the next boot is {nxt[0]} with failpoints {nxt[1]}, wanted {boot + 1} without")
        # On the hung boot's kernel clock: the last feed was a heartbeat
        # (a third of the timeout) before the hang (the failpoint fires
        # before the feed), so the softdog fires between two thirds of the
        # timeout and the timeout after the hang.
        soft = self.m.wait(r"\[\s*([0-9.]+)\] softdog: Initiating system reboot", 0, mark)
        delay = float(soft[2].group(1)) - float(hang.group(1)) if soft and hang else None
        if not soft:
            p.append("no softdog reboot message before the next boot")
        elif delay is not None and not WATCHDOG_TIMEOUT * 2 / 3 - 1 <= delay <= WATCHDOG_TIMEOUT + 1:
            p.append(f"the softdog fired {delay:.1f} s after the hang, not within its {WATCHDOG_TIMEOUT} s timeout "
                     "of the last feed")
        up = self.only(p, 2, wait=180, timing=True)
        self.c.case("watchdog-reset", p, f"hung at {hang.group(1) if hang else '?'} s of uptime, the softdog fired "
                                         f"{'?' if delay is None else f'{delay:.1f}'} s later (timeout "
                                         f"{WATCHDOG_TIMEOUT} s); revision 2 up again ({up})")
        return True

    def poweroff(self, disk, name="poweroff"):
        p = []
        rc, out = self.sh("berth system poweroff", 30)
        if not self.m.exited(120):
            p.append("QEMU did not exit after `berth system poweroff`")
        self.m.stop()
        p += disk_problems(disk)
        boots = subprocess.run(["debugfs", "-R", "cat /test/boots", disk], capture_output=True, text=True).stdout.strip()
        self.c.case(name, p, f"QEMU exited, the disk is clean after {boots} boots")

    def cold_boot(self, cmd, timeout, disk):
        """A new machine on the same disk: from QEMU's start to revision 2
        running and answering (the boot-to-all-healthy time), then off."""
        p = []
        self.m = Machine(cmd, timeout)
        self.boot_index = 0
        got = self.wait_boot(240)
        if not got:
            self.c.case("cold-boot", ["the machine's console shell never came up"])
            return False
        up = self.only(p, 2, wait=180, timing=True)
        since_start = self.m.now()
        self.timings["qemu-start-to-healthy"] = [since_start]
        self.c.case("cold-boot", p, f"revision 2 up {since_start:.1f} s after QEMU started ({up})")
        self.poweroff(disk, "cold-poweroff")
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    machine_args(ap, 900)
    ap.add_argument("--cgroups", choices=["v2", "hybrid"], default="v2",
                    help="hybrid: berth.cgroups=hybrid, the daemon mounts v1 controllers and the unified tree")
    args = ap.parse_args()
    found = machine_inputs(args)
    shutil.which("qemu-arm-static") or skip("qemu-arm-static is not installed (it asks the armhf berth for its features)")
    features = subprocess.run(["qemu-arm-static", "-L", args.sysroot, found.berth, "version"], capture_output=True, text=True)
    if "test-hooks" not in features.stdout:
        skip(f"{found.berth} is not a test build (-Dtest_hooks=true): the watchdog case needs the daemon.hang failpoint")

    tmp = tempfile.mkdtemp(prefix="berth-qemu-scenario.")
    checks = Checks()
    s = None
    try:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        initrd = os.path.join(outdir, "initrd.gz")
        make_initramfs(args, found, os.path.join(HERE, "daemon_scenario.sh"), [], initrd)
        seed = os.path.join(tmp, "seed")
        os.makedirs(os.path.join(seed, "berth"))
        os.makedirs(os.path.join(seed, "manifests"))
        digest = make_state_root(os.path.join(seed, "berth"), found.native_berth, found.busybox, tmp)
        for version, text in manifests(f"{IMAGE}@{digest}").items():
            with open(os.path.join(seed, "manifests", f"{version}.json"), "w") as f:
                f.write(text)
        disk = os.path.join(outdir, "state.img")
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "berth-state", "-d", seed, disk, "128M"], check=True)
        print(f"initramfs: {initrd}, {os.path.getsize(initrd) // 1024} KiB; state disk: {disk} ({IMAGE}@{digest})")

        cmd = [found.qemu, "-M", "virt", "-m", args.memory, "-smp", "1", "-display", "none", "-monitor", "none",
               "-serial", "stdio", "-nic", "none", "-kernel", found.vmlinuz, "-initrd", initrd,
               "-append", CMDLINE + (" berth.cgroups=hybrid" if args.cgroups == "hybrid" else ""),
               "-drive", f"if=none,id=state,format=raw,file={disk}", "-device", "virtio-blk-device,drive=state"]
        print("boot:", " ".join(cmd), flush=True)
        s = Scenario(Machine(cmd, args.timeout), checks, args.cgroups)
        t0 = time.monotonic()
        steps = [s.pid1, s.revision_1, s.kill_restart, s.unhealthy_restart, lambda: s.apply_commit(2),
                 lambda: s.apply_rollback("broken-rollback", 3, "unhealthy", 2),
                 lambda: s.apply_rollback("crashloop-rollback", 4, "crash", 2),
                 s.reboot_trying, s.watchdog_reset, lambda: s.poweroff(disk),
                 lambda: s.cold_boot(cmd, args.timeout, disk)]
        for step in steps:
            if step() is False:
                break
        took = time.monotonic() - t0
        for name, values in s.timings.items():
            print(f"{name}: " + ", ".join(f"{v:.1f} s" for v in values))
        print(f"the scenario took {took:.0f} s")
    finally:
        if s:
            s.m.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if checks.failed:
        print(f"FAIL: {', '.join(checks.failed)} ({len(checks.passed)} passed)")
        return 1
    print(f"the daemon as PID 1: all {len(checks.passed)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""An A/B system update end to end inside the qemu-virt-armhf board (or,
with --board qemu-virt-arm64, the arm64 one): real U-Boot, berth as PID 1
following its fleet channel, each update a signed TUF release on the host
carrying a system image and an app revision.

    qemu-tests/ab_update_test.py --native-berth build/berth [--berth build-armhf/berth] [--keep DIR]
    qemu-tests/ab_update_test.py --board qemu-virt-arm64 --native-berth build/berth [--berth build-arm64/berth]

The board boots slot A (system version 1) and its fleet agent installs app
revision 1 (ab_update_lib.py describes the host, the disk and the
firmware). Then, each a release on channel `stable`, the machine running
through it unless a stage says otherwise:

  update    revision 2 with system 2: the agent verifies the release, berth
            streams the image from the registry into slot B, reads it back,
            asks U-Boot to try B and reboots; U-Boot boots B, berth finds
            itself TRYING there, health-gates revision 2 and commits (slot
            B marked good)
  panic     revision 3 with system 3, whose init fails (the kernel
            panics): installed into A, tried three times by U-Boot's
            counter, then B boots by itself; berth there records the
            failure (history `rolled-back`, system 3 among the failed) and
            keeps revision 2
  good      revision 4 with system 4: installed into A, committed there
  replay    the controller refuses to release revision 2 again; a mirror
            serves the repository as it was at revision 2: the agent's TUF
            client refuses it and reports it; nothing changes on the device

After each stage the machine is cut (SIGKILL) and the disk read offline:
the U-Boot environment (fw_printenv), berth's state and history on the
data partition (its journal replayed on a copy), and which published image
each slot holds (by digest). The console must agree (the slot U-Boot
booted, the system version it says, berth's log lines, which the slot's
init has the kernel print there).

Exits 0 when every stage passed, 1 otherwise, 77 (skipped, with the reason)
when something it needs is missing (ab_update_lib.missing).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ab_update_lib as lib  # noqa: E402
from ab_update_lib import Failed, expect  # noqa: E402
from boot_test import skip  # noqa: E402

STAGES = ["update", "panic", "good", "replay"]
BOOT_TIMEOUT = 180


class Run:
    def __init__(self, rig):
        self.rig = rig
        self.m = rig.machine

    def lines(self, since, pattern):
        import re
        rx = re.compile(pattern)
        return [m for m in (rx.search(t) for t in self.m.text(since)) if m]

    def up(self, since, slot, version, timeout=BOOT_TIMEOUT):
        """Waits for berth up in `slot` saying system `version`."""
        _, _, m = self.rig.wait(r"BERTH-AB (up|not-up|no-data) slot=(\w+)", timeout, since, f"slot {slot} up")
        expect(m.group(1) == "up" and m.group(2) == slot, f"slot {slot} boots, berth is PID 1 ({m.group(0)})")
        said = self.lines(since, r"BERTH-AB system slot=(\w+) version=(\d+)")
        expect(said and said[-1].groups() == (slot, str(version)), f"slot {slot} says it is system {version}")

    def committed(self, since, revision, timeout):
        self.rig.wait(rf"\] berth: .*update: revision {revision} committed", timeout, since,
                      f"revision {revision} committed")
        print(f"  ok: berth's log: revision {revision} committed", flush=True)

    def offline(self, what):
        """Cuts the power; returns the device's state read from the disk."""
        self.m.kill()
        d = self.rig.device_state()
        env = self.rig.env()
        print(f"  offline ({what}): env {env}", flush=True)
        print(f"  offline ({what}): state {d.state}", flush=True)
        expect(d.fsck[0] in (0, 1), f"the data partition checks clean after the cut (e2fsck: {d.fsck[1]})")
        return d, env

    def first(self):
        rig = self.rig
        first, _ = rig.boot(r"BERTH-AB system slot=", BOOT_TIMEOUT)
        self.up(first, "A", 1)
        self.committed(first, 1, 240)
        return first

    def stage_update(self, first):
        rig = self.rig
        mark = len(self.m.lines)
        rig.release(2, system=2)
        self.snapshot_2 = rig.fleet.snapshot(os.path.join(rig.tmp, "fleet-as-of-2"))
        rig.wait(r"\] berth: .*update: rebooting", 300, mark, "berth reboots into the new slot")
        booted = rig.wait(r"berth-ab: booting slot (\w)", 60, mark, "U-Boot boots")
        expect(booted[2].group(1) == "B", "U-Boot boots slot B next (BERTH_TRYING, BOOT_ORDER B A)")
        self.up(booted[0], "B", 2)
        self.committed(booted[0], 2, 240)
        d, env = self.offline("revision 2 committed in B")
        st = d.state
        expect(st.get("current") == 2 and st.get("trying") is None and st.get("staging") is None,
               "state.json: current 2, nothing trying or staging")
        sysst = st.get("system") or {}
        expect(sysst.get("version") == 2 and sysst.get("slot") == "B" and sysst.get("trying") is None,
               f"state.json: system 2 committed in slot B ({sysst})")
        expect(env.get("BOOT_ORDER", "").split()[:1] == ["B"] and env.get("BOOT_B_LEFT") == "3"
               and not env.get("BERTH_TRYING"), "U-Boot's environment: B first, good (3 attempts), nothing tried")
        events = [(h.get("version"), h.get("event")) for h in d.history]
        expect((2, "system-installed") in events and (2, "committed") in events,
               "history: revision 2's system installed, then committed")
        expect(rig.slot_holds("B") == 2 and rig.slot_holds("A") == 1, "slot B holds system 2 whole, A still 1")

    def stage_panic(self, _):
        rig = self.rig
        first, _ = rig.boot(r"BERTH-AB up slot=", BOOT_TIMEOUT)
        self.up(first, "B", 2)
        mark = len(self.m.lines)
        rig.release(3, system=3)
        rig.wait(r"\] berth: .*update: rebooting", 300, mark, "berth reboots to try system 3")
        # Three tries of A (each a kernel panic and a reset), then B.
        self.up(mark, "B", 2, timeout=4 * BOOT_TIMEOUT)
        tries = [m.group(1) for m in self.lines(mark, r"berth-ab: booting slot (\w)")]
        expect(tries == ["A", "A", "A", "B"], f"U-Boot tried A three times, then booted B ({tries})")
        expect(len(self.lines(mark, r"BERTH-AB broken slot=A")) == 3, "system 3's init failed three times")
        rig.wait(r"\] berth: .*update: revision 3 rolled back", 120, mark, "berth in B records the failure")
        d, env = self.offline("system 3 fell back")
        st = d.state
        sysst = st.get("system") or {}
        expect(st.get("current") == 2 and st.get("trying") is None, "state.json: revision 2 still committed")
        expect(sysst.get("version") == 2 and sysst.get("slot") == "B" and 3 in (sysst.get("failed") or [])
               and sysst.get("trying") is None, f"state.json: system 2 in B, system 3 failed ({sysst})")
        rolled = [h for h in d.history if h.get("version") == 3 and h.get("event") == "rolled-back"]
        expect(rolled, "history: revision 3 rolled back")
        print(f"  berth's reason: {rolled[-1].get('reason')}", flush=True)
        expect("A" not in env.get("BOOT_ORDER", "").split() and env.get("BOOT_A_LEFT") == "0"
               and env.get("BOOT_B_LEFT") == "3", "U-Boot's environment: A out of the order, B good")
        expect(rig.slot_holds("B") == 2, "slot B still holds system 2")

    def stage_good(self, _):
        rig = self.rig
        first, _ = rig.boot(r"BERTH-AB up slot=", BOOT_TIMEOUT)
        self.up(first, "B", 2)
        mark = len(self.m.lines)
        rig.release(4, system=4)
        rig.wait(r"\] berth: .*update: rebooting", 300, mark, "berth reboots to try system 4")
        booted = rig.wait(r"berth-ab: booting slot (\w)", 60, mark, "U-Boot boots")
        expect(booted[2].group(1) == "A", "U-Boot boots slot A next")
        self.up(booted[0], "A", 4)
        self.committed(booted[0], 4, 240)
        d, env = self.offline("revision 4 committed in A")
        st = d.state
        sysst = st.get("system") or {}
        expect(st.get("current") == 4 and st.get("trying") is None, "state.json: current 4")
        expect(sysst.get("version") == 4 and sysst.get("slot") == "A", f"state.json: system 4 in slot A ({sysst})")
        expect(env.get("BOOT_ORDER", "").split()[:1] == ["A"] and env.get("BOOT_A_LEFT") == "3",
               "U-Boot's environment: A first, good")
        expect(rig.slot_holds("A") == 4 and rig.slot_holds("B") == 2, "slot A holds system 4, B system 2")

    def stage_replay(self, _):
        rig = self.rig
        ok, why = rig.fleet.release(rig.published[2], lib.CHANNEL)
        expect(not ok, f"the controller refuses to release revision 2 again ({why})")
        restore = rig.fleet.replay(self.snapshot_2)
        try:
            first, _ = rig.boot(r"BERTH-AB up slot=", BOOT_TIMEOUT)
            self.up(first, "A", 4)
            _, _, m = rig.wait(r"\] berth: .*fleet: status refused: (.*rollback.*)", 120, first,
                               "the agent refuses the replayed repository and reports it")
            print(f"  ok: the agent's report: refused: {m.group(1)}", flush=True)
        finally:
            restore()
        d, env = self.offline("after the replay")
        st = d.state
        expect(st.get("current") == 4 and (st.get("system") or {}).get("version") == 4,
               "nothing changed: revision 4, system 4")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lib.add_args(ap)
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, in order, of {','.join(STAGES)}")
    args = ap.parse_args()
    args.berth = lib.default_berth(args.berth, args.board)
    why = lib.missing(args)
    if why:
        skip(why)
    stages = [s for s in args.stages.split(",") if s]
    for s in stages:
        if s not in STAGES:
            ap.error(f"--stages: unknown stage {s!r}")

    tmp = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="berth-ab-update.")
    os.makedirs(tmp, exist_ok=True)
    t0 = time.monotonic()
    results = []
    rig = None
    try:
        rig = lib.Rig(args, tmp, echo=not args.quiet)
        ts = time.monotonic()
        for version, broken in ((1, None), (2, None), (3, "init"), (4, None)):
            path, digest, size = rig.slot_image(version, broken)
            print(f"system {version}{' (its init fails)' if broken else ''}: {size >> 20} MiB, {digest}", flush=True)
        print(f"app image: {rig.push_app()}", flush=True)
        rig.release(1)
        # As a factory writes it: slot B holds nothing, so it is not in the order.
        rig.build_disk(slot_a=1, env={"BOOT_ORDER": "A", "BOOT_B_LEFT": "0"})
        print(f"set-up: {time.monotonic() - ts:.1f} s", flush=True)
        run = Run(rig)
        print("\n== first boot: slot A, revision 1 from the channel", flush=True)
        ts = time.monotonic()
        try:
            state = run.first()
            results.append(("first", None, time.monotonic() - ts))
        except Failed as e:
            results.append(("first", str(e), time.monotonic() - ts))
            print(f"  FAIL: {e}", flush=True)
            stages = []
        for s in stages:
            print(f"\n== stage {s}", flush=True)
            ts = time.monotonic()
            try:
                getattr(run, f"stage_{s}")(state)
                results.append((s, None, time.monotonic() - ts))
            except Failed as e:
                rig.machine.kill()
                results.append((s, str(e), time.monotonic() - ts))
                print(f"  FAIL: {e}", flush=True)
                break  # each stage starts from the one before
    finally:
        if rig:
            rig.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== {len(results)} of {len(stages) + 1} steps in {time.monotonic() - t0:.1f} s:")
    for s, err, secs in results:
        print(f"  {'ok' if err is None else 'FAIL':4} {s} ({secs:.1f} s){': ' + err if err else ''}")
    ok = len(results) == len(stages) + 1 and all(err is None for _, err, _ in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

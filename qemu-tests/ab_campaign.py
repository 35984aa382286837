#!/usr/bin/python3
"""The power-cut campaign: the qemu-virt-armhf board (real U-Boot, berth as
PID 1 following its fleet channel, ab_update_lib.py) goes through one A/B
system update after another while QEMU is SIGKILLed at random instants;
after every cut the disk is read offline, and after every update the box
is left to finish it by itself and checked again.

    qemu-tests/ab_campaign.py --native-berth build/berth [--cuts N] [--seed S] [--cuts-per-update K] [--rigs K]

Each update is a release of the next app revision with the next system
version (an image of its own: the slot image with that version in
/etc/berth-system-version), installed into the inactive slot. Its K cuts
(--cuts-per-update) are drawn among five phases, in the order the update
goes through them (a phase may be drawn twice): the download (the image
streamed into the slot), the read-back, the bootloader switch (from the
install's end through berth's reboot), the first boot of the new slot, the
commit (berth up in the new slot, health-gating the revision). For each,
the machine is powered on and cut at a random instant within that phase as
the console shows it (berth's log lines, U-Boot's, ab_init.sh's; the
phases' durations learnt from the uncut runs), so every restart takes the
update on from where the last cut left it (once it is committed, its
remaining cuts go to the next update; an aim the update is past, a download
once a cut hit the switch or later, moves to the new slot's first boot). The phase each cut really hit is
judged afterwards from the console and the disk, and counted.

After every cut, offline (QEMU dead):
- the U-Boot environment reads back (one good copy at least), the data
  partition checks clean (e2fsck on a copy, its journal replayed), and
  berth's state.json parses;
- every slot U-Boot may boot (in BOOT_ORDER, attempts left) holds a whole
  published image (by digest): nothing half-written is bootable;
- the committed state is one whole state: the revision and system version
  state.json names were released together (or are the shipped ones), and
  the committed slot holds that system's image;
- a slot U-Boot is trying (BERTH_TRYING) is the one state.json's system
  update names, or the committed one (its mark-good pending).
After every update, the box powered on and left alone until berth
committed it (or abandoned it), then cut and checked: it booted, the slot
it runs says the system version state.json commits and holds its image,
nothing is staging or trying, the booted slot is first in BOOT_ORDER. An
update a cut's power-on finished already gets no power-on of its own: the
next power-on must boot the committed slot and version and run berth. A
good update abandoned is a failure unless the counter ran out (3 boots of
the tried slot in a row without berth's "trial boot" line) or the
trial-boot bound was reached (docs/updater.md, "Trial boots").

Prints every cut (its phase, the instant), then the cuts per minute, the
cut points by phase and every failure with its evidence (the console's
last lines, the environment, state.json). A failure starts a fresh disk
and the campaign goes on (--stop-on-failure: it ends there). Exits 0 when
no check failed, 1 otherwise, 77 (skipped, with the reason) when something
it needs is missing.

--rigs K runs K such campaigns at once (seeds S..S+K-1), each with its own
machine, registry and repository, sharing --cuts and --minutes: QEMU
emulates the board's one CPU on one host thread, so on 2 cores two rigs
make nearly twice the cuts.
"""
import argparse
import copy
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ab_update_lib as lib  # noqa: E402
from ab_update_lib import Failed  # noqa: E402
from boot_test import skip  # noqa: E402

PHASES = ["download", "read-back", "switch", "first-boot", "commit"]
BOOT_TIMEOUT = 240
APPLY = r"\] berth: .*update: applying a manifest"
REBOOT = r"\] berth: .*update: rebooting"
BOOTING = r"berth-ab: booting slot (\w)"
ATTEMPTS = 3           # the board's boot attempts (boards/qemu-virt-armhf/board.json)
TRIAL_BOOTS_MAX = 8    # ota::kTrialBootsMax: trial boots that reach berth, at most


def committed_re(rev):
    return rf"\] berth: .*update: revision {rev} committed"


def abandoned_re(rev):
    return rf"\] berth: .*update: revision {rev} rolled back"


class Campaign:
    def __init__(self, args, tmp, tag="", t0=None):
        self.args, self.tmp = args, tmp
        self.tag = tag  # before every line it prints (--rigs: which rig)
        self.t0 = t0    # when its --minutes started (default: its own start)
        self.ready = threading.Event()  # set once its first disk is set up (or that failed)
        self.rng = random.Random(args.seed)
        self.rig = None
        self.cuts = 0
        self.aimed = {p: 0 for p in PHASES}
        self.hit = {}
        self.failures = []
        self.updates = {"finished": 0, "abandoned": 0}
        self.expect_boot = None  # (slot, version) the next power-on must boot (check_booted)
        self.reached = None  # the phase the current update's last cut hit
        # Phase durations (s), learnt from what the console shows.
        self.took = {"install": 15.0, "boot": 20.0, "commit": 8.0}

    # ---- set-up

    def fresh(self):
        """A new rig and disk: slot A system 1, revision 1 committed."""
        if self.rig:
            self.rig.close()
        work = os.path.join(self.tmp, f"rig{len(self.failures)}")
        os.makedirs(work, exist_ok=True)
        self.rig = lib.Rig(self.args, work, echo=not self.args.quiet)
        self.rig.slot_image(1)
        self.rig.push_app()
        self.rig.release(1)
        # The agent polls every 0.5 s: a boot reaches the download sooner.
        self.rig.build_disk(slot_a=1, env={"BOOT_ORDER": "A", "BOOT_B_LEFT": "0"}, poll_interval_ms=500)
        self.rev, self.sys = 1, 1
        self.expect_boot = None
        self.pairs = {(1, 0), (1, 1)}  # (revision, system version) committed together: shipped
        first, _ = self.rig.boot(r"BERTH-AB up slot=", BOOT_TIMEOUT)
        self.rig.wait(committed_re(1), BOOT_TIMEOUT, first, "revision 1 committed")
        self.rig.machine.kill()
        self.check_cut("set-up")

    def next_update(self):
        rig = self.rig
        old = self.sys
        self.rev += 1
        self.sys += 1
        rig.slot_image(self.sys)
        rig.release(self.rev, system=self.sys)
        self.pairs.add((self.rev, self.sys))
        self.done = False  # the update committed or abandoned (seen offline after a cut)
        self.update_first = len(rig.machine.lines)  # its first console line
        st = rig.device_state().state
        self.target = "A" if ((st.get("system") or {}).get("slot") or "A") == "B" else "B"
        if old > 1 and old - 1 in rig.images:
            rig.drop_image(old - 1)  # no slot holds it any more (two slots: old and the new one)

    # ---- one cut

    def lines(self, since, pattern):
        rx = re.compile(pattern)
        return [(t, m) for t, m in ((t, rx.search(x)) for t, x in self.rig.machine.lines[since:]) if m]

    def first_of(self, since, patterns, timeout):
        """Waits for the first line matching any of `patterns`; (pattern
        index, time, line index) or None."""
        rx = "|".join(f"(?:{p})" for p in patterns)
        hit = self.rig.machine.wait(rx, timeout, since=since)
        if not hit:
            return None
        text = hit[2].string
        for i, p in enumerate(patterns):
            if re.search(p, text):
                return i, hit[1], hit[0]
        return None

    def feasible(self, aim):
        """`aim`, or a later phase when the update is past it already (the
        next power-on goes on from where the last cut left it: no download
        comes again once a cut hit the switch). A download, read-back or
        switch aimed at after a cut hit the switch moves to the new slot's
        first boot; after one hit that boot or the commit, to the commit
        (not to the first boot: cuts before berth in the new slot use up its
        counter, the draws decide how many)."""
        if aim not in ("download", "read-back", "switch"):
            return aim
        return {"switch": "first-boot", "first-boot": "commit", "commit": "commit"}.get(self.reached, aim)

    def cut_once(self, aim):
        m = self.rig.machine
        self.aimed[aim] += 1
        first = m.start()
        t_on = m.lines[first][0]
        # The update finished: committed, or abandoned (decided at this
        # start in the old slot: the phase aimed at will not come).
        done = rf"{committed_re(self.rev)}|{abandoned_re(self.rev)}"
        wait = BOOT_TIMEOUT + 3 * self.took["install"]
        if aim in ("download", "read-back"):
            hit = self.first_of(first, [APPLY, done], wait)
            lo, hi = (0.0, 0.65) if aim == "download" else (0.65, 1.05)
            delay = self.rng.uniform(lo, hi) * self.took["install"]
        elif aim == "switch":
            hit = self.first_of(first, [REBOOT, done], wait)
            delay = self.rng.uniform(0, 1.5)
        elif aim == "first-boot":
            hit = self.first_of(first, [rf"berth-ab: booting slot {self.target}", done], wait + BOOT_TIMEOUT)
            delay = self.rng.uniform(0, self.took["boot"])
        else:  # commit
            hit = self.first_of(first, [rf"BERTH-AB up slot={self.target}", done], wait + BOOT_TIMEOUT)
            delay = self.rng.uniform(0, self.took["commit"])
        if hit is None:
            delay = 0  # nothing came in time: cut now, judged below
        elif hit[0] == 1:
            delay = self.rng.uniform(0, 2)  # already committed or abandoned: a cut in the idle box
        time.sleep(delay)
        m.kill()
        self.cuts += 1
        d = self.rig.device_state(extra=[f"slots/{self.target}.json"])
        phase = self.judge(first, d)
        self.hit[phase] = self.hit.get(phase, 0) + 1
        self.reached = phase
        self.say(f"cut {self.cuts}: aimed at {aim}, hit {phase}, {m.lines[-1][0] - t_on:.1f} s after power-on "
                 f"(update to revision {self.rev}, system {self.sys} in slot {self.target})")
        self.check_booted(first)
        _, st = self.check_cut(f"cut {self.cuts} ({phase})", d)
        # Committed, or abandoned (the new slot ran out of attempts).
        self.done = st.get("current") == self.rev or self.sys in ((st.get("system") or {}).get("failed") or [])

    def judge(self, since, d):
        """The phase this power-on was cut in, from its console and the disk
        (`d`: rig.device_state() after the cut)."""
        if self.lines(since, committed_re(self.rev)):
            return "after the commit"
        if self.lines(since, abandoned_re(self.rev)):
            return "after the update was abandoned"
        booted = self.lines(since, rf"berth-ab: booting slot {self.target}")
        if booted:
            up = [t for t, _ in self.lines(since, rf"BERTH-AB up slot={self.target}") if t >= booted[-1][0]]
            return "commit" if up else "first-boot"
        if self.lines(since, REBOOT):
            return "switch"
        if self.lines(since, APPLY):
            f = d.files
            hist = (f["revisions/history.json"] or "").replace(" ", "")
            if f'"version":{self.rev},"event":"system-installed"' in hist:
                return "switch"
            text = f[f"slots/{self.target}.json"] or ""
            off, size = re.search(r'"offset":\s*(\d+)', text), re.search(r'"size":\s*(\d+)', text)
            if off and size and int(off.group(1)) >= int(size.group(1)):
                return "read-back"
            return "download"
        if self.lines(since, r"\] berth: .*daemon starting"):
            return "berth starting"
        return "boot (before berth)"

    # ---- checks

    def check_cut(self, what, d=None):
        """The safety checks, offline (`d`: rig.device_state() when already read)."""
        rig = self.rig
        try:
            env = rig.env()
        except Exception as e:
            raise Failed(f"{what}: the U-Boot environment does not read back ({e})")
        d = d or rig.device_state()
        holds = {}

        def slot_holds(s):  # each slot hashed once per check
            if s not in holds:
                holds[s] = rig.slot_holds(s)
            return holds[s]
        if d.fsck[0] not in (0, 1):
            raise Failed(f"{what}: the data partition does not check clean: {d.fsck[1]}")
        st = d.state
        if not isinstance(st, dict):
            raise Failed(f"{what}: state.json: {st}")
        order = env.get("BOOT_ORDER", "").split()
        for s in order:
            if int(env.get(f"BOOT_{s}_LEFT", "0") or 0) > 0 and slot_holds(s) is None:
                raise Failed(f"{what}: slot {s} is bootable (BOOT_ORDER={order}, BOOT_{s}_LEFT="
                             f"{env.get(f'BOOT_{s}_LEFT')}) but holds no whole image; env {env}, state {st}")
        sysst = st.get("system") or {}
        cur = st.get("current")
        ver = sysst.get("version") or 0
        if (cur, ver) not in self.pairs:
            raise Failed(f"{what}: committed revision {cur} with system {ver}: not a state released together; "
                         f"state {st}")
        cslot = sysst.get("slot") or "A"
        if slot_holds(cslot) != (ver or 1):
            raise Failed(f"{what}: the committed slot {cslot} holds system {slot_holds(cslot)}, state.json says {ver or 1}; "
                         f"state {st}, env {env}")
        trying = env.get("BERTH_TRYING")
        if trying and trying != ((sysst.get("trying") or {}).get("slot")) and trying != sysst.get("slot"):
            raise Failed(f"{what}: U-Boot tries slot {trying}, state.json names no such try; state {st}, env {env}")
        return env, st

    def settle(self):
        """Powers on and lets the box finish (or abandon) the update alone."""
        rig, m = self.rig, self.rig.machine
        d = rig.device_state()
        st = d.state
        failed = (st.get("system") or {}).get("failed") or []
        done_before = (st.get("current") == self.rev or self.sys in failed) and not st.get("trying")
        if done_before:
            # Finished by a cut's power-on already: no power-on of its own.
            # The next one (the next update's first) boots this state, and
            # check_booted() checks there that it comes up.
            first = None
        else:
            first = m.start()
            abandoned = abandoned_re(self.rev)
            hit = self.first_of(first, [committed_re(self.rev), abandoned],
                                BOOT_TIMEOUT * 3 + self.took["install"] * 3)
            if hit is None:
                m.kill()
                raise Failed(f"settle (revision {self.rev}): neither committed nor abandoned within the time")
            self.learn(first)
            if hit[0] == 1:
                # Abandoned. Decided in the old slot (the new one never
                # came up): the box runs there, its report follows. Decided
                # in the new slot (its checks failed): a reboot into the old.
                after = self.first_of(hit[2], [REBOOT, r"\] berth: .*fleet: status rolled-back"], 60)
                if after and after[0] == 0:
                    rig.wait(r"BERTH-AB up slot=", BOOT_TIMEOUT, after[2], "the old slot comes back")
                    self.first_of(after[2], [r"\] berth: .*fleet: status"], 60)
        if first is None:
            env, st = self.check_cut(f"settle of revision {self.rev}", d)
            sysst = st.get("system") or {}
            slot, version = sysst.get("slot") or "A", sysst.get("version") or 1
            self.expect_boot = (slot, version)
        else:
            m.kill()
            self.check_booted(first)
            env, st = self.check_cut(f"settle of revision {self.rev}")
            said = self.lines(first, r"BERTH-AB system slot=(\w+) version=(\d+)")
            ups = self.lines(first, r"BERTH-AB up slot=(\w+)")
            if not said or not ups:
                raise Failed(f"settle (revision {self.rev}): the box did not come up")
            slot, version = said[-1][1].group(1), int(said[-1][1].group(2))
            sysst = st.get("system") or {}
            if ups[-1][1].group(1) != slot:
                raise Failed(f"settle (revision {self.rev}): slot {slot} booted, berth came up in "
                             f"{ups[-1][1].group(1)}")
        if st.get("trying") or st.get("staging") or sysst.get("trying"):
            raise Failed(f"settle (revision {self.rev}): still trying or staging: {st}")
        if (sysst.get("slot") or "A") != slot or (sysst.get("version") or 1) != version:
            raise Failed(f"settle (revision {self.rev}): runs slot {slot} system {version}, state.json commits "
                         f"{sysst}")
        # Settled by a cut's power-on, the cut may have come between the
        # commit and marking the slot good (BERTH_TRYING still names it):
        # the next start marks it good (keep_booted_good).
        pending = first is None and env.get("BERTH_TRYING") == slot
        if env.get("BOOT_ORDER", "").split()[:1] != [slot] or (env.get("BERTH_TRYING") and not pending):
            raise Failed(f"settle (revision {self.rev}): slot {slot} runs but the environment is {env}")
        if st.get("current") == self.rev and sysst.get("version") == self.sys:
            self.updates["finished"] += 1
            self.say(f"update to revision {self.rev} (system {self.sys}, slot {slot}): finished")
        else:
            self.updates["abandoned"] += 1
            self.check_abandoned(d if first is None else rig.device_state())
            failed = self.sys in (sysst.get("failed") or [])
            self.say(f"update to revision {self.rev} (system {self.sys}): abandoned, the box runs revision "
                     f"{st.get('current')} system {sysst.get('version')} in slot {slot}"
                     f"{' (system ' + str(self.sys) + ' remembered as failed)' if failed else ''}")

    def check_booted(self, first):
        """After a settle that needed no power-on: this power-on (from line
        `first`) booted the committed slot with its system version, and
        berth ran there."""
        if not self.expect_boot:
            return
        slot, version = self.expect_boot
        said = self.lines(first, r"BERTH-AB system slot=(\w+) version=(\d+)")
        if not said:
            raise Failed(f"the box did not come up after revision {self.rev - 1} was settled (expected slot {slot}, "
                         f"system {version})")
        got = (said[0][1].group(1), int(said[0][1].group(2)))
        if got != (slot, version):
            raise Failed(f"after revision {self.rev - 1} was settled the box booted slot {got[0]} system {got[1]}, "
                         f"not slot {slot} system {version}")
        berth = [t for t, _ in self.lines(first, r"\] berth: ") if t >= said[0][0]]
        if not berth:
            raise Failed(f"after revision {self.rev - 1} was settled slot {slot} booted but berth never logged")
        self.expect_boot = None

    def check_abandoned(self, d):
        """The counter decision (docs/updater.md, "Trial boots"): a good
        system is abandoned only when the bootloader's counter ran out (3
        boots of the tried slot in a row that never reached berth: no
        "trial boot" line between them) or when the trial-boot bound was
        reached (8 boots of the slot that did)."""
        why = [e.get("reason", "") for e in (d.history if isinstance(d.history, list) else [])
               if e.get("version") == self.rev and e.get("event") == "rolled-back"]
        why = why[-1] if why else f"no rolled-back entry for revision {self.rev} in the history"
        boots, run, longest = 0, 0, 0
        for _, text in self.rig.machine.lines[self.update_first:]:
            if re.search(rf"berth-ab: booting slot {self.target}", text):
                boots += 1
                run += 1
                longest = max(longest, run)
            elif re.search(rf"\] berth: .*update: revision {self.rev} trial boot", text):
                run = 0
        if "ran out" in why and longest >= ATTEMPTS:
            return
        if "times on trial" in why and boots > TRIAL_BOOTS_MAX:
            return
        raise Failed(f"a good update (revision {self.rev}, system {self.sys}) was abandoned: {why} (the slot booted "
                     f"{boots} times, at most {longest} in a row without reaching berth)")

    def learn(self, since):
        """Phase durations from an uncut power-on."""
        def at(p):
            x = self.lines(since, p)
            return x[0][0] if x else None
        a, r = at(APPLY), at(REBOOT)
        if a is not None and r is not None:
            self.took["install"] = 0.5 * self.took["install"] + 0.5 * (r - a)
        booted = self.lines(since, BOOTING)
        said = self.lines(since, r"BERTH-AB up slot=")
        c = at(committed_re(self.rev))
        if len(booted) > 1 and said and said[-1][0] > booted[-1][0]:
            self.took["boot"] = 0.5 * self.took["boot"] + 0.5 * (said[-1][0] - booted[-1][0])
            if c is not None and c > said[-1][0]:
                self.took["commit"] = 0.5 * self.took["commit"] + 0.5 * (c - said[-1][0])

    def evidence(self, why):
        rig = self.rig
        ev = [why]
        try:
            ev.append(f"env: {rig.env()}")
        except Exception as e:
            ev.append(f"env: unreadable ({e})")
        try:
            d = rig.device_state()
            ev.append(f"state.json: {d.state}")
            ev.append(f"history (last 6): {d.history[-6:] if isinstance(d.history, list) else d.history}")
        except Exception as e:
            ev.append(f"data partition: unreadable ({e})")
        ev.append("console (last 25 lines):")
        ev += [f"    [{t:7.1f}] {x}" for t, x in rig.machine.lines[-25:]]
        return ev

    def say(self, text):
        print("\n".join(self.tag + line if line else line for line in text.split("\n")), flush=True)

    def run(self):
        t0 = self.t0 or time.monotonic()
        try:
            self.fresh()
        finally:
            self.ready.set()
        t_cuts = time.monotonic()
        def time_left():
            return not self.args.minutes or time.monotonic() - t0 < self.args.minutes * 60
        while self.cuts < self.args.cuts and time_left():
            try:
                self.next_update()
                # The update's cuts in the order of its phases (a phase may
                # be drawn twice): each cut's restart takes the update on
                # from where the cut left it.
                n = min(self.args.cuts_per_update, self.args.cuts - self.cuts)
                self.reached = None  # the phase the update's last cut hit
                for aim in sorted(self.rng.choices(PHASES, k=n), key=PHASES.index):
                    if self.done or not time_left():
                        break  # the rest go to the next update (or the time is up)
                    self.cut_once(self.feasible(aim))
                self.settle()
            except Failed as e:
                self.rig.machine.kill()
                ev = self.evidence(str(e))
                self.failures.append(ev)
                self.say("FAILURE: " + "\n  ".join(ev))
                if self.args.stop_on_failure:
                    break
                self.fresh()
        if self.expect_boot and not (self.args.stop_on_failure and self.failures):
            # The last update was settled without a power-on: one more, to
            # see the box come up in it.
            try:
                first = self.rig.machine.start()
                self.rig.wait(r"\] berth: .*fleet: status idle: agent started", BOOT_TIMEOUT, first, "the box boots")
                self.rig.machine.kill()
                self.check_booted(first)
            except Failed as e:
                self.rig.machine.kill()
                ev = self.evidence(str(e))
                self.failures.append(ev)
                self.say("FAILURE: " + "\n  ".join(ev))
        minutes = (time.monotonic() - t_cuts) / 60
        self.say(f"\n== {self.cuts} power cuts in {minutes:.1f} min ({self.cuts / max(minutes, 1e-9):.1f} cuts per "
                 f"minute, set-up included: {(time.monotonic() - t0) / 60:.1f} min), seed {self.args.seed}")
        self.say(f"  updates: {self.updates['finished']} finished, {self.updates['abandoned']} abandoned by the box")
        self.say("  aimed at: " + ", ".join(f"{p} {n}" for p, n in self.aimed.items()))
        self.say("  cut in (judged from the console and the disk): "
                 + ", ".join(f"{p} {n}" for p, n in sorted(self.hit.items(), key=lambda x: -x[1])))
        self.say(f"  failures: {len(self.failures)}")
        for i, ev in enumerate(self.failures, 1):
            self.say(f"  {i}. " + "\n     ".join(ev))
        self.say(f"{self.cuts - len(self.failures)} passed, {len(self.failures)} failed")
        return 1 if self.failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    lib.add_args(ap)
    ap.add_argument("--cuts", type=int, default=20, help="power cuts in all (default 20)")
    ap.add_argument("--cuts-per-update", type=int, default=3,
                    help="cuts before an update is left to finish (default 3)")
    ap.add_argument("--minutes", type=float, default=0,
                    help="start no cut after this many minutes, set-up included (default: no limit); "
                         "the run then ends with the cuts made so far")
    ap.add_argument("--seed", type=int, default=None, help="the random seed (default: from the time, printed)")
    ap.add_argument("--stop-on-failure", action="store_true", help="end at the first failure")
    ap.add_argument("--rigs", type=int, default=1,
                    help="campaigns side by side, each with its own machine (default 1; one core each)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int(time.time())
    args.berth = lib.default_berth(args.berth, args.board)
    why = lib.missing(args)
    if why:
        skip(why)
    if args.rigs < 1:
        ap.error("--rigs must be at least 1")
    tmp = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="berth-ab-campaign.")
    os.makedirs(tmp, exist_ok=True)
    print(f"power-cut campaign: {args.cuts} cuts, {args.cuts_per_update} per update, seed {args.seed}"
          + (f", at most {args.minutes:g} minutes" if args.minutes else "")
          + (f", {args.rigs} rigs side by side (seeds {args.seed}..{args.seed + args.rigs - 1})" if args.rigs > 1 else ""),
          flush=True)
    try:
        if args.rigs == 1:
            return run_rig(Campaign(args, tmp))
        return run_rigs(args, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def run_rig(c):
    try:
        return c.run()
    except Failed as e:  # the set-up itself failed
        c.say(f"FAILURE (set-up): {e}")
        return 1
    finally:
        if c.rig:
            c.rig.close()


def run_rigs(args, tmp):
    """--rigs K: K campaigns at once, each with its own machine, registry
    and repository (QEMU emulates one CPU on one host thread, so K rigs use
    up to K cores), sharing the cuts and the minutes. Their set-ups run one
    after another (the cached slot images and firmware are built once)."""
    t0 = time.monotonic()
    campaigns, threads = [], []
    for i in range(args.rigs):
        a = copy.copy(args)
        a.seed = args.seed + i
        a.cuts = args.cuts // args.rigs + (1 if i < args.cuts % args.rigs else 0)
        c = Campaign(a, os.path.join(tmp, f"r{i}"), tag=f"[rig {i}] ", t0=t0)
        os.makedirs(c.tmp, exist_ok=True)
        c.rc = 1  # until its run returns

        def run(c=c):
            c.rc = run_rig(c)
        t = threading.Thread(target=run)
        t.start()
        campaigns.append(c)
        threads.append(t)
        c.ready.wait()
    for t in threads:
        t.join()
    minutes = (time.monotonic() - t0) / 60
    cuts = sum(c.cuts for c in campaigns)
    failed = sum(len(c.failures) for c in campaigns)
    setup = [str(i) for i, c in enumerate(campaigns) if c.rc and not c.failures]
    print(f"\n== {args.rigs} rigs: {cuts} power cuts in {minutes:.1f} min, set-up included "
          f"({cuts / max(minutes, 1e-9):.1f} cuts per minute); failures: {failed}"
          + (f"; set-up failed on rig {', '.join(setup)}" if setup else ""))
    return 1 if any(c.rc for c in campaigns) else 0


if __name__ == "__main__":
    sys.exit(main())

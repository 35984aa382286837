#!/usr/bin/python3
"""Boots the qemu-virt-armhf board through real U-Boot and checks RAUC's boot
counting (boards/qemu-virt-armhf/boot.cmd with boards/common/uboot-ab.cmd)
from the console and from the disk image read offline.

    qemu-tests/ab_boot_test.py [--berth build-armhf/berth] [--stages a,fallback,...] [--keep DIR]
    qemu-tests/ab_boot_test.py --board qemu-virt-arm64 [--berth build-arm64/berth] ...

The same stages run on either board (ab_image.BOARDS): qemu-virt-armhf (the
default) or qemu-virt-arm64 (qemu-system-aarch64, U-Boot's qemu_arm64, the
arm64 kernel started with booti).

Stages (each a fresh power-on of the same disk, cut with SIGKILL once judged):
  env        U-Boot only (killed when it starts a kernel): the newer good copy
             of the redundant environment wins; a torn (bad CRC) newer copy
             falls back to the older one; the flag wraps from 255 to 0; with
             no good copy the script uses RAUC's defaults; its writes keep
             BERTH_TRYING
  a          RAUC's default environment boots slot A: berth is PID 1, the
             slot is A by the kernel command line, BOOT_A_LEFT 3 -> 2
  fallback-kernel  BOOT_ORDER="B A" and BOOT_B_LEFT=3 written offline
             (fw_setenv), slot B's kernel does not start (U-Boot's bootz
             refuses it): U-Boot tries B three times, then boots A by itself;
             afterwards BOOT_B_LEFT=0, BOOT_A_LEFT=2; and, where the native
             berth has `berth slot`, its U-Boot backend reads the same from
             the disk image (A good, B bad)
  fallback   the same with a slot B whose kernel boots and whose init fails:
             three kernel panics (panic=-1 resets), then A; the data
             partition saw only slot A
  fallback-hang  the same with a slot B whose system hangs once up: its
             init counts the boot, starts the board's watchdog (armhf:
             softdog; arm64: QEMU's i6300esb) with a 5 s timeout and never
             feeds it again: three watchdog resets with no kernel panic,
             then A; the data partition saw B three times, then A
  good       a good root filesystem written into slot B, BOOT_B_LEFT=3: B boots
  cuts       power cuts (SIGKILL) at random instants of a power-on's first
             8 s, half of them within 0.12 s of U-Boot finding boot.scr (the
             script runs in well under 0.1 s: its reads and its write are
             there), on a disk trying a broken B: after every cut the
             environment reads back (one good copy at least), no counter
             ever rises, each falls by the attempts the console showed
             saved (or one more: a cut between the write and its message;
             A's counter is put back to 9 offline, as a mark-good would,
             whenever it is below 3); then an uncut boot ends in slot A with
             BOOT_B_LEFT=0 (--cuts N, --seed S)
  exhausted  both slots broken (kernels that do not start), one attempt left
             each: after both fail the counters go back to 3 and A is tried
             again

Exits 0 when every stage passed, 1 otherwise, 77 (skipped, with the reason)
when qemu-system-arm, u-boot-qemu, the kernel (fetch-kernel.sh), the sysroot,
the armhf berth or an image tool (sfdisk, mke2fs, debugfs, mkimage,
mkenvimage, fw_setenv, fw_printenv) is missing. The armhf berth as boot_test.py finds it.
"""
import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ab_image  # noqa: E402
import ab_qemu  # noqa: E402
from boot_test import find_berth, skip  # noqa: E402

STAGES = ["env", "a", "fallback-kernel", "fallback", "fallback-hang", "good", "cuts", "exhausted"]
BOOTING = r"berth-ab: booting slot (\w)"


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)
    print(f"  ok: {what}", flush=True)


def boot(machine, until, timeout):
    """Powers `machine` on; returns (first line index, match of `until`); the
    machine keeps running. Fails (the machine killed) when `until` is not seen."""
    first = machine.start()
    hit = machine.wait(until, timeout, since=first)
    if hit is None:
        machine.kill()
        raise Failed(f"no console line matching {until!r} within {timeout:.0f} s")
    return first, hit[2]


class Run:
    def __init__(self, args, tmp):
        self.args, self.tmp = args, tmp
        self.disk = os.path.join(tmp, "disk.img")
        self.log = os.path.join(tmp, "console.log")
        self.machine = ab_qemu.Machine(self.disk, log=self.log, board=args.board)
        self.good = self.slot(None)
        self.broken = self.slot("init")
        self.hang = self.slot("hang")
        self.broken_kernel = self.slot("kernel")
        # The data partition's seed: berth runs with `--board none`, so that
        # what the environment shows is U-Boot's script alone (with the
        # slot's /etc/berth/board.json berth would give the booted slot its
        # counter back: docs/updater.md; ab_update_test.py tests that).
        self.no_board = os.path.join(tmp, "data-seed")
        os.makedirs(os.path.join(self.no_board, "ab"), exist_ok=True)
        with open(os.path.join(self.no_board, "ab", "daemon-args"), "w") as f:
            f.write("--board none\n")

    def slot(self, broken):
        t0 = time.monotonic()
        a = self.args
        path = ab_image.build_rootfs(types.SimpleNamespace(
            berth=a.berth, kernel_dir=a.kernel_dir, sysroot=a.sysroot, broken=broken, size_mib=32, output=None,
            board=a.board))
        print(f"slot image ({'broken ' + broken if broken else 'good'}): {path}, {time.monotonic() - t0:.1f} s",
              flush=True)
        return path

    def env(self):
        return ab_image.env_read(self.disk)

    def boot(self, until, timeout):
        return boot(self.machine, until, timeout)

    def lines(self, since, pattern):
        rx = re.compile(pattern)
        return [rx.search(line) for line in self.machine.text(since) if rx.search(line)]

    def berth_says_booted(self, first, slot):
        """berth's own word on the booted slot (`berth slot status`, run by
        ab_init.sh once berth is up), where this berth has that command.
        The machine must still be running."""
        if not self.machine.wait(r"BERTH-AB slot-status: ", 30, since=first):
            raise Failed("no `berth slot status` output on the console")
        said = self.lines(first, r"BERTH-AB slot-status: booted: (\w+)")
        if not said and self.lines(first, r"BERTH-AB slot-status: berth: unknown command `slot`"):
            print("  info: this berth has no `slot` command: the slot is checked from the command line only",
                  flush=True)
            return
        expect(said, "berth slot status reports the booted slot")
        expect(said[0].group(1) == slot, f"berth slot status says booted: {slot}")

    def data_boots(self):
        """The slots the data partition counted (ab_init.sh), read with debugfs."""
        offset = ab_image.partitions(self.disk)[3][0]
        out = subprocess.run(["debugfs", "-R", "cat /ab/boots", f"{self.disk}?offset={offset}"],
                             capture_output=True, text=True).stdout
        return out.split()

    # ------------------------------------------------------------ the stages

    def stage_env(self):
        ab_image.build_disk(self.disk, self.good, self.broken, {}, board=self.args.board, data_dir=self.no_board)
        copies = ab_image.env_config(self.disk, os.path.join(self.tmp, "fw_env.config"))

        def uboot_picks(expect_order):
            first, m = self.boot(BOOTING, 60)
            self.machine.kill()
            said = self.lines(first, r"berth-ab: BOOT_ORDER=(.*) BOOT_A_LEFT=(\d+) BOOT_B_LEFT=(\d+) \(copy (\d)\)")
            return said[0].groups() if said else None

        def corrupt(copy):
            offset = copies[copy - 1][0]
            with open(self.disk, "r+b") as f:
                f.seek(offset + 8)  # a byte of the data: the CRC no longer matches
                b = f.read(1)
                f.seek(offset + 8)
                f.write(bytes([b[0] ^ 0xFF]))

        def set_flag(copy, flag):
            with open(self.disk, "r+b") as f:
                f.seek(copies[copy - 1][0] + 4)
                f.write(bytes([flag]))

        # Two writes: copy 2 (flag 2) holds B A, then copy 1 (flag 3) A B with A_LEFT=1.
        ab_image.env_write(self.disk, {"BOOT_ORDER": "B A"})
        ab_image.env_write(self.disk, {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "1", "BERTH_TRYING": "A"})
        expect(uboot_picks(None) == ("A B", "1", "3", "1"), "the newer copy (flag 3 over 2) is the one U-Boot reads")
        # That boot wrote copy 2 (flag 4): A_LEFT 0. Tear it.
        expect(self.env() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "0", "BOOT_B_LEFT": "3", "BERTH_TRYING": "A"},
               "the boot saved BOOT_A_LEFT=0 and carried BERTH_TRYING over (libubootenv reads it back)")
        corrupt(2)
        expect(uboot_picks(None) == ("A B", "1", "3", "1"),
               "a torn newer copy (bad CRC) is passed over for the older good one")
        # Flag wrap: copy 1 holds flag 255, copy 2 (rewritten by that boot) gets 0 by hand.
        env = self.env()
        expect(env.get("BOOT_A_LEFT") == "0", "that boot rewrote the torn copy")
        ab_image.env_init(self.disk, {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"})
        set_flag(1, 255)
        ab_image.env_write(self.disk, {"BOOT_A_LEFT": "3"})  # copy 2, flag 255 + 1 = 0
        expect(uboot_picks(None) == ("A B", "3", "3", "2"), "flag 0 is newer than flag 255 (the wrap)")
        corrupt(1)
        corrupt(2)
        expect(uboot_picks(None) == ("A B", "3", "3", "0"), "with no good copy: RAUC's defaults (A B, 3, 3)")
        expect(self.env() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"},
               "and the decremented defaults are written back")

    def boots(self, slot, root):
        """Powers on; slot `slot` comes up at once, berth as PID 1, `root` its root."""
        first, m = self.boot(r"BERTH-AB (up|not-up|broken|no-data) slot=(\w+)", self.args.boot_timeout)
        expect(m.group(1) == "up" and m.group(2) == slot, f"slot {slot} boots and berth is PID 1 ({m.group(0)})")
        self.berth_says_booted(first, slot)
        self.machine.kill()
        expect([x.group(1) for x in self.lines(first, BOOTING)] == [slot], f"U-Boot booted slot {slot}, once")
        said = self.lines(first, r"BERTH-AB boot slot=(\w+) root=(\S+)")
        expect(said and said[0].groups() == (slot, root), f"the kernel command line names slot {slot}, root {root}")

    def stage_a(self):
        ab_image.build_disk(self.disk, self.good, self.broken, {}, board=self.args.board, data_dir=self.no_board)
        self.boots("A", "/dev/vda2")
        expect(self.env() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"},
               "BOOT_A_LEFT went 3 -> 2 on the disk (nothing marked the slot good)")

    def fall_back(self, broken, timeout, b_boots=0):
        """Slot B gets `broken` and is tried first; returns the console's
        first line index. `b_boots`: the times B's system gets far enough
        to count its boot on the data partition."""
        if not os.path.exists(self.disk):
            ab_image.build_disk(self.disk, self.good, broken, {}, board=self.args.board, data_dir=self.no_board)
        ab_image.write_slot(self.disk, "B", broken)
        # As an updater would after writing slot B: A marked good, B to be tried.
        ab_image.env_write(self.disk, {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"})
        before = self.data_boots()
        first, m = self.boot(r"BERTH-AB (up|not-up|no-data) slot=(\w+)", timeout)
        self.machine.kill()
        expect(m.group(1) == "up" and m.group(2) == "A", f"after slot B failed, slot A is up ({m.group(0)})")
        expect([x.group(1) for x in self.lines(first, BOOTING)] == ["B", "B", "B", "A"],
               "U-Boot tried B three times, then A")
        expect(self.env() == {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "0"},
               "on the disk: BOOT_B_LEFT=0, BOOT_A_LEFT=2, BOOT_ORDER still B A")
        expect(self.data_boots() == before + ["B"] * b_boots + ["A"],
               f"the data partition saw {b_boots} more boots of slot B, then one of A")
        status = self.native_slot_status()
        if status is None:
            print("  info: no native berth with a `slot` command: its U-Boot backend is not checked", flush=True)
        else:
            expect("slot A: good, 2 attempts left" in status and "slot B: bad, 0 attempts left" in status
                   and "next:   A" in status, "berth slot status (libubootenv) reads A good, B bad, next A")
        return first

    def native_slot_status(self):
        """`berth slot status` of the native berth on the disk image (the
        board profile with its fw_env.config pointed at the image), or None
        where that berth has no `slot` command."""
        if not self.args.native_berth:
            return None
        cfg = os.path.join(self.tmp, "fw_env.config")
        ab_image.env_config(self.disk, cfg)
        with open(os.path.join(ab_image.board_dir(self.args.board), "board.json")) as f:
            board = json.load(f)
        board["bootloader"]["env"] = cfg
        path = os.path.join(self.tmp, "board.json")
        with open(path, "w") as f:
            json.dump(board, f)
        r = subprocess.run([self.args.native_berth, "slot", "status", "--board", path, "--booted", "A"],
                           capture_output=True, text=True)
        if "unknown command" in r.stderr:
            return None
        print("  berth slot status:\n    " + (r.stdout + r.stderr).strip().replace("\n", "\n    "), flush=True)
        return r.stdout if r.returncode == 0 else r.stderr

    def stage_fallback_kernel(self):
        first = self.fall_back(self.broken_kernel, self.args.boot_timeout + 60)
        expect(len(self.lines(first, r"berth-ab: slot B did not start a kernel")) == 3,
               "U-Boot could not start B's kernel three times")

    def stage_fallback(self):
        first = self.fall_back(self.broken, 3 * self.args.boot_timeout)
        expect(len(self.lines(first, r"BERTH-AB broken slot=B")) == 3, "slot B's init failed three times")
        expect(len(self.lines(first, r"Kernel panic")) == 3, "three kernel panics (and resets)")

    def stage_fallback_hang(self):
        first = self.fall_back(self.hang, 3 * self.args.boot_timeout, b_boots=3)
        expect(len(self.lines(first, r"BERTH-AB hang slot=B")) == 3, "slot B's system hung three times")
        expect(not self.lines(first, r"Kernel panic"), "no kernel panic: the watchdog reset the machine each time")

    def stage_good(self):
        if not os.path.exists(self.disk):
            ab_image.build_disk(self.disk, self.good, self.broken, {"BOOT_ORDER": "B A"}, board=self.args.board, data_dir=self.no_board)
        ab_image.write_slot(self.disk, "B", self.good)
        ab_image.env_write(self.disk, {"BOOT_ORDER": "B A", "BOOT_B_LEFT": "3"})
        env0 = self.env()
        self.boots("B", "/dev/vda3")
        expect(self.env() == {**env0, "BOOT_B_LEFT": "2"}, "BOOT_B_LEFT went 3 -> 2 on the disk")

    def copies_torn(self):
        """How many of the environment's copies have a bad CRC."""
        torn = 0
        copies = ab_image.env_config(self.disk, os.path.join(self.tmp, "fw_env.config"))
        with open(self.disk, "rb") as f:
            for offset, size in copies:
                f.seek(offset)
                raw = f.read(size)
                torn += int.from_bytes(raw[:4], "little") != zlib.crc32(raw[5:])
        return torn

    def stage_cuts(self):
        rng = random.Random(self.args.seed)
        print(f"  {self.args.cuts} cuts, seed {self.args.seed}", flush=True)
        ab_image.build_disk(self.disk, self.good, self.broken_kernel,
                            {"BOOT_ORDER": "B A", "BOOT_A_LEFT": "9", "BOOT_B_LEFT": "3"}, board=self.args.board, data_dir=self.no_board)
        prev = self.env()
        points, torn = {}, 0
        for i in range(self.args.cuts):
            first = self.machine.start()
            if rng.random() < 0.5:
                if not self.machine.wait(r"Found U-Boot script", 30, since=first):
                    raise Failed(f"cut {i}: U-Boot did not find the boot script")
                delay = rng.uniform(0, 0.12)
            else:
                delay = rng.uniform(0, 8)
            # The power cut's instant is the random delay; what happened
            # before it is judged from the console and the disk.
            time.sleep(delay)
            self.machine.kill()
            read = len(self.lines(first, r"berth-ab: reading the boot counters"))
            saved = len(self.lines(first, r"berth-ab: booting slot \w \(.* saved\)"))
            point = "before the script" if not read else ("in the script" if read > saved else "after its write")
            points[point] = points.get(point, 0) + 1
            torn += self.copies_torn()
            try:
                env = self.env()
            except subprocess.CalledProcessError:
                raise Failed(f"cut {i} ({point}): no good environment copy left")
            fell = {k: int(prev[k]) - int(env[k]) for k in ("BOOT_A_LEFT", "BOOT_B_LEFT")}
            if env.get("BOOT_ORDER") != "B A" or min(fell.values()) < 0:
                raise Failed(f"cut {i} ({point}): {env} after {prev}")
            if not saved <= sum(fell.values()) <= saved + 1:
                raise Failed(f"cut {i} ({point}): counters fell by {fell}, the console showed {saved} saved")
            if int(env["BOOT_A_LEFT"]) < 3:
                # As berth would once A is up (mark-good): A never runs out,
                # so no counter is ever reset to 3 behind the check's back.
                ab_image.env_write(self.disk, {"BOOT_A_LEFT": "9"})
                env = self.env()
            prev = env
        expect(True, f"{self.args.cuts} cuts ({', '.join(f'{n} {p}' for p, n in sorted(points.items()))}): "
                     f"the environment always read back, counters only fell, by the attempts made; "
                     f"{torn} torn copies seen")
        first, m = self.boot(r"BERTH-AB (up|not-up|no-data) slot=(\w+)", 2 * self.args.boot_timeout)
        self.machine.kill()
        env = self.env()
        expect(m.group(1) == "up" and m.group(2) == "A" and env["BOOT_B_LEFT"] == "0",
               f"then slot A is up and BOOT_B_LEFT is 0 ({m.group(0)}, {env})")

    def stage_exhausted(self):
        ab_image.build_disk(self.disk, self.broken_kernel, self.broken_kernel,
                            {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "1", "BOOT_B_LEFT": "1"}, board=self.args.board, data_dir=self.no_board)
        first, m = self.boot(r"berth-ab: booting slot A \(BOOT_A_LEFT=2 BOOT_B_LEFT=3 saved\)",
                             3 * self.args.boot_timeout)
        self.machine.kill()
        expect([x.group(1) for x in self.lines(first, BOOTING)] == ["A", "B", "A"],
               "A, then B, then (counters reset) A again")
        expect(len(self.lines(first, r"berth-ab: no slot has attempts left")) == 1,
               "once both were used up, U-Boot said so and reset the counters")
        expect(self.env() == {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "2", "BOOT_B_LEFT": "3"},
               "on the disk: BOOT_A_LEFT=2 BOOT_B_LEFT=3 (reset to 3, then A's attempt)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", choices=sorted(ab_image.BOARDS), default=ab_image.DEFAULT_BOARD)
    ap.add_argument("--berth", help="the board's berth (default: $BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth; "
                                    "arm64: $BERTH_QEMU_ARM64_BERTH, else build-arm64/berth)")
    ap.add_argument("--native-berth", help="a berth for this machine: its `slot status` reads the disk image's environment")
    ap.add_argument("--kernel-dir", help="default .sysroot/ARCH-kernel (fetch-kernel.sh ARCH)")
    ap.add_argument("--sysroot", help="default .sysroot/ARCH")
    ap.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {','.join(STAGES)}")
    ap.add_argument("--boot-timeout", type=float, default=120, help="seconds one boot to berth may take")
    ap.add_argument("--cuts", type=int, default=10, help="power cuts of the `cuts` stage (default 10)")
    ap.add_argument("--seed", type=int, default=None, help="its random seed (default: from the time, printed)")
    ap.add_argument("--keep", metavar="DIR", help="keep the disk image and console log in DIR")
    args = ap.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    if args.seed is None:
        args.seed = int(time.time())
    for s in stages:
        if s not in STAGES:
            ap.error(f"--stages: unknown stage {s!r}")

    arch = ab_image.board_arch(args.board)
    args.kernel_dir = args.kernel_dir or os.path.join(TOP, ".sysroot", f"{arch}-kernel")
    args.sysroot = args.sysroot or os.path.join(TOP, ".sysroot", arch)
    why = ab_qemu.missing(args.board)
    if why:
        skip(why)
    lacking = ab_image.missing_tools(args.board) + ([] if shutil.which("debugfs") else ["debugfs (e2fsprogs)"])
    if lacking:
        skip("missing: " + ", ".join(lacking))
    args.berth = find_berth(args.berth, arch)
    if not os.path.isfile(args.berth):
        skip(f"{args.berth} is not built (meson compile -C build-{arch}, see README.md)")
    if not os.path.isfile(os.path.join(args.kernel_dir, "vmlinuz")):
        skip(f"no kernel in {args.kernel_dir} (qemu-tests/fetch-kernel.sh {arch})")
    if not os.path.isdir(args.sysroot):
        skip(f"no sysroot in {args.sysroot} (cross/build-sysroot.sh {arch})")

    tmp = args.keep or tempfile.mkdtemp(prefix="berth-ab.")
    os.makedirs(tmp, exist_ok=True)
    t0 = time.monotonic()
    results = []
    run = None
    try:
        run = Run(args, tmp)
        for s in stages:
            print(f"\n== stage {s}", flush=True)
            ts = time.monotonic()
            try:
                getattr(run, f"stage_{s.replace('-', '_')}")()
                results.append((s, None, time.monotonic() - ts))
            except Failed as e:
                run.machine.kill()
                results.append((s, str(e), time.monotonic() - ts))
                print(f"  FAIL: {e}", flush=True)
                break  # the later stages build on this one's disk
    finally:
        if run:
            run.machine.kill()  # whatever went wrong: no machine outlives the test
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n== {len(results)} of {len(stages)} stages in {time.monotonic() - t0:.1f} s:")
    for s, err, secs in results:
        print(f"  {'ok' if err is None else 'FAIL':4} {s} ({secs:.1f} s){': ' + err if err else ''}")
    return 0 if len(results) == len(stages) and all(err is None for _, err, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())

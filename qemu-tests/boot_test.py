#!/usr/bin/python3
"""Boots the cross-built berth on a real kernel under qemu-system and runs the
cgroup v2 checks of qemu-tests/init.sh there.

    qemu-tests/boot_test.py [--berth build-armhf/berth] [--smp N] [--soak N] [--keep DIR]
    qemu-tests/boot_test.py --kernel armhf-5.10 [--cgroups hybrid]

Builds the initramfs (mkinitramfs.py), boots Debian's armmp kernel
(fetch-kernel.sh) with `qemu-system-arm -M virt`, echoes the serial console,
and reads its `BERTH-TEST ...` lines. `--kernel armhf-5.10` boots Debian 11's
5.10 armmp kernel instead (fetch-kernel.sh armhf-5.10), and `--cgroups
hybrid` has init.sh mount v1 hierarchies plus the unified cgroup2 mount, as a
systemd-era vendor image does, and run the v1 variants of the checks. Exits 0 only when a result came for
every planned check, none failed and `BERTH-TEST done` was seen; 1 otherwise;
77 (skipped, with the reason) when qemu-system-arm, qemu-arm-static, the
kernel, the sysroot or the armhf berth is missing.

The armhf berth: --berth, else $BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth
at the top of the checkout. run.sh sets BERTH_QEMU_ARMHF_BERTH to the binary it
has just built, or to an empty value when this run builds no armhf (then the
test skips rather than boot a stale binary).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SKIP = 77

RESULT = re.compile(r"BERTH-TEST (plan|info|ok|fail|skip|done)\b ?(.*)")


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def find_berth(arg, arch="armhf"):
    """The berth binary for ARCH: ARG, else $BERTH_QEMU_<ARCH>_BERTH, else build-ARCH/berth."""
    if arg:
        return os.path.abspath(arg)
    var = f"BERTH_QEMU_{arch.upper()}_BERTH"
    env = os.environ.get(var)
    if env is not None:
        if not env:
            skip(f"this run built no {arch} berth ({var} is empty: run.sh with {arch} left out of BERTH_CROSS)")
        return os.path.abspath(env)
    return os.path.join(TOP, f"build-{arch}", "berth")


def boot(cmd, timeout, times=None):
    """Runs qemu, echoing its console; returns (lines, seconds, timed_out).
    `times`, a list, gets each line's time in seconds since the start."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines = []
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            lines.append(line)
            if times is not None:
                times.append(time.monotonic() - start)
            print(f"[{time.monotonic() - start:6.1f}] {line}", flush=True)
    finally:
        proc.wait()
        timed_out = not timer.is_alive() and proc.returncode < 0
        timer.cancel()
    return lines, time.monotonic() - start, timed_out


# The kernel command line of the initramfs boots (this test, daemon_test.py,
# daemon_scenario_test.py). cryptomgr.notests skips the crypto self-tests the
# kernel runs at boot: 1.7 of the 3.9 s from the kernel's start to /init on
# an idle machine under emulation, more on a loaded one
# (boards/qemu-virt-*/boot.cmd pass it too).
CMDLINE = "console=ttyAMA0 quiet panic=-1 cryptomgr.notests"


def kernel_args(ap):
    """--kernel NAME (fetch-kernel.sh's) and --kernel-dir; see kernel_dir()."""
    ap.add_argument("--kernel", default="armhf", choices=["armhf", "armhf-5.10"],
                    help="the armhf kernel: Debian 12's (default) or Debian 11's 5.10 (fetch-kernel.sh NAME)")
    ap.add_argument("--kernel-dir", help="vmlinuz and busybox (default: .sysroot/KERNEL-kernel)")


def kernel_dir(args):
    """The kernel directory of the options of kernel_args()."""
    return args.kernel_dir or os.path.join(TOP, ".sysroot", f"{args.kernel}-kernel")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", help="the armhf berth (default: $BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth)")
    kernel_args(ap)
    ap.add_argument("--cgroups", choices=["v2", "hybrid"], default="v2",
                    help="the layout init.sh mounts (hybrid: v1 controllers and the unified mount)")
    ap.add_argument("--sysroot", default=os.path.join(TOP, ".sysroot", "armhf"))
    ap.add_argument("--smp", type=int, default=2, help="virtual CPUs (default 2)")
    ap.add_argument("--memory", default="512", help="guest RAM in MiB (default 512)")
    ap.add_argument("--soak", type=int, default=0, help="also run N container lifecycles (the slow test)")
    ap.add_argument("--timeout", type=float, default=240, help="seconds before the machine is killed")
    ap.add_argument("--keep", metavar="DIR", help="write the initramfs to DIR and keep it")
    args = ap.parse_args()
    args.kernel_dir = kernel_dir(args)

    qemu = shutil.which("qemu-system-arm") or skip("qemu-system-arm is not installed")
    shutil.which("qemu-arm-static") or skip("qemu-arm-static is not installed (it runs `berth spec` for the bundles)")
    berth = find_berth(args.berth)
    if not os.path.isfile(berth):
        skip(f"{berth} is not built (meson compile -C build-armhf, see README.md)")
    vmlinuz = os.path.join(args.kernel_dir, "vmlinuz")
    busybox = os.path.join(args.kernel_dir, "busybox")
    if not (os.path.isfile(vmlinuz) and os.path.isfile(busybox)):
        skip(f"no kernel in {args.kernel_dir} (qemu-tests/fetch-kernel.sh {args.kernel})")
    if not os.path.isdir(args.sysroot):
        skip(f"no sysroot in {args.sysroot} (cross/build-sysroot.sh armhf)")

    tmp = tempfile.mkdtemp(prefix="berth-qemu.")
    try:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        initrd = os.path.join(outdir, "initrd.gz")
        t0 = time.monotonic()
        subprocess.run([sys.executable, os.path.join(HERE, "mkinitramfs.py"), "--berth", berth,
                        "--sysroot", args.sysroot, "--busybox", busybox, "-o", initrd], check=True)
        print(f"initramfs: {initrd}, {os.path.getsize(initrd) // 1024} KiB, built in {time.monotonic() - t0:.1f} s "
              f"(berth: {berth}, modified {time.ctime(os.path.getmtime(berth))})")
        append = CMDLINE
        if args.soak:
            append += f" berth.soak={args.soak}"
        if args.cgroups == "hybrid":
            append += " berth.cgroups=hybrid"
        cmd = [qemu, "-M", "virt", "-m", args.memory, "-smp", str(args.smp), "-nographic", "-nic", "none",
               "-kernel", vmlinuz, "-initrd", initrd, "-append", append, "-no-reboot"]
        print("boot:", " ".join(cmd), flush=True)
        lines, seconds, timed_out = boot(cmd, args.timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    plan, done, results = None, False, []
    for line in lines:
        m = RESULT.search(line)
        if not m:
            continue
        kind, rest = m.groups()
        if kind == "plan":
            plan = int(rest.split()[0])
        elif kind == "done":
            done = True
        elif kind in ("ok", "fail", "skip"):
            results.append((kind, rest))

    print(f"\n== {len(results)} results in {seconds:.1f} s (plan {plan}):")
    for kind, rest in results:
        print(f"  {kind:4} {rest}")
    problems = [f"{rest}" for kind, rest in results if kind == "fail"]
    if timed_out:
        problems.append(f"the machine was killed after {args.timeout:.0f} s")
    if plan is None:
        problems.append("no `BERTH-TEST plan` line: /init did not start")
    elif len(results) != plan:
        problems.append(f"{len(results)} results for a plan of {plan}")
    if not done:
        problems.append("no `BERTH-TEST done` line")
    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        return 1
    print(f"all {plan} checks passed on the real kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main())

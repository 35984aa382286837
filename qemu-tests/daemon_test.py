#!/usr/bin/python3
"""Boots a berth PID 1 on a real kernel under qemu-system and judges it from
the serial console: the system bring-up, the watchdog, the power-down.

    qemu-tests/daemon_test.py [--berth build-armhf/berth] [--probe PROGRAM] [--keep DIR]

The initramfs (mkinitramfs.py) has the PID 1 under test as /init: today
berth-pid1-probe (qemu-tests/pid1_probe.cpp), which calls the daemon's
svc::bring_up_system, svc::log_to_kmsg, svc::Watchdog and svc::power_down;
qemu-tests/daemon_init.sh as its check script; busybox; and the kernel
modules for the virtio state disk (ext4) and the softdog watchdog. The state
disk is an ext4 image made here with mke2fs, which the guest mounts on
/data and where it counts its boots, so it must survive a reset.

The scenario, judged only from facts the guest's busybox script reads from
the kernel (and the disk image afterwards), never from berth's own report:
  boot 1  the armhf busybox image the host imported into the state disk's
          store runs (`berth run IMAGE`, unpacked in the guest); every mount of the bring-up present exactly once after two
          bring-ups (/proc, /sys, /dev devtmpfs, /dev/pts newinstance,
          /dev/shm, /run, cgroup2 with every controller enabled), the
          hostname, lo up, the log line in the kernel log; the watchdog is
          armed, fed for twice its timeout, then no longer fed
  reset   the softdog resets the machine (no power-down in between, not
          before its timeout)
  boot 2  the disk still counts the first boot; the watchdog is armed, fed,
          disarmed by the magic close, and the machine outlives its timeout;
          power_down turns it off: QEMU exits by itself
  after   the disk image is clean (power_down unmounted it) and says 2 boots
  hybrid  a second machine, booted with berth.cgroups=hybrid: a tmpfs at
          /sys/fs/cgroup, one v1 hierarchy per controller, cgroup2 at
          /sys/fs/cgroup/unified; powered off at once

Exits 0 when every check passed, 1 otherwise, 77 (skipped, with the reason)
when QEMU, mke2fs, the kernel and its modules, the sysroot or the armhf
binaries are missing. The binaries: --berth, else $BERTH_QEMU_ARMHF_BERTH,
else build-armhf/berth (as boot_test.py); --probe, else qemu-tests/
berth-pid1-probe in the berth binary's build directory.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

from boot_test import CMDLINE, HERE, TOP, boot, find_berth, kernel_args, kernel_dir, skip

WATCHDOG_TIMEOUT = 4  # pid1_probe.cpp's kTimeout
IMAGE = "localhost/app:1"
# The applets the test containers call (busybox finds itself through argv[0]).
APPLETS = ["sh", "echo", "cat", "ls", "sleep", "true", "false", "kill", "ps", "httpd", "wget", "nc", "touch", "rm",
           "mkdir", "grep", "sed", "date", "id", "hostname", "ip", "mount", "tr", "wc", "head", "tail"]


# ---------------------------------------------------------------- the state disk

def blob(layout, data):
    """Writes `data` as a blob of the OCI layout; returns its descriptor fields."""
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(layout, busybox):
    """An OCI image layout for linux/arm/v7 from busybox-static: one gzip
    layer with /bin/busybox and its applets' links, reproducible."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name, kind, **kw):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mtime, ti.uid, ti.gid = kind, 0, 0, 0
            for k, v in kw.items():
                setattr(ti, k, v)
            return ti
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "www"):
            tar.addfile(add(d, tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755))
        with open(busybox, "rb") as f:
            body = f.read()
        tar.addfile(add("bin/busybox", tarfile.REGTYPE, mode=0o755, size=len(body)), io.BytesIO(body))
        for a in APPLETS:
            tar.addfile(add(f"bin/{a}", tarfile.SYMTYPE, linkname="busybox", mode=0o777))
        for name, text in (("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n"), ("www/index.html", b"berth app\n")):
            tar.addfile(add(name, tarfile.REGTYPE, mode=0o644, size=len(text)), io.BytesIO(text))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(raw.getvalue())
    layer = blob(layout, gz.getvalue())
    config = blob(layout, json.dumps({
        "architecture": "arm", "variant": "v7", "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }, sort_keys=True).encode())
    manifest = blob(layout, json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}],
    }, sort_keys=True).encode())
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest,
            "platform": {"architecture": "arm", "variant": "v7", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": "app"}}]}, f)
    return manifest["digest"]


def make_state_root(root, native_berth, busybox, work):
    """The device root the state disk starts with: the armhf image imported
    (blobs only: the guest unpacks it) by the native berth, and a trust
    policy that accepts anything, as a test device may (the store's own
    signature checks have their tests in image/tests)."""
    layout = os.path.join(work, "layout")
    digest = make_layout(layout, busybox)
    subprocess.run([native_berth, "image", "import", "--store", root, "--no-unpack", "--ref-name", "app",
                    layout, IMAGE], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(root, "policy.json"), "w") as f:
        json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
    with open(os.path.join(root, "made-on-host"), "w") as f:
        f.write(f"the daemon test's state disk: {IMAGE}@{digest}\n")
    return digest


# ---------------------------------------------------------------- the machine

class Boot:
    """What one boot of the machine printed."""

    def __init__(self, start):
        self.start = start
        self.facts = {}    # key -> [values]
        self.probe = []    # (seconds, what)
        self.mounts = []   # (mount point, type, options, super options)
        self.kernel = []   # (seconds, line) other console lines

    def fact(self, key):
        v = self.facts.get(key)
        return v[0] if v else None

    def probe_time(self, what):
        for t, w in self.probe:
            if w == what:
                return t
        return None


def split_boots(lines):
    boots = []
    for t, line in lines:
        m = re.search(r"BERTH-(PROBE|FACT) (.*)", line)
        if m and m.group(1) == "PROBE" and m.group(2).startswith("bring-up"):
            boots.append(Boot(t))
        if not boots:
            continue
        b = boots[-1]
        if not m:
            b.kernel.append((t, line))
        elif m.group(1) == "PROBE":
            b.probe.append((t, m.group(2)))
        else:
            key, _, value = m.group(2).partition(" ")
            if key == "mount":
                f = value.split(" ")
                b.mounts.append(tuple(f + [""] * (4 - len(f)))[:4])
            else:
                b.facts.setdefault(key, []).append(value)
    return boots


def check_bring_up(b, problems):
    """The facts of a boot against what bring_up_system promises."""
    def problem(text):
        problems.append(f"boot at {b.start:.0f} s: {text}")

    if ("bring-up ok") not in [w for _, w in b.probe]:
        problem(f"no `bring-up ok` from the probe: {[w for _, w in b.probe if 'bring-up' in w]}")
    wanted = {"/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs", "/dev/pts": "devpts",
              "/dev/shm": "tmpfs", "/run": "tmpfs", "/sys/fs/cgroup": "cgroup2"}
    for path, fstype in wanted.items():
        found = [m for m in b.mounts if m[0] == path]
        if len(found) != 1:
            problem(f"{path}: {len(found)} mounts after two bring-ups, wanted exactly one")
        elif found[0][1] != fstype:
            problem(f"{path} is {found[0][1]}, wanted {fstype}")
    pts = [m for m in b.mounts if m[0] == "/dev/pts"]
    if pts and "ptmxmode=666" not in pts[0][3]:
        problem(f"/dev/pts superblock options {pts[0][3]} lack ptmxmode=666 (not a new instance?)")
    run = [m for m in b.mounts if m[0] == "/run"]
    if run and "mode=755" not in run[0][3]:
        problem(f"/run superblock options {run[0][3]} lack mode=755")
    if b.fact("hostname") != "berth-pid1":
        problem(f"hostname is {b.fact('hostname')!r}, wanted 'berth-pid1'")
    flags = b.fact("lo-flags") or "0"
    if not int(flags, 16) & 1:
        problem(f"lo is not up (flags {flags})")
    ctl = set((b.fact("cgroup-controllers") or "").split())
    sub = set((b.fact("cgroup-subtree") or "").split())
    if not ctl or ctl != sub:
        problem(f"cgroup2 root: controllers {sorted(ctl)}, enabled {sorted(sub)}: not all enabled")
    if b.fact("ptmx") in (None, "missing"):
        problem("no /dev/ptmx")
    if not any("berth: pid1 probe: the system is up" in k for k in b.facts.get("kmsg", [])):
        problem("the probe's log line is not in the kernel log (dmesg)")
    if b.facts.get("insmod-failed"):
        problem(f"modules failed to load: {b.facts['insmod-failed']}")


def check_hybrid(lines, timed_out, timeout, problems):
    """A boot with berth.cgroups=hybrid: Auto follows the command line to v1
    controllers on a tmpfs plus the unified cgroup2 mount; then off."""
    boots = split_boots(lines)
    if timed_out or len(boots) != 1:
        problems.append(f"hybrid: {len(boots)} boots{', killed' if timed_out else ''}, wanted one that powers off")
        return
    b = boots[0]
    mounts = {m[0]: m for m in b.mounts}
    if mounts.get("/sys/fs/cgroup", ("", ""))[1] != "tmpfs":
        problems.append(f"hybrid: /sys/fs/cgroup is {mounts.get('/sys/fs/cgroup')}, wanted a tmpfs")
    if mounts.get("/sys/fs/cgroup/unified", ("", ""))[1] != "cgroup2":
        problems.append("hybrid: no cgroup2 at /sys/fs/cgroup/unified")
    enabled = (b.fact("v1-controllers") or "").split()
    # Each enabled controller in one v1 hierarchy, named in its options.
    v1 = [m for m in b.mounts if m[1] == "cgroup"]
    for c in enabled:
        if not any(c in m[2].split(",") or c in m[3].split(",") for m in v1):
            problems.append(f"hybrid: no v1 hierarchy has the {c} controller")
    if not enabled:
        problems.append("hybrid: the guest named no v1 controllers")
    if b.probe_time("power-down") is None:
        problems.append("hybrid: no power-down")
    print(f"hybrid: {len(v1)} v1 hierarchies for {len(enabled)} controllers, cgroup2 at unified")


def check_run(lines, timed_out, timeout, problems):
    boots = split_boots(lines)
    if timed_out:
        problems.append(f"the machine was killed after {timeout:.0f} s")
    if len(boots) != 2:
        problems.append(f"{len(boots)} boots, wanted 2 (the watchdog reset, then a power-down)")
    for b in boots:
        check_bring_up(b, problems)
    if not boots:
        return
    first = boots[0]
    if first.fact("boot") != "1":
        problems.append(f"first boot: the state disk counts boot {first.fact('boot')}, wanted 1")
    if "hello from app" not in (first.fact("image-run") or ""):
        problems.append(f"first boot: the image on the state disk did not run: {first.fact('image-run')!r}")
    if first.probe_time(f"watchdog armed timeout={WATCHDOG_TIMEOUT}") is None:
        problems.append(f"first boot: watchdog not armed with a {WATCHDOG_TIMEOUT} s timeout: {first.probe}")
    hang = first.probe_time("hang")
    if hang is None:
        problems.append("first boot: the probe never stopped feeding the watchdog")
    elif len(boots) > 1:
        if first.probe_time("power-down") is not None:
            problems.append("first boot: powered down instead of being reset by the watchdog")
        gap = boots[1].start - hang
        # Not before the timeout: the reset came from the watchdog.
        if gap < WATCHDOG_TIMEOUT - 1:
            problems.append(f"the machine came back {gap:.1f} s after the hang, before the watchdog's timeout")
        print(f"watchdog reset: the next boot's bring-up {gap:.1f} s after the last feed "
              f"(timeout {WATCHDOG_TIMEOUT} s, plus the boot)")
        if not any("softdog" in line and "reboot" in line for _, line in first.kernel):
            problems.append("no softdog reboot message between the hang and the second boot")
    if len(boots) < 2:
        return
    second = boots[1]
    if second.fact("boot") != "2":
        problems.append(f"second boot: the state disk counts boot {second.fact('boot')}, wanted 2 (did it survive the reset?)")
    for step in ("disarmed", "outlived the timeout disarmed", "power-down"):
        if second.probe_time(step) is None:
            problems.append(f"second boot: no `{step}` from the probe")
    if second.fact("final-data") != "2":
        problems.append(f"second boot: /data/boots is {second.fact('final-data')} before the power-down")


def check_disk(disk, problems):
    """After the power-down: the image is clean and holds the boot count."""
    problems += disk_problems(disk)
    boots = subprocess.run(["debugfs", "-R", "cat /boots", disk], capture_output=True, text=True).stdout.strip()
    if boots != "2":
        problems.append(f"the state disk says {boots!r} boots, wanted 2")


# ---------------------------------------------------------------- shared with daemon_scenario_test.py

def machine_args(ap, timeout):
    """The options of the tests that boot berth with a state disk."""
    ap.add_argument("--berth", help="the armhf berth (default: $BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth)")
    ap.add_argument("--native-berth", help="this machine's berth, which imports the image (default build/berth)")
    kernel_args(ap)
    ap.add_argument("--sysroot", default=os.path.join(TOP, ".sysroot", "armhf"))
    ap.add_argument("--memory", default="256", help="guest RAM in MiB (default 256)")
    ap.add_argument("--timeout", type=float, default=timeout, help="seconds before the machine is killed")
    ap.add_argument("--keep", metavar="DIR", help="write the initramfs and the disk image to DIR and keep them")


def machine_inputs(args):
    """What those tests need, found from their options, or exit 77 naming
    what is missing: an object with qemu, native_berth, berth, vmlinuz,
    busybox and modules."""
    found = argparse.Namespace()
    args.kernel_dir = kernel_dir(args)
    found.qemu = shutil.which("qemu-system-arm") or skip("qemu-system-arm is not installed")
    for tool in ("mke2fs", "dumpe2fs", "debugfs", "e2fsck"):
        shutil.which(tool) or skip(f"{tool} is not installed (e2fsprogs)")
    found.native_berth = os.path.abspath(args.native_berth or os.path.join(TOP, "build", "berth"))
    if not os.path.isfile(found.native_berth):
        skip(f"{found.native_berth} is not built (it fills the state disk's store)")
    found.berth = find_berth(args.berth)
    if not os.path.isfile(found.berth):
        skip(f"{found.berth} is not built (meson compile -C build-armhf, see README.md)")
    found.vmlinuz = os.path.join(args.kernel_dir, "vmlinuz")
    found.busybox = os.path.join(args.kernel_dir, "busybox")
    found.modules = os.path.join(args.kernel_dir, "modules")
    if not (os.path.isfile(found.vmlinuz) and os.path.isfile(found.busybox)):
        skip(f"no kernel in {args.kernel_dir} (qemu-tests/fetch-kernel.sh {args.kernel})")
    if not os.path.isfile(os.path.join(found.modules, "load-order")):
        skip(f"no modules in {args.kernel_dir} (fetched before fetch-kernel.sh kept them: run it again)")
    if not os.path.isdir(args.sysroot):
        skip(f"no sysroot in {args.sysroot} (cross/build-sysroot.sh armhf)")
    return found


def make_initramfs(args, found, init, files, output):
    """The initramfs with `init` as /init, `files` (SRC:DEST) and the modules."""
    subprocess.run([sys.executable, os.path.join(HERE, "mkinitramfs.py"), "--berth", found.berth,
                    "--sysroot", args.sysroot, "--busybox", found.busybox, "--init", init,
                    "--modules", found.modules, "--no-bundles", "-o", output]
                   + [a for f in files for a in ("--file", f)]
                   # What berth loads for the image store (image/dynlibs.cpp; no libssl: no network).
                   + [a for lib in ("libcrypto.so.3", "libarchive.so.13", "libz.so.1") for a in ("--dlopen", lib)],
                   check=True)


def disk_problems(disk):
    """After a power-down: the disk image is clean and e2fsck passes."""
    problems = []
    out = subprocess.run(["dumpe2fs", "-h", disk], capture_output=True, text=True).stdout
    state = re.search(r"Filesystem state:\s*(\S+)", out)
    if not state or state.group(1) != "clean":
        problems.append(f"the state disk is {state.group(1) if state else '?'} after the power-down, not clean "
                        "(power_down did not unmount it)")
    fsck = subprocess.run(["e2fsck", "-fn", disk], capture_output=True, text=True)
    if fsck.returncode != 0:
        problems.append(f"e2fsck -fn: exit {fsck.returncode}: {fsck.stdout.strip()[-200:]}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    machine_args(ap, 240)
    ap.add_argument("--probe", help="the PID 1 under test (default: qemu-tests/berth-pid1-probe next to berth)")
    args = ap.parse_args()
    found = machine_inputs(args)
    probe = os.path.abspath(args.probe or os.path.join(os.path.dirname(found.berth), "qemu-tests", "berth-pid1-probe"))
    if not os.path.isfile(probe):
        skip(f"{probe} is not built (meson compile -C build-armhf)")

    tmp = tempfile.mkdtemp(prefix="berth-qemu-pid1.")
    problems = []
    try:
        outdir = args.keep or tmp
        os.makedirs(outdir, exist_ok=True)
        initrd = os.path.join(outdir, "initrd.gz")
        make_initramfs(args, found, probe, [os.path.join(HERE, "daemon_init.sh") + ":/daemon_init.sh"], initrd)
        # The state disk: ext4 as a device's data partition would be, the
        # device root at its top.
        disk = os.path.join(outdir, "state.img")
        seed = os.path.join(tmp, "seed")
        os.makedirs(seed, exist_ok=True)
        digest = make_state_root(seed, found.native_berth, found.busybox, tmp)
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "berth-state", "-d", seed, disk, "64M"], check=True)
        print(f"initramfs: {initrd}, {os.path.getsize(initrd) // 1024} KiB; state disk: {disk} ({IMAGE}@{digest})")
        def machine(append, disk=None):
            # No -no-reboot: the watchdog's reset must boot the machine again.
            cmd = [found.qemu, "-M", "virt", "-m", args.memory, "-smp", "1", "-nographic", "-nic", "none",
                   "-kernel", found.vmlinuz, "-initrd", initrd, "-append", f"{CMDLINE} {append}".strip()]
            if disk:
                cmd += ["-drive", f"if=none,id=state,format=raw,file={disk}", "-device", "virtio-blk-device,drive=state"]
            print("boot:", " ".join(cmd), flush=True)
            times = []
            lines, _, timed_out = boot(cmd, args.timeout, times)
            return list(zip(times, lines)), timed_out

        lines, timed_out = machine("", disk)
        check_run(lines, timed_out, args.timeout, problems)
        check_disk(disk, problems)
        # The v1 layout on the same kernel, asked for on its command line.
        lines, timed_out = machine("berth.cgroups=hybrid")
        check_hybrid(lines, timed_out, args.timeout, problems)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if problems:
        print("FAIL:\n  " + "\n  ".join(problems))
        return 1
    print("PID 1 bring-up, watchdog reset, state disk and power-down: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

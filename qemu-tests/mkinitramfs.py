#!/usr/bin/python3
"""Builds the initramfs the qemu-system tests boot (cpio newc, gzip).

    qemu-tests/mkinitramfs.py --berth build-armhf/berth -o initrd.gz
    qemu-tests/mkinitramfs.py --berth build-armhf/berth --init build-armhf/qemu-tests/berth-pid1-probe \
        --file qemu-tests/daemon_init.sh:/daemon_init.sh --modules .sysroot/armhf-kernel/modules \
        --no-bundles -o initrd.gz          (the daemon test's)

It holds, all owned by root:
  /init                  qemu-tests/init.sh: mounts, the checks, poweroff
                         (--init: another file, a script or a target ELF
                         program such as the daemon test's PID 1)
  /modules/              with --modules DIR: DIR/load-order and the kernel
                         modules it names (fetch-kernel.sh), for insmod
  --file SRC:DEST        further files; target ELF programs are stripped and
                         bring their shared libraries, as berth does
  --dlopen SONAME        a library berth loads at run time (libcrypto for
                         the image store, ...), with the ones it needs
  /bin/busybox           busybox-static for the target (fetch-kernel.sh), its
                         applets are linked at boot (`busybox --install -s`)
  /usr/bin/berth         the cross-built berth, stripped
  /lib/...               the loader and every shared library berth needs, found
                         by following the NEEDED entries (cross readelf) through
                         the sysroot, so nothing is listed by hand
  /containers/rootfs     the containers' root: directories only; /init copies
                         busybox in and links its applets
  /bundles/NAME/config.json  one bundle per check: the config.json that
                         `berth spec` writes (run under qemu-user), edited here,
                         since the guest has no jq or python (not with
                         --no-bundles, which needs no qemu-user)

The archive is made here rather than with cpio(1) so device nodes and owners
need no root, and it is reproducible (every mtime is 0).
"""
import argparse
import copy
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

# The cross tools of each architecture (Debian's cross binutils) and its
# qemu-user emulator, which runs `berth spec` on the build machine.
ARCHES = {
    "armhf": {"triple": "arm-linux-gnueabihf", "qemu_user": "qemu-arm-static"},
    "arm64": {"triple": "aarch64-linux-gnu", "qemu_user": "qemu-aarch64-static"},
}

MiB = 1 << 20


# ---------------------------------------------------------------- the bundles

def caps(*extra):
    base = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return base + list(extra)


# What a container sees of the v1 hierarchies under /sys/fs/cgroup (the
# hybrid checks): each mount's root and place, its memory limit.
V1_SEEN = ('grep " /sys/fs/cgroup/" /proc/self/mountinfo | sed "s/^/v1mount: /"; '
           'echo "memory.limit_in_bytes: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"')


def bundles(spec):
    """{name: config} for every check of init.sh, each from `berth spec`'s config."""
    def bundle(args, resources=None, cap_extra=(), no_cgroupns=False):
        c = copy.deepcopy(spec)
        p = c["process"]
        p["terminal"] = False
        p["args"] = args
        for k in ("bounding", "effective", "permitted"):
            p["capabilities"][k] = caps(*cap_extra)
        p["capabilities"].pop("ambient", None)
        # Every bundle shares the one busybox tree; read-only as berth spec says.
        c["root"] = {"path": "/containers/rootfs", "readonly": True}
        c["hostname"] = "berth-qemu"
        res = c["linux"].setdefault("resources", {})
        res.update(resources or {})
        if no_cgroupns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
        return c

    sleep = ["/bin/sleep", "1000"]
    return {
        # run: the initramfs root (pivot_root refuses it: MS_MOVE + chroot).
        "hello": bundle(["/bin/sh", "-c", 'echo "hello from $(hostname)"; exit 3']),
        # memory.max, an OOM kill, berth update --memory.
        "mem": bundle(sleep, {"memory": {"limit": 32 * MiB}}),
        # pids.max: the init forks until fork fails with EAGAIN.
        "pids": bundle(["/bin/sh", "-c",
                        'i=0; while [ $i -lt 20 ]; do sleep 100 & i=$((i + 1)); done; echo forked-20'],
                       {"pids": {"limit": 10}}),
        # cpu.max, cpu.weight, cpuset, io.weight.
        "cpu": bundle(sleep, {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                              "blockIO": {"weight": 500}}),
        # The same for the v1 checks (berth.cgroups=hybrid), whose blkio weight
        # is a bundle of its own: without BFQ loaded, v1 has no weight file.
        "cpu1": bundle(sleep, {"cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}}),
        "io": bundle(sleep, {"blockIO": {"weight": 500}}),
        # cgroup.freeze.
        "freeze": bundle(sleep),
        # The device program: the spec's deny-all, write access to 1:11
        # (/dev/kmsg), and berth's defaults (null, zero, ..., mknod of any).
        "dev": bundle(["/bin/sh", "-c", r'''
            echo x >/dev/null && echo "null: written"
            head -c 4 /dev/zero | wc -c | sed "s/^/zero: read /"
            mknod /dev/kw c 1 11 && echo "mknod c 1 11: made"
            echo "<6>berth device check" >/dev/kw && echo "c 1 11 write: allowed"
            mknod /dev/loopx b 7 0 && echo "mknod b 7 0: made"
            head -c 1 /dev/loopx 2>&1 >/dev/null | sed "s/^/b 7 0 read: /"
            mknod /dev/tty1x c 4 1 && echo "mknod c 4 1: made"
            head -c 0 /dev/tty1x 2>&1 >/dev/null | sed "s/^/c 4 1 open: /"
            true'''],
                      {"devices": spec["linux"]["resources"].get("devices", []) +
                       [{"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]},
                      cap_extra=("CAP_MKNOD",)),
        # The cgroup namespace: /sys/fs/cgroup is a cgroup2 mount of the
        # container's own cgroup; and without one, a bind of it.
        # (With v1 hierarchies, berth.cgroups=hybrid: a tmpfs holding binds.)
        "cgns": bundle(["/bin/sh", "-c", 'echo "self: $(cat /proc/self/cgroup)"; '
                        'grep " /sys/fs/cgroup " /proc/self/mountinfo | sed "s/^/mount: /"; '
                        'echo "memory.max: $(cat /sys/fs/cgroup/memory.max)"; '
                        'echo "entries: $(ls /sys/fs/cgroup | tr "\\n" " ")"; ' + V1_SEEN],
                       {"memory": {"limit": 48 * MiB}}),
        "nocgns": bundle(["/bin/sh", "-c", 'echo "self: $(cat /proc/self/cgroup)"; '
                          'grep " /sys/fs/cgroup " /proc/self/mountinfo | sed "s/^/mount: /"; '
                          'echo "memory.max: $(cat /sys/fs/cgroup/memory.max)"; ' + V1_SEEN],
                         {"memory": {"limit": 40 * MiB}}, no_cgroupns=True),
        # The soak (slow variant): short-lived containers that print their limits.
        "soak": bundle(["/bin/sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max | tr '\\n' ' '"],
                       {"memory": {"limit": 16 * MiB}, "pids": {"limit": 16}}),
    }


def berth_spec(berth, arch, sysroot):
    """The config.json `berth spec` writes, from the target binary under qemu-user."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([ARCHES[arch]["qemu_user"], "-L", sysroot, berth, "spec", "--bundle", d], check=True)
        with open(os.path.join(d, "config.json")) as f:
            return json.load(f)


# ---------------------------------------------------------------- libraries

def elf_info(readelf, path):
    """(interpreter or None, [NEEDED sonames]) of an ELF file."""
    out = subprocess.run([readelf, "-W", "-l", "-d", path], check=True, capture_output=True, text=True).stdout
    interp, needed = None, []
    for line in out.splitlines():
        if "Requesting program interpreter:" in line:
            interp = line.split(":", 1)[1].strip().rstrip("]")
        elif "(NEEDED)" in line:
            needed.append(line.split("[", 1)[1].rstrip("]"))
    return interp, needed


def shared_libraries(readelf, binary, sysroot, triple, dlopened=()):
    """{path in the image: file in the sysroot} for the loader and every library
    `binary` needs, directly or through another library, or loads at run time
    (`dlopened` sonames, with what they need)."""
    search = [f"/lib/{triple}", f"/usr/lib/{triple}", "/lib", "/usr/lib"]
    interp, todo = elf_info(readelf, binary)
    todo += list(dlopened)
    out = {}
    if interp:
        out[interp] = os.path.realpath(sysroot + interp)
    seen = set()
    while todo:
        soname = todo.pop()
        if soname in seen:
            continue
        seen.add(soname)
        for d in search:
            p = sysroot + d + "/" + soname
            if os.path.exists(p):
                break
        else:
            sys.exit(f"mkinitramfs: {soname} (needed by {binary}) is not in {sysroot}")
        real = os.path.realpath(p)
        if interp and os.path.basename(interp) == soname:
            continue  # the loader, already placed at its PT_INTERP path
        out[f"/lib/{triple}/{soname}"] = real
        todo.extend(elf_info(readelf, real)[1])
    for path, real in out.items():
        if not os.path.isfile(real):
            sys.exit(f"mkinitramfs: {path}: {real} is missing")
    return out


# ---------------------------------------------------------------- cpio newc

class Cpio:
    """A cpio "newc" archive (what the kernel unpacks as an initramfs)."""

    def __init__(self):
        self.data = bytearray()
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, body=b"", rdev=(0, 0)):
        name_b = name.lstrip("/").encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(body), 0, 0,
                  rdev[0], rdev[1], len(name_b), 0]
        self.ino += 1
        self.data += b"070701" + b"".join(b"%08X" % f for f in fields) + name_b
        self.data += b"\0" * (-len(self.data) % 4)
        self.data += body
        self.data += b"\0" * (-len(self.data) % 4)

    def dir(self, path, mode=0o755):
        path = path.rstrip("/")
        if not path or path in self.dirs:
            return
        self.dir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | mode)

    def file(self, path, body, mode=0o644):
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, body)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path, major, minor, mode=0o600):
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return bytes(self.data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def build(args):
    arch = ARCHES[args.arch]
    triple = arch["triple"]
    readelf = shutil.which(f"{triple}-readelf") or sys.exit(f"mkinitramfs: {triple}-readelf not found")
    strip = shutil.which(f"{triple}-strip")
    sysroot = os.path.abspath(args.sysroot)

    cpio = Cpio()
    for d in ("dev", "proc", "sys", "run", "tmp", "root", "sbin", "usr/sbin",
              "containers/rootfs/bin", "containers/rootfs/proc", "containers/rootfs/sys",
              "containers/rootfs/dev", "containers/rootfs/etc", "containers/rootfs/tmp"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.chardev("dev/null", 1, 3, 0o666)
    cpio.file("bin/busybox", read(args.busybox), 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("containers/rootfs/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")

    # Every target program, stripped, with the libraries it needs (once).
    programs = [(args.berth, "usr/bin/berth")] + [tuple(f.split(":", 1)) for f in args.file]
    programs.append((args.init or os.path.join(HERE, "init.sh"), "init"))
    libraries = {}
    with tempfile.TemporaryDirectory() as tmp:
        for src, dest in programs:
            body = read(src)
            if body[:4] == b"\x7fELF":
                if strip and not args.no_strip:
                    stripped = os.path.join(tmp, "stripped")
                    subprocess.run([strip, "-o", stripped, src], check=True)
                    body = read(stripped)
                libraries.update(shared_libraries(readelf, src, sysroot, triple,
                                                  args.dlopen if dest == "usr/bin/berth" else ()))
            cpio.file(dest.lstrip("/"), body, 0o755)
    for path, real in sorted(libraries.items()):
        cpio.file(path, read(real), 0o755)

    if args.modules:
        order = read(os.path.join(args.modules, "load-order"))
        cpio.file("modules/load-order", order)
        for name in order.decode().split():
            cpio.file(f"modules/{name}", read(os.path.join(args.modules, name)))

    if not args.no_bundles:
        spec = berth_spec(os.path.abspath(args.berth), args.arch, sysroot)
        for name, config in bundles(spec).items():
            cpio.file(f"bundles/{name}/config.json", json.dumps(config, indent=1).encode())

    with open(args.output, "wb") as f:
        # mtime 0: the same inputs give the same file.
        with gzip.GzipFile(fileobj=f, mode="wb", compresslevel=6, mtime=0) as gz:
            gz.write(cpio.finish())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", default="armhf", choices=sorted(ARCHES))
    ap.add_argument("--berth", required=True, help="the cross-built berth (build-armhf/berth)")
    ap.add_argument("--sysroot", help="its sysroot (default .sysroot/ARCH)")
    ap.add_argument("--busybox", help="busybox-static for ARCH (default .sysroot/ARCH-kernel/busybox)")
    ap.add_argument("--no-strip", action="store_true", help="keep berth's symbols")
    ap.add_argument("--init", help="the file at /init (default qemu-tests/init.sh); an ELF program brings its libraries")
    ap.add_argument("--file", action="append", default=[], metavar="SRC:DEST", help="a further file (repeatable)")
    ap.add_argument("--modules", metavar="DIR", help="kernel modules to put in /modules (DIR/load-order names them)")
    ap.add_argument("--dlopen", action="append", default=[], metavar="SONAME",
                    help="a library berth loads at run time (image/dynlibs.cpp), with what it needs (repeatable)")
    ap.add_argument("--no-bundles", action="store_true", help="leave out init.sh's bundles (no qemu-user needed)")
    ap.add_argument("-o", "--output", required=True, help="the initramfs to write (gzip)")
    args = ap.parse_args()
    args.sysroot = args.sysroot or os.path.join(TOP, ".sysroot", args.arch)
    args.busybox = args.busybox or os.path.join(TOP, ".sysroot", f"{args.arch}-kernel", "busybox")
    build(args)


if __name__ == "__main__":
    main()

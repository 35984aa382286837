#!/usr/bin/python3
"""Builds the A/B images of the qemu-virt boards (boards/qemu-virt-armhf, the
default, and boards/qemu-virt-arm64): a slot's root filesystem and the whole
virtio disk, and reads and writes the U-Boot environment on that disk offline.

    qemu-tests/ab_image.py rootfs --berth build-armhf/berth [--broken init|hang|kernel] -o slot.ext4
    qemu-tests/ab_image.py rootfs --board qemu-virt-arm64 --berth build-arm64/berth -o slot.ext4
    qemu-tests/ab_image.py disk [--board B] --slot-a a.ext4 --slot-b b.ext4 -o disk.img [NAME=VALUE ...]
    qemu-tests/ab_image.py write-slot disk.img B slot.ext4
    qemu-tests/ab_image.py env [--board B] disk.img [NAME=VALUE ...]     (prints it; sets first if given)

The boards differ in their architecture (the cross tools, the sysroot, the
kernel fetch-kernel.sh gets: .sysroot/armhf-kernel or .sysroot/arm64-kernel)
and in how U-Boot starts the kernel: armhf's zImage is /boot/vmlinuz (bootz),
arm64's Image is gzipped into /boot/Image.gz (booti decompresses it; the
uncompressed Image, 32 MiB, would not fit a 40 MiB slot with the rest). The
disk layout, the environment's places and the slot's scripts are the same.

A slot's root filesystem (ext4, `mke2fs -d`, no loop mount) holds what the
initramfs tests already boot (qemu-tests/mkinitramfs.py's parts: busybox-static,
the cross-built berth with the loader and its shared libraries), the Debian
board's kernel in /boot, a small initramfs as /boot/initrd.img (busybox,
the virtio disk, ext4 and watchdog modules (softdog, or i6300esb for QEMU's
watchdog device where the kernel has it: arm64), qemu-tests/ab_initrd.sh as /init:
the kernel needs them to mount the slot), the board profile and its
fw_env.config in /etc/berth/, and qemu-tests/ab_init.sh as /sbin/init, which ends in `berth daemon --init`. Three broken systems, as a
bad update would bring: `--broken init` adds /etc/berth-ab-broken (the
slot's init fails at once, the kernel panics), `--broken hang` adds
/etc/berth-ab-hang (the slot's init starts the watchdog and hangs: the
watchdog resets the machine), `--broken kernel` replaces
the kernel with one U-Boot's bootz or booti refuses (no zImage or Image
magic). Built slots are cached in .sysroot/ab-ARCH/, keyed by a hash of
every input.

The disk (GPT, sfdisk): the environment's two copies where the board's
fw_env.config puts them (1 MiB and 1.125 MiB), then partitions 1 boot (ext4:
boot.scr, compiled with mkimage from the board's boot.cmd followed by
boards/common/uboot-ab.cmd), 2 rootfs A, 3 rootfs B, 4 data (ext4, berth's
state root; build_disk's `data_dir` fills it with a device root). The environment
starts as RAUC's defaults (BOOT_ORDER="A B", BOOT_A_LEFT=3, BOOT_B_LEFT=3)
plus NAME=VALUE arguments, written with mkenvimage -r.

The environment is read and written offline with libubootenv's fw_printenv
and fw_setenv, through a copy of the board's fw_env.config whose device is
the disk image: the same offsets U-Boot's script and berth use.
"""
import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

# The boards: their architecture (Debian's name, the cross tools' triple,
# mkimage's -A) and their kernel's file in a slot (boot.cmd's berth_kernel).
BOARDS = {
    "qemu-virt-armhf": {"arch": "armhf", "triple": "arm-linux-gnueabihf", "mkimage": "arm",
                        "kernel": "boot/vmlinuz", "gzip_kernel": False},
    "qemu-virt-arm64": {"arch": "arm64", "triple": "aarch64-linux-gnu", "mkimage": "arm64",
                        "kernel": "boot/Image.gz", "gzip_kernel": True},
}
DEFAULT_BOARD = "qemu-virt-armhf"


def board_dir(board=DEFAULT_BOARD):
    return os.path.join(TOP, "boards", board)


def board_arch(board=DEFAULT_BOARD):
    """The board's Debian architecture (armhf, arm64)."""
    return BOARDS[board]["arch"]


BOARD = board_dir()
sys.path.insert(0, HERE)
import mkinitramfs  # noqa: E402  (the ELF library walk and the cpio writer)

MiB = 1 << 20
TRIPLE = BOARDS[DEFAULT_BOARD]["triple"]
# Partition sizes in MiB; the first starts at 2 MiB, after the environment.
LAYOUT = [("boot", 8), ("rootfs_a", 40), ("rootfs_b", 40), ("data", 32)]
FIRST_MIB = 2
SLOT_PART = {"A": 2, "B": 3}
DEFAULT_ENV = {"BOOT_ORDER": "A B", "BOOT_A_LEFT": "3", "BOOT_B_LEFT": "3"}
# Features the 5.10 kernel of an older board and U-Boot's ext4 reader know.
MKE2FS = ["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^orphan_file,^metadata_csum_seed", "-E", "root_owner=0:0"]
# A slot's root filesystem is only ever mounted read-only (ab_initrd.sh):
# no journal (4 MiB) and few inodes (it holds ~70 files), so the image an
# update streams, writes and reads back is that much smaller.
ROOTFS_MKE2FS = ["mke2fs", "-q", "-F", "-t", "ext4", "-O", "^orphan_file,^metadata_csum_seed,^has_journal",
                 "-N", "512", "-E", "root_owner=0:0"]
# Libraries berth opens at run time that a slot carries when the sysroot has
# them: libubootenv for berth's U-Boot backend (`berth slot ...`).
OPTIONAL_DLOPEN = ["libubootenv.so.0"]
# And, in a slot that takes updates (`--updates`), OpenSSL's libcrypto and
# libssl, libarchive and zlib (signatures, TUF, layers, HTTPS to the registry
# and the fleet's repository: image/dynlibs.cpp).
# Without them berth boots and supervises, but refuses every update.
UPDATE_DLOPEN = ["libcrypto.so.3", "libssl.so.3", "libarchive.so.13", "libz.so.1"]
# ICU's data library (31 MiB, a slot is 40) comes with libarchive through
# libxml2, which reads it only to convert text encodings: never on berth's
# paths (tar layers). The slot gets a stub defining its one symbol, so the
# loader is satisfied and the slot stays small.
STUB_LIBRARY = re.compile(r"libicudata\.so\.(\d+)$")
# The driver of QEMU's watchdog device (ab_qemu.py adds an i6300esb to each
# board): a kernel that has it (arm64's; fetch-kernel.sh keeps it) gets its
# /dev/watchdog from the device, which resets the machine as a board's
# hardware watchdog would, instead of from softdog.
HARDWARE_WATCHDOG = "i6300esb.ko"
# The busybox applets the slot's scripts call (the root is read-only, so
# the links are made here rather than with `busybox --install` at boot).
APPLETS = ["sh", "cat", "echo", "sleep", "grep", "mkdir", "mount", "umount", "sync", "ls", "ps",
           "dmesg", "tr", "cut", "awk", "head", "tail", "insmod", "kill", "poweroff", "reboot", "ip", "watchdog"]


def tool(name, package):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        sys.exit(f"ab_image: {name} is missing (apt-get install {package})")
    return path


def missing_tools(board=DEFAULT_BOARD):
    """What the images need that this machine lacks, as `tool (package)`."""
    triple = BOARDS[board]["triple"]
    need = [("sfdisk", "fdisk"), ("mke2fs", "e2fsprogs"), ("mkimage", "u-boot-tools"),
            ("mkenvimage", "u-boot-tools"), ("fw_setenv", "libubootenv-tool"),
            ("fw_printenv", "libubootenv-tool"), (f"{triple}-readelf", f"binutils-{triple}")]
    return [f"{t} ({p})" for t, p in need if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]


# ---------------------------------------------------------------- the slot

def slot_board(args):
    """The board a slot is built for: args.board, else the default."""
    return getattr(args, "board", None) or DEFAULT_BOARD


def slot_inputs(args):
    """The files a slot is made of, for the cache key."""
    kd = args.kernel_dir
    bd = board_dir(slot_board(args))
    files = [args.berth, os.path.join(kd, "busybox"), os.path.join(kd, "vmlinuz"),
             os.path.join(kd, "modules", "load-order"), os.path.join(HERE, "ab_init.sh"),
             os.path.join(HERE, "ab_initrd.sh"), os.path.abspath(__file__),
             os.path.join(bd, "board.json"), os.path.join(bd, "fw_env.config")]
    with open(os.path.join(kd, "modules", "load-order")) as f:
        files += [os.path.join(kd, "modules", m) for m in f.read().split()]
    return files


def optional_dlopen(sysroot, triple=TRIPLE, updates=False):
    """The OPTIONAL_DLOPEN (and UPDATE_DLOPEN) libraries the sysroot has."""
    return [s for s in OPTIONAL_DLOPEN + (UPDATE_DLOPEN if updates else [])
            if any(os.path.exists(f"{sysroot}{d}/{s}") for d in (f"/lib/{triple}", f"/usr/lib/{triple}"))]


def cache_key(args):
    board = slot_board(args)
    dlopen = optional_dlopen(args.sysroot, BOARDS[board]["triple"], getattr(args, "updates", False))
    h = hashlib.sha256(f"board={board} broken={args.broken} dlopen={dlopen} size={args.size_mib}\n".encode())
    for path in slot_inputs(args):
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


def slot_initrd(kernel_dir):
    """The slot's initramfs: busybox, the modules, ab_initrd.sh as /init."""
    cpio = mkinitramfs.Cpio()
    for d in ("dev", "proc", "sys", "root"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", mkinitramfs.read(os.path.join(kernel_dir, "busybox")), 0o755)
    cpio.symlink("bin/sh", "busybox")
    cpio.file("init", mkinitramfs.read(os.path.join(HERE, "ab_initrd.sh")), 0o755)
    order = mkinitramfs.read(os.path.join(kernel_dir, "modules", "load-order"))
    names = order.decode().split()
    if HARDWARE_WATCHDOG in names:  # QEMU's watchdog device has a driver: no softdog
        names = [n for n in names if n != "softdog.ko"]
        order = "".join(f"{n}\n" for n in names).encode()
    cpio.file("modules/load-order", order)
    for name in names:
        cpio.file(f"modules/{name}", mkinitramfs.read(os.path.join(kernel_dir, "modules", name)))
    return gzip.compress(cpio.finish(), compresslevel=6, mtime=0)


def build_rootfs_tree(args, root):
    board = BOARDS[slot_board(args)]
    triple = board["triple"]
    readelf = tool(f"{triple}-readelf", f"binutils-{triple}")
    strip = shutil.which(f"{triple}-strip")
    kd = args.kernel_dir

    def put(path, body, mode=0o644):
        full = os.path.join(root, path.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(body)
        os.chmod(full, mode)

    for d in ("dev", "proc", "sys", "run", "tmp", "var/lib/berth", "root", "etc", "usr/sbin", "sbin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    os.mknod(os.path.join(root, "dev", "console"), 0o600 | 0o020000, os.makedev(5, 1))
    put("bin/busybox", mkinitramfs.read(os.path.join(kd, "busybox")), 0o755)
    for applet in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    put("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    put("etc/group", b"root:x:0:\n")
    put("sbin/init", mkinitramfs.read(os.path.join(HERE, "ab_init.sh")), 0o755)
    for name in ("board.json", "fw_env.config"):
        put(f"etc/berth/{name}", mkinitramfs.read(os.path.join(board_dir(slot_board(args)), name)))
    if args.broken == "init":
        put("etc/berth-ab-broken", b"this slot's init fails on purpose (qemu-tests/ab_boot_test.py)\n")
    if args.broken == "hang":
        put("etc/berth-ab-hang", b"this slot's init hangs on purpose, the watchdog running (qemu-tests/ab_boot_test.py)\n")
    body = mkinitramfs.read(args.berth)
    if strip:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([strip, "-o", os.path.join(tmp, "berth"), args.berth], check=True)
            body = mkinitramfs.read(os.path.join(tmp, "berth"))
    put("usr/bin/berth", body, 0o755)
    libraries = mkinitramfs.shared_libraries(readelf, args.berth, args.sysroot, triple,
                                             optional_dlopen(args.sysroot, triple, getattr(args, "updates", False)))
    for path, real in sorted(libraries.items()):
        stub = STUB_LIBRARY.match(os.path.basename(path))
        put(path, stub_library(stub.group(0), f"icudt{stub.group(1)}_dat", triple) if stub else mkinitramfs.read(real), 0o755)
    if args.broken == "kernel":
        put(board["kernel"], b"not a kernel: this slot's kernel does not start (qemu-tests/ab_boot_test.py)\n" * 64)
    else:
        kernel = mkinitramfs.read(os.path.join(kd, "vmlinuz"))
        put(board["kernel"], gzip.compress(kernel, compresslevel=6, mtime=0) if board["gzip_kernel"] else kernel)
    put("boot/initrd.img", slot_initrd(kd))


def stub_library(soname, symbol, triple=TRIPLE):
    """A shared library named `soname` defining only the data `symbol`."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "stub.c")
        with open(src, "w") as f:
            f.write(f"const char {symbol}[16] = {{0}};\n")
        out = os.path.join(tmp, soname)
        subprocess.run([tool(f"{triple}-gcc", f"gcc-{triple}"), "-shared", "-nostdlib", "-O2", f"-Wl,-soname,{soname}",
                        "-o", out, src], check=True)
        return mkinitramfs.read(out)


def build_rootfs(args):
    """Writes the slot image to args.output (from the cache when it is there)."""
    tool("mke2fs", "e2fsprogs")
    key = cache_key(args)
    cache = os.path.join(TOP, ".sysroot", f"ab-{board_arch(slot_board(args))}")
    kind = (f"broken-{args.broken}" if args.broken else "good") + f"-{args.size_mib}m"
    if getattr(args, "updates", False):
        kind += "-updates"
    name = f"rootfs-{kind}-{key}.ext4"
    cached = os.path.join(cache, name)
    if not os.path.isfile(cached):
        os.makedirs(cache, exist_ok=True)
        for old in os.listdir(cache):  # one image of each kind is kept
            if old.startswith(f"rootfs-{kind}-"):
                os.unlink(os.path.join(cache, old))
        with tempfile.TemporaryDirectory() as tmp:
            tree = os.path.join(tmp, "root")
            build_rootfs_tree(args, tree)
            img = os.path.join(tmp, "rootfs.ext4")
            size_kib = args.size_mib * 1024
            subprocess.run(ROOTFS_MKE2FS + ["-L", "rootfs", "-d", tree, img, f"{size_kib}k"], check=True,
                           stdout=subprocess.DEVNULL)
            shutil.move(img, cached + ".part")
            os.rename(cached + ".part", cached)
    if args.output:
        shutil.copyfile(cached, args.output)
    return cached


# ---------------------------------------------------------------- the disk

def partitions(disk):
    """[(start byte, size in bytes)] of the disk's partitions, in order."""
    out = subprocess.run([tool("sfdisk", "fdisk"), "-J", disk], check=True, capture_output=True, text=True).stdout
    table = json.loads(out)["partitiontable"]
    sector = table.get("sectorsize", 512)
    return [(p["start"] * sector, p["size"] * sector) for p in table["partitions"]]


def write_at(disk, offset, limit, src):
    """Copies file src into disk at offset; refuses one larger than limit."""
    size = os.path.getsize(src)
    if size > limit:
        sys.exit(f"ab_image: {src} is {size} bytes, its partition {limit}")
    with open(src, "rb") as fin, open(disk, "r+b") as fout:
        fout.seek(offset)
        while True:
            chunk = fin.read(MiB)
            if not chunk:
                break
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def env_config(disk, out, board=DEFAULT_BOARD):
    """A copy of the board's fw_env.config with the disk image as its device."""
    lines = []
    with open(os.path.join(board_dir(board), "fw_env.config")) as f:
        for line in f:
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            lines.append(" ".join([os.path.abspath(disk)] + fields[1:]))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    return [(int(line.split()[1], 0), int(line.split()[2], 0)) for line in lines]


def env_read(disk, board=DEFAULT_BOARD):
    """{name: value} of the environment on the disk (the newer good copy)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "fw_env.config")
        env_config(disk, cfg, board)
        out = subprocess.run([tool("fw_printenv", "libubootenv-tool"), "-c", cfg],
                             check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def env_write(disk, values, board=DEFAULT_BOARD):
    """Sets (value None: deletes) variables with fw_setenv, as a userspace
    updater would (libubootenv's script format: NAME=VALUE lines)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "fw_env.config")
        env_config(disk, cfg, board)
        script = os.path.join(tmp, "script")
        with open(script, "w") as f:
            for name, value in values.items():
                f.write(f"{name}={value if value is not None else ''}\n")
        subprocess.run([tool("fw_setenv", "libubootenv-tool"), "-c", cfg, "-s", script], check=True)


def env_init(disk, values, board=DEFAULT_BOARD):
    """Writes both copies of a new environment (mkenvimage -r: flag 1 in each)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "fw_env.config")
        copies = env_config(disk, cfg, board)
        text = os.path.join(tmp, "env.txt")
        with open(text, "w") as f:
            for name, value in sorted(values.items()):
                f.write(f"{name}={value}\n")
        img = os.path.join(tmp, "env.bin")
        subprocess.run([tool("mkenvimage", "u-boot-tools"), "-r", "-s", hex(copies[0][1]), "-o", img, text], check=True)
        for offset, size in copies:
            write_at(disk, offset, size, img)


def boot_script(out, board=DEFAULT_BOARD):
    """boot.scr: the board's boot.cmd, then the shared A/B logic, through mkimage."""
    full = out + ".cmd"
    with open(full, "wb") as f:
        for part in (os.path.join(board_dir(board), "boot.cmd"), os.path.join(TOP, "boards", "common", "uboot-ab.cmd")):
            f.write(mkinitramfs.read(part))
    subprocess.run([tool("mkimage", "u-boot-tools"), "-A", BOARDS[board]["mkimage"], "-O", "linux", "-T", "script",
                    "-C", "none", "-n", "berth A/B boot", "-d", full, out], check=True, stdout=subprocess.DEVNULL)
    os.unlink(full)


def build_disk(output, slot_a, slot_b, env, data_dir=None, board=DEFAULT_BOARD):
    """The whole disk: partition table, environment, boot, both slots, data
    (the files of `data_dir` when given: a device root)."""
    total = FIRST_MIB + sum(size for _, size in LAYOUT) + 1
    with open(output, "wb") as f:
        f.truncate(total * MiB)
    script = "label: gpt\n" + "".join(
        f"{'start=' + str(FIRST_MIB) + 'MiB, ' if i == 0 else ''}size={size}MiB, name={name}\n"
        for i, (name, size) in enumerate(LAYOUT))
    subprocess.run([tool("sfdisk", "fdisk"), "-q", output], input=script, text=True, check=True)
    parts = partitions(output)
    with tempfile.TemporaryDirectory() as tmp:
        boot = os.path.join(tmp, "boot")
        os.makedirs(boot)
        boot_script(os.path.join(boot, "boot.scr"), board)
        subprocess.run(MKE2FS + ["-L", "boot", "-d", boot, "-E", f"offset={parts[0][0]}", output,
                                 f"{parts[0][1] // 1024}k"], check=True)
        data = os.path.join(tmp, "data")
        if data_dir:
            shutil.copytree(data_dir, data)
        else:
            os.makedirs(data)
        subprocess.run(MKE2FS + ["-L", "data", "-d", data, "-E", f"offset={parts[3][0]}", output,
                                 f"{parts[3][1] // 1024}k"], check=True)
    for slot, image in (("A", slot_a), ("B", slot_b)):
        if image:
            write_slot(output, slot, image)
    env_init(output, {**DEFAULT_ENV, **env}, board)


def write_slot(disk, slot, image):
    offset, size = partitions(disk)[SLOT_PART[slot] - 1]
    write_at(disk, offset, size, image)


# ---------------------------------------------------------------- the CLI

def assignments(items):
    out = {}
    for item in items:
        if "=" not in item:
            sys.exit(f"ab_image: {item!r}: not NAME=VALUE")
        name, value = item.split("=", 1)
        out[name] = value
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rootfs", help="a slot's root filesystem image")
    r.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD)
    r.add_argument("--berth", required=True, help="the cross-built berth (build-armhf/berth)")
    r.add_argument("--kernel-dir", help="default .sysroot/ARCH-kernel (fetch-kernel.sh ARCH)")
    r.add_argument("--sysroot", help="default .sysroot/ARCH")
    r.add_argument("--broken", choices=["init", "hang", "kernel"],
                   help="a slot whose init fails, whose init hangs with the watchdog running, or whose kernel does not start")
    r.add_argument("--size-mib", type=int, default=32)
    r.add_argument("--updates", action="store_true", help="with the libraries berth needs to take updates (UPDATE_DLOPEN)")
    r.add_argument("-o", "--output")
    d = sub.add_parser("disk", help="the whole disk image")
    d.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD)
    d.add_argument("--slot-a")
    d.add_argument("--slot-b")
    d.add_argument("-o", "--output", required=True)
    d.add_argument("env", nargs="*", metavar="NAME=VALUE")
    w = sub.add_parser("write-slot", help="write a root filesystem into slot A or B")
    w.add_argument("disk")
    w.add_argument("slot", choices=sorted(SLOT_PART))
    w.add_argument("image")
    e = sub.add_parser("env", help="print (and first set) the U-Boot environment")
    e.add_argument("--board", choices=sorted(BOARDS), default=DEFAULT_BOARD)
    e.add_argument("disk")
    e.add_argument("env", nargs="*", metavar="NAME=VALUE")
    args = ap.parse_args()

    if args.cmd == "rootfs":
        arch = board_arch(args.board)
        args.kernel_dir = args.kernel_dir or os.path.join(TOP, ".sysroot", f"{arch}-kernel")
        args.sysroot = args.sysroot or os.path.join(TOP, ".sysroot", arch)
        print(build_rootfs(args))
    elif args.cmd == "disk":
        build_disk(args.output, args.slot_a, args.slot_b, assignments(args.env), board=args.board)
    elif args.cmd == "write-slot":
        write_slot(args.disk, args.slot, args.image)
    elif args.cmd == "env":
        if args.env:
            env_write(args.disk, assignments(args.env), args.board)
        for name, value in sorted(env_read(args.disk, args.board).items()):
            print(f"{name}={value}")


if __name__ == "__main__":
    main()

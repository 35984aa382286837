"""The rig of the in-VM A/B update tests (ab_update_test.py, ab_campaign.py):
the qemu-virt-armhf board (boards/qemu-virt-armhf; with --board
qemu-virt-arm64 the arm64 one: its berth, sysroot and kernel) under real
U-Boot, following a fleet channel on the host, and everything the tests
read from outside the machine.

- The host (host_services.py): docker-registry holding the app image (a
  busybox layer for arm, signed with a key the device's policy pins) and
  the system images (each slot image pushed as a plain blob, as a layer
  is); a `berth fleet` repository served by nginx; the guest reaches both
  at 10.0.2.100 through QEMU's user network restricted to the host.
- The disk (ab_image.py): slot A holds system version 1, slot B nothing;
  the data partition is the device root: the fleet's TUF root,
  fleet/agent.json (a 2 s poll of channel `stable`), the trust policy, and
  ab/daemon-args (`--board /etc/berth/board.json --insecure-http`) and
  ab/log-console for the slot's init (ab_init.sh).
- The firmware: a second pflash bank holding a saved U-Boot environment
  (U-Boot's default one, built from u-boot.bin itself, with bootdelay=0
  and boot_targets=virtio0), so no boot waits U-Boot's 2 s autoboot delay
  or scans USB and SCSI first. Read-only: U-Boot never writes it (its A/B
  state is on the virtio disk, boards/common/uboot-ab.cmd).
- Offline reads of the disk image once QEMU is dead: the U-Boot
  environment (fw_printenv), the data partition's files (a copy of the
  partition, its journal replayed by e2fsck, then debugfs: what the guest
  fsynced is what counts), and which published image each slot holds (the
  sha256 of its first `size` bytes).

Manifests (docs/update-manifest.md): revision N runs one container `app`
(busybox printing its revision) with an exec health check; a system part
names a slot image by digest with its version.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import ab_image  # noqa: E402
import ab_qemu  # noqa: E402
import ab_boot_test  # noqa: E402
from ab_boot_test import Failed, expect  # noqa: E402,F401  (the A/B tests' one way to fail a check)
import host_services  # noqa: E402
from host_services import GUEST_HOST  # noqa: E402
from remote_lib import OCI_MANIFEST, Registry, new_key, py_sign, sha, tar_layer  # noqa: E402

CHANNEL = "stable"
FLEET = "ab"
DEVICE = "ab-0001"
GUEST_ROOT = "/var/lib/berth"  # the data partition in the guest (ab_init.sh)
SLOT_MIB = 24                  # the slot images' size (20.5 MiB used, no journal): small, for fast installs
# The boards' own: the slot images' size (arm64's gzipped Image is 11 MiB,
# armhf's zImage 5) and the app image's platform (the busybox of the
# board's kernel directory).
BOARD_SLOT_MIB = {"qemu-virt-arm64": 40}
APP_PLATFORM = {"qemu-virt-armhf": {"architecture": "arm", "variant": "v7"},
                "qemu-virt-arm64": {"architecture": "arm64", "variant": "v8"}}
APP_REPO = "ab/app"
SYSTEM_REPO = "ab/system"


def board_defaults(args):
    """Fills in what --board decides: the kernel directory and the sysroot
    (.sysroot/ARCH-kernel, .sysroot/ARCH) unless given."""
    args.board = getattr(args, "board", None) or ab_image.DEFAULT_BOARD
    arch = ab_image.board_arch(args.board)
    args.kernel_dir = args.kernel_dir or os.path.join(TOP, ".sysroot", f"{arch}-kernel")
    args.sysroot = args.sysroot or os.path.join(TOP, ".sysroot", arch)
    return arch


def missing(args):
    """Why these tests cannot run here, or None."""
    arch = board_defaults(args)
    why = ab_qemu.missing(args.board)
    if why:
        return why
    lacking = ab_image.missing_tools(args.board) + [f"{t} ({p})" for t, p in
                                          (("debugfs", "e2fsprogs"), ("e2fsck", "e2fsprogs"),
                                           ("docker-registry", "docker-registry"), ("busybox", "busybox-static"))
                                          if not (shutil.which(t) or shutil.which(t, path="/usr/sbin:/sbin"))]
    if not os.access("/usr/sbin/nginx", os.X_OK):
        lacking.append("nginx (nginx)")
    if lacking:
        return "missing: " + ", ".join(lacking)
    if not os.path.isfile(args.berth):
        return f"{args.berth} is not built (meson compile -C build-{arch}, see README.md)"
    if not (args.native_berth and os.access(args.native_berth, os.X_OK)):
        return "no native berth (--native-berth): it signs the fleet's releases"
    order = os.path.join(args.kernel_dir, "modules", "load-order")
    if not os.path.isfile(os.path.join(args.kernel_dir, "vmlinuz")) or not os.path.isfile(order):
        return f"no kernel in {args.kernel_dir} (qemu-tests/fetch-kernel.sh {arch})"
    if "virtio_net.ko" not in open(order).read().split():
        return f"the kernel in {args.kernel_dir} has no virtio_net module (qemu-tests/fetch-kernel.sh {arch} again)"
    if not os.path.isdir(args.sysroot):
        return f"no sysroot in {args.sysroot} (cross/build-sysroot.sh {arch})"
    return None


def add_args(ap):
    """The options both tests take."""
    ap.add_argument("--board", choices=sorted(ab_image.BOARDS), default=ab_image.DEFAULT_BOARD)
    ap.add_argument("--berth", help="the board's berth (default: $BERTH_QEMU_ARMHF_BERTH, else build-armhf/berth; "
                                    "arm64: $BERTH_QEMU_ARM64_BERTH, else build-arm64/berth)")
    ap.add_argument("--native-berth", help="a berth for this machine: `berth fleet` signs the releases")
    ap.add_argument("--kernel-dir", help="default .sysroot/ARCH-kernel (fetch-kernel.sh ARCH)")
    ap.add_argument("--sysroot", help="default .sysroot/ARCH")
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (disk image, console log, repository)")
    ap.add_argument("--quiet", action="store_true", help="do not echo the console")


# ---------------------------------------------------------------- firmware

def uboot_flash(board=ab_image.DEFAULT_BOARD):
    """The second pflash bank with a saved U-Boot environment: U-Boot's
    default environment (the NUL-separated block in u-boot.bin) with
    bootdelay=0 and boot_targets=virtio0, as mkenvimage writes it for
    this build (CONFIG_ENV_IS_IN_FLASH, one 256 KiB copy at the bank's
    start). Cached beside the slot images."""
    uboot = ab_qemu.BOARDS[board]["uboot"]
    with open(uboot, "rb") as f:
        body = f.read()
    key = hashlib.sha256(body).hexdigest()[:16]
    cache = os.path.join(TOP, ".sysroot", f"ab-{ab_image.board_arch(board)}")
    path = os.path.join(cache, f"uboot-env-flash-{key}.img")
    if os.path.isfile(path):
        return path
    start = body.find(b"arch=arm\0")
    if start < 0:
        raise Failed(f"{uboot}: its default environment (arch=arm...) was not found")
    env = [e.decode() for e in body[start:body.find(b"\0\0", start)].split(b"\0")]
    env = [e for e in env if not e.startswith(("boot_targets=", "bootdelay=", "bootcmd="))]
    env += ["bootcmd=run distro_bootcmd", "bootdelay=0", "baudrate=115200", "boot_targets=virtio0"]
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "env.txt")
        with open(text, "w") as f:
            f.write("\n".join(env) + "\n")
        img = os.path.join(tmp, "env.bin")
        subprocess.run([ab_image.tool("mkenvimage", "u-boot-tools"), "-s", "0x40000", "-o", img, text], check=True)
        flash = os.path.join(tmp, "flash.img")
        shutil.copyfile(img, flash)
        with open(flash, "r+b") as f:
            f.truncate(64 << 20)  # the bank's size: QEMU wants all of it
        shutil.move(flash, path + ".part")
        os.rename(path + ".part", path)
    return path


class Machine(ab_qemu.Machine):
    """The board with a network card on QEMU's user network (restricted
    to the host) and the saved U-Boot environment."""

    def __init__(self, disk, netdev, flash, **kw):
        super().__init__(disk, **kw)
        self.netdev, self.flash = netdev, flash

    def command(self):
        cmd = super().command()
        i = cmd.index("-nic")
        cmd[i:i + 2] = ["-netdev", self.netdev, "-device", "virtio-net-device,netdev=net"]
        return cmd + ["-drive", f"if=pflash,unit=1,format=raw,readonly=on,file={self.flash}"]


# ---------------------------------------------------------------- the rig

class Rig:
    def __init__(self, args, tmp, echo=True):
        self.args, self.tmp = args, tmp
        self.closers = []
        self.disk = os.path.join(tmp, "disk.img")
        self._partitions = None  # the disk's partition table, once read
        self.log = os.path.join(tmp, "console.log")
        self.images = {}   # system version -> (path, digest, size)
        self.published = {}  # revision -> manifest path
        self.app = None
        board_defaults(args)
        self.board = args.board
        self.flash = uboot_flash(self.board)
        self.registry = Registry(tmp, "registry")
        self.closers.append(self.registry.stop)
        self.fleet = host_services.FleetRepo(args.native_berth, os.path.join(tmp, "fleet"))
        self.closers.append(self.fleet.close)
        netdev = host_services.user_netdev([self.registry.port, self.fleet.port])
        self.machine = Machine(self.disk, netdev, self.flash, log=self.log, echo=echo, board=self.board)
        self.closers.insert(0, self.machine.kill)

    def close(self):
        for c in self.closers:
            try:
                c()
            except Exception as e:  # one clean-up's failure must not keep the others from running
                print(f"clean-up: {e}", flush=True)

    # ---- images

    def slot_image(self, version, broken=None):
        """Slot image of system `version`: the slot (ab_image.py's cached
        build, `broken` as there) with `version` in
        /etc/berth-system-version (debugfs on a copy), pushed to the
        registry as a blob: (path, digest, size)."""
        a = self.args
        base = ab_image.build_rootfs(types.SimpleNamespace(
            berth=a.berth, kernel_dir=a.kernel_dir, sysroot=a.sysroot, broken=broken,
            size_mib=BOARD_SLOT_MIB.get(self.board, SLOT_MIB), output=None, updates=True, board=self.board))
        path = os.path.join(self.tmp, f"system-{version}.ext4")
        shutil.copyfile(base, path)
        text = os.path.join(self.tmp, "version.txt")
        with open(text, "w") as f:
            f.write(f"{version}\n")
        subprocess.run(["debugfs", "-w", "-R", f"write {text} /etc/berth-system-version", path], check=True,
                       capture_output=True)
        os.unlink(text)
        with open(path, "rb") as f:
            body = f.read()
        digest = self.registry.put_blob(SYSTEM_REPO, body)
        self.images[version] = (path, digest, len(body))
        return self.images[version]

    def drop_image(self, version):
        """Deletes system `version`'s file and its blob in the registry (a
        long campaign publishes hundreds)."""
        path, digest, size = self.images[version]
        if path:
            os.unlink(path)
            req = urllib.request.Request(self.registry.url(f"/v2/{SYSTEM_REPO}/blobs/{digest}"), method="DELETE")
            urllib.request.urlopen(req).read()
            self.images[version] = (None, digest, size)  # still known by its digest (slot_holds)

    def push_app(self):
        """The app image: busybox (the static one of the board's
        architecture) for its platform (APP_PLATFORM), signed for the name
        the guest pulls it by."""
        bb = ab_image.mkinitramfs.read(os.path.join(self.args.kernel_dir, "busybox"))
        layer = tar_layer([("bin", None), ("bin/busybox", bb), ("bin/sh", ("link", "busybox")),
                           ("bin/true", ("link", "busybox")), ("bin/sleep", ("link", "busybox")),
                           ("bin/echo", ("link", "busybox")), ("etc", None), ("tmp", None),
                           ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")])
        reg = self.registry
        cfg = json.dumps({**APP_PLATFORM[self.board], "os": "linux",
                          "config": {"Cmd": ["/bin/sh"]},
                          "rootfs": {"type": "layers", "diff_ids": [layer[1]]}}).encode()
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": reg.put_blob(APP_REPO, cfg),
                        "size": len(cfg)},
             "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                         "digest": reg.put_blob(APP_REPO, layer[0]), "size": len(layer[0])}]}
        body = json.dumps(m).encode()
        reg.put_manifest(APP_REPO, "1", body)
        digest = sha(body)
        self.key = new_key(os.path.join(self.tmp, "app-key.pem"))
        guest_repo = f"{GUEST_HOST}:{reg.port}/{APP_REPO}"
        py_sign(reg, APP_REPO, digest, guest_repo, self.key)
        self.app = f"{guest_repo}@{digest}"
        return self.app

    def manifest(self, revision, system=None, name=None):
        """Writes the manifest of app `revision` (with system image
        `system`, a version of self.images, when given); returns its path."""
        doc = {"version": revision, "name": name or f"ab {revision}", "health_window": "60s",
               "containers": [{
                   "name": "app", "image": self.app, "restart": "always", "network": "none", "stop_grace": "2s",
                   "args": ["/bin/sh", "-c", f"echo app revision {revision}; exec sleep 100000"],
                   "health": {"kind": "exec", "command": ["/bin/true"], "interval": "1s", "timeout": "5s",
                              "retries": 3},
               }]}
        if system is not None:
            _, digest, size = self.images[system]
            doc["system"] = {"image": f"{GUEST_HOST}:{self.registry.port}/{SYSTEM_REPO}@{digest}", "size": size,
                             "version": system, "fstype": "ext4"}
        path = os.path.join(self.tmp, f"manifest-{revision}.json")
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        return path

    def release(self, revision, system=None):
        path = self.manifest(revision, system)
        ok, why = self.fleet.release(path, CHANNEL)
        if not ok:
            raise Failed(f"berth fleet release of revision {revision}: {why}")
        self.published[revision] = path
        return path

    # ---- the disk

    def build_disk(self, slot_a, env=None, poll_interval_ms=2000):
        """The disk: slot A holds `slot_a` (a version of self.images), slot B
        nothing, the data partition the device root (the fleet agent polling
        every `poll_interval_ms`); `env` over RAUC's default environment."""
        seed = os.path.join(self.tmp, "data-seed")
        shutil.rmtree(seed, ignore_errors=True)
        key_pub = os.path.join(self.tmp, "app-key.pem.pub")
        policy = host_services.signed_policy(f"{GUEST_HOST}:{self.registry.port}/ab", f"{GUEST_ROOT}/trust/app-key.pub")
        agent = host_services.agent_config(DEVICE, FLEET, CHANNEL, self.fleet.port, poll_interval_ms=poll_interval_ms)
        host_services.device_root(seed, self.fleet.root_json, agent, policy, [("trust/app-key.pub", key_pub)])
        os.makedirs(os.path.join(seed, "ab"))
        with open(os.path.join(seed, "ab", "daemon-args"), "w") as f:
            f.write("--board /etc/berth/board.json --insecure-http\n")
        open(os.path.join(seed, "ab", "log-console"), "w").close()
        ab_image.build_disk(self.disk, self.images[slot_a][0], None, env or {}, data_dir=seed, board=self.board)
        self._partitions = None

    # ---- offline reads (QEMU dead)

    def env(self):
        return ab_image.env_read(self.disk, self.board)

    def data_files(self, names):
        """{name: text or None} of files on the data partition, read from a
        copy of it whose journal e2fsck replayed; also "fsck": e2fsck's
        exit status and last lines."""
        offset, size = self.partitions()[3]
        copy = os.path.join(self.tmp, "data-copy.img")
        with open(self.disk, "rb") as src, open(copy, "wb") as dst:
            left, at = size, offset
            while left:  # in the kernel, no Python buffers (a read after every cut)
                n = os.copy_file_range(src.fileno(), dst.fileno(), left, at)
                if n <= 0:
                    break
                left -= n
                at += n
        fsck = subprocess.run([ab_image.tool("e2fsck", "e2fsprogs"), "-f", "-y", copy], capture_output=True, text=True)
        said = host_services.last_line(fsck.stdout) or host_services.last_line(fsck.stderr)
        out = {"fsck": (fsck.returncode, said)}
        for name in names:
            r = subprocess.run(["debugfs", "-R", f"cat /{name}", copy], capture_output=True)
            text = r.stdout.decode(errors="replace")
            out[name] = None if (r.returncode != 0 or not text and b"not found" in r.stderr) else text
        os.unlink(copy)
        return out

    def partitions(self):
        """ab_image.partitions of the disk, read once (the table never changes)."""
        if self._partitions is None:
            self._partitions = ab_image.partitions(self.disk)
        return self._partitions

    def device_state(self, extra=()):
        """The updater's state.json and history, read offline; `extra`, more
        files of the data partition, in .files (the same read)."""
        f = self.data_files(["revisions/state.json", "revisions/history.json"] + list(extra))

        def js(text, default):
            try:
                return json.loads(text) if text else default
            except ValueError:
                return "unparsable: " + text[:200]
        return types.SimpleNamespace(state=js(f["revisions/state.json"], {}),
                                     history=js(f["revisions/history.json"], []), fsck=f["fsck"], files=f)

    def slot_holds(self, slot):
        """The system version whose image slot `slot` holds whole (the
        sha256 of its first `size` bytes), or None."""
        offset, _ = self.partitions()[ab_image.SLOT_PART[slot] - 1]
        sizes = sorted({size for _, _, size in self.images.values()})
        found = None
        with open(self.disk, "rb") as f:
            for size in sizes:
                f.seek(offset)
                h = hashlib.sha256()
                left = size
                while left:
                    chunk = f.read(min(left, 4 << 20))
                    h.update(chunk)
                    left -= len(chunk)
                for version, (_, digest, s) in self.images.items():
                    if s == size and "sha256:" + h.hexdigest() == digest:
                        found = version
        return found

    # ---- the console

    def boot(self, until, timeout):
        return ab_boot_test.boot(self.machine, until, timeout)

    def wait(self, pattern, timeout, since, what):
        hit = self.machine.wait(pattern, timeout, since=since)
        if hit is None:
            self.machine.kill()
            raise Failed(f"{what}: no console line matching {pattern!r} within {timeout:.0f} s")
        return hit


def default_berth(path, board=ab_image.DEFAULT_BOARD):
    from boot_test import find_berth
    return find_berth(path, ab_image.board_arch(board))

#!/usr/bin/python3
"""cross/make-base-image.sh (slow suite: it fetches Debian packages through
the host's apt sources): the busybox armhf image made twice, in two
directories and at two times, has the same digests; another
SOURCE_DATE_EPOCH gives another; the image imported into a berth store
runs an arm/v7 RUN step under qemu-arm (its busybox sees armv7l). The
same for a Debian minbase amd64 image (mmdebstrap), made twice.
Skips (77) without mmdebstrap or when qemu-arm cannot be used.
Usage: build_run_base_image_test.py BERTH BUILD_RUN_STEP"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Setup, skip  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cross", "make-base-image.sh")
MISC = "/proc/sys/fs/binfmt_misc"

if not shutil.which("mmdebstrap"):
    skip("needs mmdebstrap")
t = Setup("berth-buildrun-baseimage-")
c = Checks()


def make(kind, arch, out, epoch):
    r = subprocess.run([SCRIPT, "--out", out, kind, arch], capture_output=True, text=True, timeout=1800,
                       env=dict(os.environ, SOURCE_DATE_EPOCH=str(epoch)))
    if r.returncode != 0:
        raise SystemExit(f"FAIL: make-base-image.sh {kind} {arch}: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    return r


def digests(layout):
    """The image index's digest and its manifests' digests."""
    top = json.load(open(os.path.join(layout, "index.json")))["manifests"][0]
    index = json.load(open(os.path.join(layout, "blobs", "sha256", top["digest"].split(":")[1])))
    return top["digest"], sorted(m["digest"] for m in index["manifests"])


try:
    if not os.path.exists(f"{MISC}/qemu-arm"):
        skip("qemu-arm is not registered in binfmt_misc (build_run_foreign sets it up)")
    a, b, other = (os.path.join(t.tmp, n) for n in ("a", "b", "other"))
    make("busybox", "armhf", a, 1700000000)
    time.sleep(1.1)
    make("busybox", "armhf", b, 1700000000)
    c.ok(digests(a) == digests(b), f"busybox armhf made twice has the same digests: {digests(a)} {digests(b)}")
    make("busybox", "armhf", other, 1700000001)
    c.ok(digests(other)[1] != digests(a)[1], "another SOURCE_DATE_EPOCH gives another image")

    r = subprocess.run([t.berth_bin, "image", "import", "--store", t.store, "--platform", "linux/arm/v7", a,
                        "localhost/busybox:1"], capture_output=True, text=True)
    c.ok(r.returncode == 0, f"the layout imports into berth's store as linux/arm/v7: {r.stderr.strip()}")
    layers = os.listdir(os.path.join(t.store, "layers"))
    r, upper, out = t.step([os.path.join(t.store, "layers", layers[0], "rootfs")],
                           ["sh", "-c", "uname -m; test -x /bin/busybox && ls /tmp"], "--platform", "linux/arm/v7")
    c.ok(r.returncode == 0 and open(out).read() == "armv7l\n",
         f"an arm/v7 step runs on it under qemu-arm: rc={r.returncode} {open(out).read()!r} {r.stderr.strip()}")

    da, db = (os.path.join(t.tmp, n) for n in ("debian-a", "debian-b"))
    make("debian", "amd64", da, 1700000000)
    make("debian", "amd64", db, 1700000000)
    c.ok(digests(da) == digests(db), f"a Debian minbase amd64 made twice has the same digests: {digests(da)} {digests(db)}")
finally:
    t.cleanup()
c.exit()

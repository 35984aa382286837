#!/usr/bin/python3
"""`berth build` with RUN steps, end to end (the builder over the runtime's
runner): on a busybox-static base image (an OCI layout made here), RUN
steps that create, change and delete files (one of the base's, a
directory replaced) give an image whose root is what the steps left;
the image's layers carry the RUN changes only, whiteouts included; two
builds in two stores at two times give the same digest; a failing RUN
fails the build with its exit status and leaves no tag, mount, container
or cgroup. The sensor app of examples/sensor builds from its own
Containerfile (on this platform's busybox) and reports its version.
With qemu-arm registered (flag F) and an armhf cross compiler, a RUN
step of linux/arm/v7 runs its ARM program; else that case is skipped
with the reason.
Usage: build_run_build_test.py BERTH BUILD_RUN_STEP"""
import gzip
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Layout, Setup, busybox_files, context_dir, tar_layer  # noqa: E402

SENSOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "sensor")
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

t = Setup("berth-buildrun-build-")
c = Checks()


def layout(name, layers, arch=ARCH):
    lay = Layout(os.path.join(t.tmp, name))
    desc, _ = lay.image(layers, arch)
    lay.tag(desc, "1")
    return f"oci:{lay.path}:1"


def context(name, containerfile, files=None):
    return context_dir(t.tmp, name, containerfile, files, 0o755)


def build(ctx, store, *opts, env=None):
    return subprocess.run([t.berth_bin, "build", "--store", store, *opts, ctx], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **(env or {})))


def oci_image(out):
    """(manifest digest, [layer tar members per layer], config) of the one image in the OCI layout `out`."""
    blob = lambda d: open(os.path.join(out, "blobs", "sha256", d.split(":")[1]), "rb").read()
    desc = json.load(open(os.path.join(out, "index.json")))["manifests"][0]
    doc = json.loads(blob(desc["digest"]))
    if "manifests" in doc:
        desc = doc["manifests"][0]
        doc = json.loads(blob(desc["digest"]))
    layers = []
    for l in doc["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(l["digest"])))) as tf:
            layers.append({m.name.rstrip("/"): m for m in tf.getmembers()})
    return desc["digest"], layers, json.loads(blob(doc["config"]["digest"]))


def run_in(store, image, *argv, plat=None):
    """Runs argv in a RUN step over `image`'s layers (the store's unpacked ones); returns its output."""
    cfg = subprocess.run([t.berth_bin, "image", "inspect", "--store", store, image], capture_output=True, text=True)
    diff_ids = [l["diffID"] for l in json.loads(cfg.stdout)["layers"]] if cfg.returncode == 0 else []
    lowers = [os.path.join(store, "layers", d.split(":")[1], "rootfs") for d in reversed(diff_ids)]
    r, _, out = t.step(lowers, list(argv), *(["--platform", plat] if plat else []))
    return r.returncode, open(out).read() if os.path.exists(out) else "", r.stderr


try:
    base = layout("base", [tar_layer(busybox_files()),
                           tar_layer([("etc/motd", b"from the base\n"), ("srv", None), ("srv/old", None),
                                      ("srv/old/a", b"a\n"), ("srv/keep", b"keep\n")])])
    steps = context("steps", f"""FROM {base}
RUN echo made >/made && echo changed >/srv/keep && rm /etc/motd
RUN rm -r /srv/old && mkdir /srv/old && echo fresh >/srv/old/b
RUN ["sh", "-c", "echo $0 >/json-form", "exec form"]
""")
    store = os.path.join(t.tmp, "store")
    out = os.path.join(t.tmp, "oci1")
    r = build(steps, store, "-t", "localhost/steps:1", "--output", f"type=oci,dest={out}")
    c.ok(r.returncode == 0, f"a build with RUN steps succeeds: {r.stderr.strip()[-500:]}")
    digest, layers, config = oci_image(out)
    run_layers = layers[2:]
    c.ok(len(run_layers) == 3, f"each RUN makes one layer: {len(layers)} layers")
    if len(run_layers) == 3:
        l1, l2, l3 = run_layers
        c.ok(set(l1) == {"made", "srv", "srv/keep", "etc", "etc/.wh.motd"},
             f"the first RUN's layer: what it made, changed and deleted: {sorted(l1)}")
        c.ok(set(l2) == {"srv", "srv/old", "srv/old/.wh..wh..opq", "srv/old/b"},
             f"the second RUN's layer: the replaced directory, opaque: {sorted(l2)}")
        c.ok(set(l3) == {"json-form"}, f"the JSON form runs without a shell around it: {sorted(l3)}")
    rc, text, err = run_in(store, "localhost/steps:1", "sh", "-c",
                           "cat /made /srv/keep /srv/old/b /json-form; ls /srv/old; test ! -e /etc/motd && echo gone")
    c.ok(rc == 0 and text == "made\nchanged\nfresh\nexec form\nb\ngone\n",
         f"the image's root is what the steps left: {text!r} {err.strip()}")

    time.sleep(1.1)
    out2 = os.path.join(t.tmp, "oci2")
    r = build(steps, os.path.join(t.tmp, "store2"), "--output", f"type=oci,dest={out2}")
    c.ok(r.returncode == 0 and oci_image(out2)[0] == digest,
         f"built again in another store, later, it has the same digest: {digest} {oci_image(out2)[0] if r.returncode == 0 else r.stderr.strip()}")

    failing = context("failing", f"FROM {base}\nRUN echo before && exit 7\nRUN echo never\n")
    r = build(failing, store, "-t", "localhost/failing:1")
    tags = subprocess.run([t.berth_bin, "image", "ls", "--store", store], capture_output=True, text=True).stdout
    c.ok(r.returncode != 0 and "exit status 7" in r.stderr and "Containerfile:2" in r.stderr,
         f"a failing RUN fails the build with its status and line: rc={r.returncode} {r.stderr.strip()[-300:]}")
    c.ok("failing" not in tags, f"... and tags nothing: {tags.strip()}")
    c.ok(t.leftovers() == [] and not [l for l in open("/proc/self/mountinfo") if t.tmp in l],
         f"... and leaves no mount, container or cgroup: {t.leftovers()}")

    r = build(SENSOR, store, "--build-arg", f"BASE={base}", "--build-arg", "VERSION=2.0", "-t", "localhost/sensor:2.0")
    c.ok(r.returncode == 0, f"the sensor app builds from its Containerfile: {r.stderr.strip()[-500:]}")
    rc, text, err = run_in(store, "localhost/sensor:2.0", "sh", "-c", "cat /etc/sensor/version; test -x /usr/bin/sensor && echo app")
    c.ok(rc == 0 and text == "2.0\napp\n", f"... with its version and the app: {text!r} {err.strip()}")

    gcc = shutil.which("arm-linux-gnueabihf-gcc")
    misc = "/proc/sys/fs/binfmt_misc/qemu-arm"
    flags = [l for l in open(misc).read().splitlines() if l.startswith("flags:")] if os.path.exists(misc) else []
    if ARCH != "amd64" or not gcc or not flags or "F" not in flags[0]:
        print(f"(the arm/v7 case is skipped: needs an amd64 host, arm-linux-gnueabihf-gcc and qemu-arm registered "
              f"with flag F; build_run_foreign registers it)")
    else:
        src = os.path.join(t.tmp, "hello.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\n#include <sys/utsname.h>\n'
                    'int main(void) { struct utsname u; uname(&u); printf("%s\\n", u.machine); return 0; }\n')
        subprocess.run([gcc, "-static", "-Os", "-o", src + ".arm", src], check=True)
        arm = layout("arm", [tar_layer([("bin", None), ("bin/hello", open(src + ".arm", "rb").read())])], "arm")
        foreign = context("foreign", f'FROM {arm}\nRUN ["/bin/hello"]\nRUN ["/bin/hello"]\n')
        r = build(foreign, store, "--platform", "linux/arm/v7", "-t", "localhost/arm:1")
        c.ok(r.returncode == 0 and "armv7l" in r.stdout + r.stderr,
             f"a linux/arm/v7 RUN step runs its ARM program under qemu-arm: {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}")
    c.ok(t.leftovers() == [], f"nothing is left behind: {t.leftovers()}")
finally:
    t.cleanup()
c.exit()

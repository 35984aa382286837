#!/usr/bin/python3
"""`berth build` results as other tools and berth read them: --output
type=oci,dest=DIR read by skopeo and unpacked by umoci; a base image from
the store and from an OCI layout (oci:DIR:TAG), its layers reused byte for
byte; COPY --from an image; several platforms as one index, and an index
built FROM an index (each platform from its own base); the built image
run by `berth run`. Usage: build_output_test.py BERTH"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_lib import *  # noqa

need("skopeo", "umoci")
e = Env(sys.argv[1], "berth-build-output-")
c = Checks()


def sh(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(f"   {' '.join(cmd)}: {p.stderr.strip()}")
    return p


try:
    # The base: busybox from scratch, into the store and a layout.
    layout = os.path.join(e.tmp, "layout")
    base = e.context("base", BASE_CONTAINERFILE + 'CMD ["/bin/busybox", "sh"]\n')
    rc, base_digest, err = e.build(base, "-t", "localhost/busybox:1", "--output", f"type=oci,dest={layout}")
    c.ok(rc == 0, "base: built with --output type=oci")
    p = sh("skopeo", "inspect", "--raw", f"oci:{layout}:1")
    c.ok(p.returncode == 0 and json.loads(p.stdout)["config"]["digest"] == e.manifest(base_digest)["config"]["digest"],
         "skopeo reads the layout's manifest")
    c.ok(sh("skopeo", "copy", "-q", f"oci:{layout}:1", f"dir:{e.tmp}/skopeo-dir").returncode == 0,
         "skopeo copies the image out of the layout (every blob verified)")
    p = sh("umoci", "ls", "--layout", layout)
    c.eq(p.stdout.split(), ["1"], "umoci lists the tag")
    bundle = os.path.join(e.tmp, "bundle")
    c.ok(sh("umoci", "unpack", "--image", f"{layout}:1", bundle).returncode == 0, "umoci unpacks it")
    with open(os.path.join(bundle, "rootfs", "bin", "busybox"), "rb") as a, open(BUSYBOX, "rb") as b:
        c.ok(a.read() == b.read(), "the unpacked busybox is the one copied in")

    # On top of it: from the store, and from the layout.
    app = "FROM {}\nCOPY hello /hello\nCOPY --from=localhost/busybox:1 /bin/busybox /copy/busybox\n"
    ctx = e.context("app-store", app.format("localhost/busybox:1"), {"hello": "hi\n"}, busybox=False)
    rc, app_digest, err = e.build(ctx, "-t", "app:1")
    c.ok(rc == 0, "FROM a stored image, COPY --from an image")
    bm, am = e.manifest(base_digest), e.manifest(app_digest) if rc == 0 else {"layers": []}
    c.eq(am["layers"][:1], bm["layers"], "the base layer reused byte for byte")
    c.eq(len(am["layers"]), 3, "one layer a COPY")
    bh, ah = e.config(base_digest)["history"], e.config(app_digest)["history"] if rc == 0 else []
    c.eq(ah[:len(bh)], bh, "the base's history kept")
    c.eq(e.config(app_digest)["config"]["Cmd"], ["/bin/busybox", "sh"], "the base's config kept")
    ctx2 = e.context("app-layout", app.format(f"oci:{layout}:1"), {"hello": "hi\n"}, busybox=False)
    rc, oci_digest, err = e.build(ctx2, "-t", "app:2")
    c.ok(rc == 0, "FROM oci:DIR:TAG")
    c.eq(oci_digest, app_digest, "the same image as from the store")

    # Several platforms: one index naming a manifest each.
    multi = os.path.join(e.tmp, "multi")
    ctx = e.context("multi", "FROM scratch\nARG TARGETARCH\nCOPY hello /hello\nENV ARCH=$TARGETARCH\n", {"hello": "hi\n"},
                    busybox=False)
    rc, index_digest, err = e.build(ctx, "-t", "multi:1", "--platform", "linux/arm/v7,linux/arm64",
                                    "--platform", "linux/amd64", "--output", f"type=oci,dest={multi}")
    c.ok(rc == 0, "three platforms")
    index = e.manifest(index_digest)
    c.eq(index.get("mediaType"), "application/vnd.oci.image.index.v1+json", "the result is an index")
    c.eq([(m["platform"]["architecture"], m["platform"].get("variant")) for m in index.get("manifests", [])],
         [("arm", "v7"), ("arm64", None), ("amd64", None)], "naming each platform")
    for arch, variant in (("arm", "v7"), ("arm64", None)):
        args = ["skopeo", "inspect", "--override-arch", arch] + (["--override-variant", variant] if variant else [])
        p = sh(*args, "--config", f"oci:{multi}:1")
        c.ok(p.returncode == 0 and f"ARCH={arch}" in json.loads(p.stdout)["config"]["Env"],
             f"skopeo picks the {arch} image from the layout's index")

    # A multi-platform base: each platform's build starts from that platform's image of the index.
    ctx = e.context("mbase", "FROM scratch\nARG TARGETARCH\nCOPY hello /hello-$TARGETARCH\n", {"hello": "hi\n"}, busybox=False)
    rc, mbase, err = e.build(ctx, "-t", "localhost/mbase:1", "--platform", "linux/arm64,linux/amd64")
    ctx = e.context("mapp", "FROM localhost/mbase:1\nENV APP=1\n", busybox=False)
    rc2, mapp, err2 = e.build(ctx, "-t", "mapp:1", "--platform", "linux/arm64,linux/amd64")
    if c.ok(rc == 0 and rc2 == 0, "an index FROM an index"):
        base_by = {m["platform"]["architecture"]: e.manifest(m["digest"]) for m in e.manifest(mbase)["manifests"]}
        app_by = {m["platform"]["architecture"]: e.manifest(m["digest"]) for m in e.manifest(mapp)["manifests"]}
        c.ok(all(app_by[a]["layers"] == base_by[a]["layers"] for a in ("arm64", "amd64")),
             "each platform's image has its own platform's base layers")

    # The built image runs.
    policy = os.path.join(e.tmp, "accept.json")
    with open(policy, "w") as f:
        f.write('{"default": [{"type": "insecureAcceptAnything"}]}')
    p = subprocess.run([e.berth, "--root", os.path.join(e.tmp, "state"), "run", "--rm", "--store", e.store, "--policy",
                        policy, "-q", "localhost/app:1", "/bin/busybox", "cat", "/hello"], capture_output=True, text=True)
    c.eq((p.returncode, p.stdout), (0, "hi\n"), "berth run runs the built image")
finally:
    e.close()
c.exit()

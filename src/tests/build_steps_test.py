#!/usr/bin/python3
"""`berth build` with RUN steps (berth's runtime behind build::Runner), on a
busybox base built here: the config and history against `podman build
--format docker` for the same Containerfile; a RUN step taken from the cache
is not run again (its layer holds a random id the step reads from the
kernel: the same digest means it did not run), --no-cache runs it; a deletion becomes a whiteout;
the same digest from a second store at another time (faketime).
Skips (77) where this berth has no RUN runtime. Usage: build_steps_test.py BERTH"""
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_lib import *  # noqa

need("podman")
CF = """FROM scratch
COPY busybox /bin/busybox
ARG V=1
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN echo "v=$V" > /etc/built && mkdir -p /data && touch /data/gone /data/kept
ENV E=2
WORKDIR /data
RUN rm /data/gone
SHELL ["/bin/sh", "-e", "-c"]
RUN test "$E" = 2 && test "$(pwd)" = /data
CMD ["cat", "/etc/built"]
"""
FIELDS = ["Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Labels", "Healthcheck", "StopSignal", "Volumes"]

e = Env(sys.argv[1], "berth-build-steps-")
c = Checks()
# podman's state all in this test's directory: its storage, its run root,
# and libpod's tmp dir (by default shared with every other podman here).
pod = ["podman", "--root", os.path.join(e.tmp, "podroot"), "--runroot", os.path.join(e.tmp, "podrun"),
       "--tmpdir", os.path.join(e.tmp, "podtmp"), "--events-backend", "none", "--storage-driver", "vfs"]
try:
    ctx = e.context("steps", CF)
    rc, digest, err = e.build(ctx, "-t", "steps:1")
    if rc != 0 and "RUN is not available in this build" in err:
        e.close()
        skip("this berth has no RUN runtime")
    c.ok(rc == 0, "a build with RUN steps")
    if rc:
        print(err)
        c.exit()
    cfg = e.config(digest)
    m = e.manifest(digest)
    c.eq(len(m["layers"]), 5, "one layer for the COPY and each RUN")

    # Reproducible with RUN too: another store (nothing cached), another time.
    prefix = ["faketime", "2031-06-15 13:37:00"] if shutil.which("faketime") else []
    rc2, again, err2 = e.build(ctx, "-t", "steps:1", store=os.path.join(e.tmp, "store2"), prefix=prefix)
    c.eq((rc2, again), (0, digest), "the same digest from a second store, at another time")

    # A deletion in a RUN step is a whiteout in its layer.
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(e.blob(m["layers"][3]["digest"])))) as t:
        c.ok("data/.wh.gone" in t.getnames(), "rm in a RUN step: data/.wh.gone in its layer")

    # podman, same file.
    p = subprocess.run(pod + ["build", "--runtime", "runc", "--ulimit", "nproc=4096:4096", "--ulimit", "nofile=1024:1024",
                              "--format", "docker", "-t", "localhost/steps:1", ctx], capture_output=True, text=True)
    if c.ok(p.returncode == 0, "podman build of the same file"):
        p = subprocess.run(pod + ["image", "inspect", "localhost/steps:1"], capture_output=True, text=True)
        c.ok(p.returncode == 0, "podman image inspect") or print(p.stderr)
        insp = json.loads(p.stdout)[0] if p.returncode == 0 else {"Config": {}, "History": []}
        for f in FIELDS:
            want = insp.get(f) if f == "Healthcheck" else insp["Config"].get(f)
            if f == "Labels" and want:
                want = {k: v for k, v in want.items() if k != "io.buildah.version"} or None
            c.eq(cfg["config"].get(f), want, f"config {f} as podman's")
        ph = [(h.get("created_by"), bool(h.get("empty_layer"))) for h in insp["History"]]
        bh = [(h.get("created_by"), bool(h.get("empty_layer"))) for h in cfg["history"]]
        c.eq(len(bh), len(ph), "as many history entries as podman")
        for (bcb, bel), (pcb, pel) in zip(bh, ph):
            if "COPY" in pcb:
                continue
            c.eq((bcb, bel), (pcb, pel), f"history {pcb}")
    else:
        print(p.stderr[-2000:])

    # The cache: a step whose layer holds a random id, new each time it runs.
    stamp = e.context("stamp", "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", "
                      "\"/bin/busybox cat /proc/sys/kernel/random/uuid > /stamp\"]\n")
    rc1, d1, err1 = e.build(stamp, "-t", "stamp:1")
    rc2, d2, err2 = e.build(stamp, "-t", "stamp:1")
    c.ok(rc1 == 0 and rc2 == 0, "two builds of a RUN writing a random id")
    c.eq(d2, d1, "the second build's image is the first's: the RUN step did not run again")
    c.eq(err2.count("Using cache"), 2, "both steps from the cache")
    rc3, d3, err3 = e.build(stamp, "-t", "stamp:1", "--no-cache")
    c.ok(rc3 == 0 and d3 != d1, "--no-cache runs it again (a new id, a new digest)")
finally:
    subprocess.run(pod + ["rmi", "-a", "-f"], capture_output=True)
    e.close()
c.exit()

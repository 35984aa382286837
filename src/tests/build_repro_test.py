#!/usr/bin/python3
"""`berth build` is reproducible by default: the same Containerfile and
context built in two directories, into two stores, with the context files
created in opposite orders and with other times, the second build at
another time of day (faketime), give the same digest. The layers carry no
time past the epoch and no user names; the gzip header no name and no time.
SOURCE_DATE_EPOCH moves the times and so the digest, the same way on both
sides. Usage: build_repro_test.py BERTH"""
import gzip
import io
import os
import shutil
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_lib import *  # noqa

need()
CF = """FROM scratch
COPY busybox /bin/busybox
COPY app/ /app/
ENV MODE=prod
WORKDIR /app
CMD ["/bin/busybox", "sh"]
"""
FILES = [("app/a.txt", "a"), ("app/sub/b.txt", "b"), ("app/sub/deep/c", "c"), ("app/z", "z")]

e = Env(sys.argv[1], "berth-build-repro-")
c = Checks()


def context(name, order, mtime):
    d = e.context(name, CF)
    for path, data in order:
        p = os.path.join(d, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(data)
    for root, dirs, files in os.walk(d):
        for n in dirs + files:
            os.utime(os.path.join(root, n), (mtime, mtime))
    return d


try:
    one = context("one", FILES, 1_600_000_000)
    two = context("elsewhere/two", list(reversed(FILES)), 1_900_000_000)
    store1, store2 = os.path.join(e.tmp, "s1"), os.path.join(e.tmp, "s2")
    rc1, d1, err1 = e.build(one, "-t", "r:1", store=store1)
    c.ok(rc1 == 0, "first build")
    prefix = []
    if shutil.which("faketime"):
        prefix = ["faketime", "2031-06-15 13:37:00"]
    else:
        print("note: no faketime; the second build differs in directory, store, file order and file times only")
    rc2, d2, err2 = e.build(two, "-t", "r:1", store=store2, prefix=prefix)
    c.ok(rc2 == 0, "second build " + ("under faketime" if prefix else ""))
    c.eq(d2, d1, "the same digest from another directory, file order, file times and clock")

    # What makes it so: the layers themselves.
    m = e.manifest(d1, store1)
    for layer in m["layers"]:
        blob = e.blob(layer["digest"], store1)
        c.eq(blob[:10], b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", "gzip header: no name, no time")
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as t:
            members = t.getmembers()
            c.ok(all(x.mtime == 0 for x in members), "every entry's mtime clamped to the epoch (0)")
            c.ok(all(x.uname == "" and x.gname == "" for x in members), "no user or group names")
            names = [x.name.rstrip("/") for x in members]
            c.eq(names, sorted(names), "entries in byte order")

    # SOURCE_DATE_EPOCH: other times, the same on both sides.
    env = dict(os.environ, SOURCE_DATE_EPOCH="1500000000")
    rc3, d3, _ = e.build(one, "-t", "r:2", store=store1, env=env)
    rc4, d4, _ = e.build(two, "-t", "r:2", store=store2, env=env, prefix=prefix)
    c.ok(rc3 == 0 and rc4 == 0, "builds with SOURCE_DATE_EPOCH")
    c.eq(d4, d3, "SOURCE_DATE_EPOCH: the same digest on both sides")
    c.ok(d3 != d1, "SOURCE_DATE_EPOCH changes the digest")
    cfg = e.config(d3, store1)
    c.eq(cfg["created"], "2017-07-14T02:40:00Z", "created is SOURCE_DATE_EPOCH")
    blob = e.blob(e.manifest(d3, store1)["layers"][1]["digest"], store1)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as t:
        c.ok(all(x.mtime == 1_500_000_000 for x in t.getmembers()),
             "mtimes clamped to SOURCE_DATE_EPOCH (the files are newer)")
    # A file older than the epoch keeps its own time (as COPY keeps it).
    rc6, d6, _ = e.build(one, "-t", "r:4", "--timestamp", "1700000000", store=store1)
    blob = e.blob(e.manifest(d6, store1)["layers"][1]["digest"], store1)
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as t:
        c.eq(t.getmember("app/a.txt").mtime, 1_600_000_000, "a file older than the epoch keeps its time")
    rc5, d5, _ = e.build(one, "-t", "r:3", "--timestamp", "1500000000", store=store1)
    c.eq(d5, d3, "--timestamp is SOURCE_DATE_EPOCH")
finally:
    e.close()
c.exit()

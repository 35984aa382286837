#!/usr/bin/python3
"""`berth build` and its context: sources outside the context (a `..`
path, a symlink leading out, one inside a copied directory) and bad
Containerfiles (unknown instruction, missing stage, ARG loop) fail with one
line naming the file and line, and store nothing; the ignore files; ADD of
a local archive; ADD of a URL (a local http server) checked against
--checksum; the cache (an unchanged step reports "Using cache",
--no-cache makes it again). Usage: build_context_test.py BERTH"""
import hashlib
import http.server
import io
import os
import sys
import tarfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_lib import *  # noqa

need()
e = Env(sys.argv[1], "berth-build-context-")
c = Checks()


def stored(store):
    out = []
    for sub in ("refs", "blobs/sha256", "layers"):
        d = os.path.join(store, sub)
        out += [n for n in os.listdir(d) if not n.startswith(".")] if os.path.isdir(d) else []
    return out


def refused(name, containerfile, message, setup=None):
    ctx = e.context(name, containerfile)
    if setup:
        setup(ctx)
    store = os.path.join(e.tmp, "store-" + name)
    rc, out, err = e.build(ctx, "-t", "x:1", store=store)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    c.ok(rc == 1, f"{name}: refused (exit 1)")
    c.eq(last, "berth: " + message, f"{name}: one line naming the place")
    c.eq(stored(store), [], f"{name}: nothing stored")


try:
    with open(os.path.join(e.tmp, "secret"), "w") as f:
        f.write("host secret\n")
    refused("dotdot", "FROM scratch\nCOPY busybox /bin/\nCOPY ../secret /s\n",
            "Containerfile:3: COPY: `../secret` is outside the build context")
    refused("symlink-out", "FROM scratch\nCOPY link /s\n",
            "Containerfile:2: COPY: `link` leads outside the build context",
            lambda ctx: os.symlink("../secret", os.path.join(ctx, "link")))
    refused("symlink-abs", "FROM scratch\nCOPY link /s\n",
            "Containerfile:2: COPY: `link` leads outside the build context",
            lambda ctx: os.symlink(os.path.join(e.tmp, "secret"), os.path.join(ctx, "link")))

    def nested(ctx):
        os.makedirs(os.path.join(ctx, "d"))
        os.symlink("../../secret", os.path.join(ctx, "d", "link"))
    refused("symlink-in-dir", "FROM scratch\nCOPY d /d/\n",
            "Containerfile:2: COPY: `d/link` is a symlink to `../../secret`, outside the build context", nested)
    refused("unknown-instruction", "FROM scratch\nCOPY busybox /\nFORM x\n",
            "Containerfile:3: unknown instruction FORM")
    refused("missing-stage", "FROM scratch AS base\nCOPY --from=builder /x /x\n",
            "Containerfile:2: COPY --from=builder: no stage named `builder` before this line "
            "(an image needs its registry: host/repo:tag)")
    refused("arg-loop", "ARG A=$B\nARG B=${A}\nFROM scratch\n", "Containerfile:1: ARG loop: A -> B -> A")
    refused("missing-base", "FROM scratch\nCOPY busybox /\nFROM nothing-here:1\n",
            "Containerfile:3: FROM nothing-here:1: no such image in the store, and no registry to pull it from")

    # Ignore files: .containerignore first, else .dockerignore.
    ctx = e.context("ignore", "FROM scratch\nCOPY . /app/\n",
                    {"keep.txt": "k", "build/out.o": "o", ".dockerignore": "*.txt\n", ".containerignore": "build\nbusybox\n"})
    rc, d, err = e.build(ctx, "-t", "ignore:1")
    if c.ok(rc == 0, "ignore: build"):
        blob = e.blob(e.manifest(d)["layers"][0]["digest"])
        with tarfile.open(fileobj=io.BytesIO(blob)) as t:
            names = sorted(n.rstrip("/") for n in t.getnames())
        c.eq(names, ["app", "app/.containerignore", "app/.dockerignore", "app/Containerfile", "app/keep.txt"],
             ".containerignore applies (build/ and busybox left out), .dockerignore does not")

    # ADD unpacks a local archive; COPY does not.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b"from the archive\n"
        ti = tarfile.TarInfo("etc/motd")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    ctx = e.context("add", "FROM scratch\nADD files.tar.gz /srv\nCOPY files.tar.gz /copied/\n", {"files.tar.gz": buf.getvalue()})
    rc, d, err = e.build(ctx, "-t", "add:1")
    if c.ok(rc == 0, "add: build"):
        layers = e.manifest(d)["layers"]
        with tarfile.open(fileobj=io.BytesIO(e.blob(layers[0]["digest"]))) as t:
            c.eq(t.extractfile("srv/etc/motd").read(), b"from the archive\n", "ADD unpacked the archive into the destination directory")
        with tarfile.open(fileobj=io.BytesIO(e.blob(layers[1]["digest"]))) as t:
            c.ok("copied/files.tar.gz" in t.getnames(), "COPY kept the archive as a file")

    # ADD of a URL, checked against --checksum.
    served = os.path.join(e.tmp, "served")
    os.makedirs(served)
    payload = b"downloaded\n"
    with open(os.path.join(served, "tool.txt"), "wb") as f:
        f.write(payload)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=served, **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/tool.txt"
    good = "sha256:" + hashlib.sha256(payload).hexdigest()
    try:
        ctx = e.context("url", f"FROM scratch\nADD --checksum={good} {url} /opt/\n", busybox=False)
        rc, d, err = e.build(ctx, "-t", "url:1")
        if c.ok(rc == 0, "ADD URL with the right --checksum"):
            with tarfile.open(fileobj=io.BytesIO(e.blob(e.manifest(d)["layers"][0]["digest"]))) as t:
                m = t.getmember("opt/tool.txt")
                c.eq((t.extractfile(m).read(), m.mode, m.mtime), (payload, 0o600, 0), "the download, 0600, at the epoch")
        bad = "sha256:" + "0" * 64
        refused("url-checksum", f"FROM scratch\nADD --checksum={bad} {url} /opt/\n",
                f"Containerfile:2: ADD: the download of `{url}` is {good}, not the --checksum {bad}")
    finally:
        httpd.shutdown()

    # The cache: a second build reuses every layer; --no-cache makes them again.
    ctx = e.context("cache", "FROM scratch\nCOPY busybox /bin/busybox\nENV A=1\nCOPY Containerfile /\n")
    rc1, d1, err1 = e.build(ctx, "-t", "cache:1")
    rc2, d2, err2 = e.build(ctx, "-t", "cache:1")
    c.ok(rc1 == 0 and rc2 == 0, "cache: two builds")
    c.eq(err1.count("Using cache"), 0, "cache: the first build makes its layers")
    c.eq(err2.count("Using cache"), 2, "cache: the second build makes none (both COPY steps from the cache)")
    c.eq(d2, d1, "cache: the same image")
    with open(os.path.join(ctx, "Containerfile"), "a") as f:
        f.write("# changed\n")
    rc3, d3, err3 = e.build(ctx, "-t", "cache:1")
    c.eq(err3.count("Using cache"), 1, "cache: a changed input makes its step again, the steps before come from the cache")
    rc4, d4, err4 = e.build(ctx, "-t", "cache:1", "--no-cache")
    c.eq(err4.count("Using cache"), 0, "--no-cache: every step made again")
    c.eq(d4, d3, "--no-cache: the same image")
finally:
    e.close()
c.exit()

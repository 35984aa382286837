#!/usr/bin/python3
"""`berth build` and the store it shares with other builds: a build that
fails while another build in the same store succeeds removes only what it
added and nothing else reaches (before, undoing the failed build removed
every blob added since it started: the other build's image lost its
blobs); `berth build prune` removes cached steps and the layers only they
kept, by age and by size, never what a tagged image needs, and waits for
a running build (the store's lock).
Usage: build_store_test.py BERTH BUILD_RUN_STEP"""
import http.server
import json
import os
import platform
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Layout, Setup, busybox_files, context_dir, tar_layer  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import free_port  # noqa: E402

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

t = Setup("berth-build-store-")
c = Checks()


def context(name, containerfile, files=None):
    return context_dir(t.tmp, name, containerfile, files)


def berth(*args, timeout=300):
    return subprocess.run([t.berth_bin, *args], capture_output=True, text=True, timeout=timeout)


def start_build(ctx, store, *opts):
    return subprocess.Popen([t.berth_bin, "build", "--store", store, *opts, ctx], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def missing_blobs(store, ref):
    """The blobs (manifest, config, layers) of the image `ref` that are not in the store, and its layers not unpacked."""
    blob = lambda d: os.path.join(store, "blobs", "sha256", d.split(":")[1])
    refs = berth("image", "inspect", "--store", store, ref)
    if refs.returncode != 0:
        return [f"inspect: {refs.stderr.strip()}"]
    info = json.loads(refs.stdout)
    missing = []
    manifest = info.get("manifest") or info.get("digest")
    if not os.path.exists(blob(manifest)):
        return [manifest]
    doc = json.load(open(blob(manifest)))
    for d in [doc["config"]] + doc["layers"]:
        if not os.path.exists(blob(d["digest"])):
            missing.append(d["digest"])
    for l in info.get("layers", []):
        if not os.path.isdir(os.path.join(store, "layers", l["diffID"].split(":")[1], "rootfs")):
            missing.append("layer " + l["diffID"])
    return missing


def wait_for(cond, what, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    c.ok(False, f"timed out waiting for {what}")
    return False


class Go(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


try:
    lay = Layout(os.path.join(t.tmp, "base"))
    files = busybox_files() + [("bin/wget", ("link", "busybox"))]
    desc, _ = lay.image([tar_layer(files)], ARCH)
    lay.tag(desc, "1")
    base = f"oci:{lay.path}:1"
    store = os.path.join(t.tmp, "store")
    port = free_port()

    # A: imports the base, then waits in its RUN step until the test lets it
    # go (a server on 127.0.0.1, the step has the host's network), and fails.
    failing = context("failing", f"""FROM {base}
RUN i=0; until wget -q -O /dev/null http://127.0.0.1:{port}/; do i=$((i+1)); [ $i -lt 1200 ] || break; sleep 0.05; done; exit 3
""")
    # B: the same base, a COPY; built and tagged while A waits.
    ok = context("ok", f"FROM {base}\nCOPY data /data\n", {"data": b"b's data\n"})
    a = start_build(failing, store)
    wait_for(lambda: any(n.startswith("run-") for _, dirs, _ in os.walk(os.path.join(store, "build-tmp")) for n in dirs),
             "the failing build's RUN step")
    r = berth("build", "--store", store, "-t", "localhost/ok:1", ok)
    c.ok(r.returncode == 0, f"a second build in the same store succeeds meanwhile: {r.stderr.strip()[-400:]}")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Go)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _, err = a.communicate(timeout=120)
    finally:
        srv.shutdown()
    c.ok(a.returncode != 0 and "exit status 3" in err, f"the first build fails at its RUN: {a.returncode} {err.strip()[-300:]}")
    gone = missing_blobs(store, "localhost/ok:1")
    c.ok(gone == [], f"undoing the failed build leaves the other build's image whole: missing {gone}")
    r = berth("image", "fsck", "--check", "--store", store)
    c.ok(r.returncode == 0, f"... and the store is consistent: {r.stdout.strip()[-300:]} {r.stderr.strip()[-300:]}")

    # berth build prune: by age, never a tagged image's layers.
    other = context("other", f"FROM {base}\nCOPY data /other\n", {"data": b"only cached\n"})
    r = berth("build", "--store", store, other)
    c.ok(r.returncode == 0, f"an untagged build: {r.stderr.strip()[-300:]}")
    cache = os.path.join(store, "build-cache")
    entries = sorted(os.listdir(cache))
    r = berth("build", "prune", "--store", store, "--until", "1h")
    c.ok(r.returncode == 0 and sorted(os.listdir(cache)) == entries,
         f"prune --until 1h keeps steps used within the hour: {r.stdout.strip()} {r.stderr.strip()}")
    tagged = {l["digest"] for l in json.loads(berth("image", "inspect", "--store", store, "localhost/ok:1").stdout)["layers"]}
    untagged = [e for e in entries if json.load(open(os.path.join(cache, e)))["digest"] not in tagged]
    old = time.time() - 7200
    for e in untagged:
        os.utime(os.path.join(cache, e), (old, old))
    gone_blobs = [json.load(open(os.path.join(cache, e)))["digest"] for e in untagged]
    r = berth("build", "prune", "--store", store, "--until", "1h")
    left = sorted(os.listdir(cache))
    c.ok(r.returncode == 0 and untagged and not set(untagged) & set(left) and left,
         f"prune --until 1h removes the steps unused for two hours: {untagged} -> {left} {r.stdout.strip()}")
    c.ok(all(not os.path.exists(os.path.join(store, "blobs", "sha256", d.split(":")[1])) for d in gone_blobs),
         f"... and the layer blobs only they kept: {gone_blobs}")
    r = berth("build", "prune", "--store", store)
    c.ok(r.returncode == 0 and os.listdir(cache) == [] and missing_blobs(store, "localhost/ok:1") == [],
         f"prune without a bound removes every cached step, never what a tagged image needs: "
         f"{os.listdir(cache)} {missing_blobs(store, 'localhost/ok:1')} {r.stdout.strip()} {r.stderr.strip()}")

    # A prune waits for a running build (the store's lock): the build's COPY
    # layer, reached only by its cache entry until the tag, survives.
    port2 = free_port()
    waiting = context("waiting", f"""FROM {base}
COPY data /data
RUN i=0; until wget -q -O /dev/null http://127.0.0.1:{port2}/; do i=$((i+1)); [ $i -lt 1200 ] || break; sleep 0.05; done
""", {"data": b"d's data\n"})
    d = start_build(waiting, store, "-t", "localhost/waiting:1")
    wait_for(lambda: any(n.startswith("run-") for _, dirs, _ in os.walk(os.path.join(store, "build-tmp")) for n in dirs),
             "the waiting build's RUN step")
    pr = subprocess.Popen([t.berth_bin, "build", "prune", "--store", store], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port2), Go)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        _, err = d.communicate(timeout=120)
        pout, perr = pr.communicate(timeout=120)
    finally:
        srv.shutdown()
    c.ok(d.returncode == 0 and pr.returncode == 0, f"a build and a prune at once both succeed: {err.strip()[-300:]} {perr.strip()}")
    gone = missing_blobs(store, "localhost/waiting:1")
    c.ok(gone == [], f"... and the build's image is whole: missing {gone}")

    # Alone, a failed build still removes what it added.
    store2 = os.path.join(t.tmp, "store2")
    os.makedirs(store2)
    before = sorted(os.listdir(os.path.join(store2)))
    r = berth("build", "--store", store2, context("fails-alone", f"FROM {base}\nRUN exit 4\n"))
    blobs = os.listdir(os.path.join(store2, "blobs", "sha256")) if os.path.isdir(os.path.join(store2, "blobs", "sha256")) else []
    layers = [n for n in os.listdir(os.path.join(store2, "layers"))] if os.path.isdir(os.path.join(store2, "layers")) else []
    c.ok(r.returncode != 0 and blobs == [] and layers == [],
         f"a failed build alone leaves no blob and no layer: {blobs} {layers}")
finally:
    t.cleanup()
c.exit()

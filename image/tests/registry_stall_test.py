#!/usr/bin/python3
"""Stalled registries: a loopback proxy in front of docker-registry that
drips a body at 2 bytes/s (a manifest, or a layer after its first bytes).
- a dripped manifest: the pull fails with one line naming the stall within
  its deadline (--timeout + 10 s, a bound on a hang, not a speed test),
  stores nothing, and `berth image gc` (which needs the store lock the pull
  holds) is not kept waiting past that bound either;
- a dripped layer with --speed-limit/--speed-time: the same (gc included),
  leaving the partial layer resumable (or nothing), and a later pull from
  the healthy registry resumes it and succeeds.
Usage: registry_stall_test.py BERTH"""
import http.server
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()


class Dripper(http.server.ThreadingHTTPServer):
    """Forwards to `upstream`; GET bodies whose path matches `drip` get
    `fast` bytes at once, then 2 bytes a second until the client hangs up."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass

    def __init__(self, upstream, drip, fast=0):
        self.upstream = upstream
        self.drip = re.compile(drip)
        self.fast = fast
        self.stopping = threading.Event()
        self.dripped = 0
        super().__init__(("127.0.0.1", 0), DripHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def stop(self):
        self.stopping.set()
        self.shutdown()


class DripHandler(ProxyHandler):
    def fwd(self, method):
        s = self.server
        status, body = self.relay_head(method)
        if method == "HEAD":
            return
        if not (s.drip.search(self.path) and status in (200, 206)):
            self.wfile.write(body)
            return
        # The first request gets `fast` bytes at once; a resumed one none.
        off = min(s.fast, len(body)) if status == 200 else 0
        try:
            self.wfile.write(body[:off])
            self.wfile.flush()
            while off < len(body) and not s.stopping.is_set():
                self.wfile.write(body[off:off + 2])
                self.wfile.flush()
                s.dripped += 2
                off += 2
                s.stopping.wait(1)
        except OSError:
            pass
        self.close_connection = True


def image(reg, repo, tag):
    """A two-layer image: a small layer and a 256 KiB one. Returns (small, big) digests."""
    small = tar_layer([("s", None), ("s/f", b"small\n")])
    big = tar_layer([("b.bin", os.urandom(256 << 10))], compress=False)
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [small[1], big[1]]}}).encode()
    layers = []
    for blob, _ in (small, big):
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip" if blob is small[0]
                       else "application/vnd.oci.image.layer.v1.tar", "digest": reg.put_blob(repo, blob), "size": len(blob)})
    man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": reg.put_blob(repo, cfg),
                      "size": len(cfg)},
           "layers": layers}
    reg.put_manifest(repo, tag, json.dumps(man).encode())
    return sha(small[0]), sha(big[0])


def partial_state(root, digest):
    """The persisted offset of a partial download, or None when there is none."""
    p = os.path.join(root, "ingest", digest[7:] + ".state")
    return json.load(open(p))["offset"] if os.path.exists(p) else None


def gc_during(root, bound):
    """Starts `berth image gc` 2 s from now (a pull is running by then); it
    must end within `bound` seconds. Returns (thread, result dict)."""
    result = {}

    def run():
        time.sleep(2)
        t0 = time.monotonic()
        try:
            g = subprocess.run([berth.exe, "--root", root, "image", "gc"], capture_output=True, text=True, timeout=bound)
            result["rc"] = g.returncode
        except subprocess.TimeoutExpired:
            result["rc"] = None
        result["secs"] = round(time.monotonic() - t0, 1)

    os.makedirs(root, exist_ok=True)
    t = threading.Thread(target=run)
    t.start()
    return t, result


def timed_pull(root, ref, *flags, bound):
    """Runs a pull that must end within `bound` seconds; returns (result or None, seconds)."""
    t0 = time.monotonic()
    try:
        r = subprocess.run([berth.exe, "image", "pull", "--quiet", "--insecure-http", "--root", root, "--policy", accept,
                            *flags, ref], capture_output=True, text=True, timeout=bound)
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - t0
    return r, time.monotonic() - t0


berth = Berth(os.path.abspath(sys.argv[1]))
tmp = tempfile.mkdtemp(prefix="berth-stall-")
c = Checks()
reg = Registry(tmp, "plain")
accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
try:
    small, big = image(reg, "s/app", "1")

    # 1. A manifest dripped at 2 bytes/s, only --timeout given (the default
    # speed limit needs longer than that to call it a stall).
    drip = Dripper(reg.port, r"/manifests/")
    root = os.path.join(tmp, "root-manifest")
    os.makedirs(root)
    deadline = 15
    gc, gc_result = gc_during(root, deadline + 10)
    r, secs = timed_pull(root, f"127.0.0.1:{drip.port}/s/app:1", "--timeout", str(deadline), bound=deadline + 10)
    gc.join()
    print(f"dripped manifest: the pull ended after {secs:.1f} s (--timeout {deadline}), "
          f"gc waited {gc_result.get('secs', 0):.1f} s; {drip.dripped} bytes dripped")
    c.ok(r is not None, f"a dripped manifest ends the pull within --timeout + 10 s ({secs:.1f} s)")
    if r is not None:
        lines = r.stderr.strip().splitlines()
        c.ok(r.returncode == 1 and len(lines) == 1 and "stalled" in r.stderr,
             f"one-line error naming the stall: {r.stderr.strip()}")
    c.ok(gc_result.get("rc") == 0, f"gc got the store lock within --timeout + 10 s ({gc_result})")
    c.ok(refs_in(root) == [] and blobs_in(root) == set(), "nothing stored from a dripped manifest")
    drip.stop()

    # 2. A layer dripped after its first 64 KiB, with a speed limit: each
    # attempt stalls after 3 s, the deadline ends the pull.
    drip = Dripper(reg.port, "/blobs/" + big, fast=64 << 10)
    root = os.path.join(tmp, "root-layer")
    gc, gc_result = gc_during(root, 30)
    r, secs = timed_pull(root, f"127.0.0.1:{drip.port}/s/app:1", "--speed-limit", "1k", "--speed-time", "3",
                         "--timeout", "20", "--retry-delay-ms", "100", bound=30)
    gc.join()
    off = partial_state(root, big)
    print(f"dripped layer: the pull ended after {secs:.1f} s (--timeout 20), partial offset {off}, gc {gc_result}")
    c.ok(gc_result.get("rc") == 0, f"gc got the store lock within --timeout + 10 s ({gc_result})")
    c.ok(r is not None, f"a dripped layer ends the pull within --timeout + 10 s ({secs:.1f} s)")
    if r is not None:
        lines = r.stderr.strip().splitlines()
        c.ok(r.returncode == 1 and len(lines) == 1 and "stalled" in r.stderr,
             f"one-line error naming the stall: {r.stderr.strip()}")
    c.ok(refs_in(root) == [] and big[7:] not in blobs_in(root), "no ref, the dripped layer not stored")
    c.ok(ingest_strays(root) == [] and (off is None or off > 0), f"the partial is resumable or absent (offset {off})")
    drip.stop()

    # 3. The healthy registry: the same pull succeeds, resuming the partial.
    t0 = time.monotonic()
    r = subprocess.run([berth.exe, "image", "pull", "--progress=json", "--insecure-http", "--root", root, "--policy",
                        accept, f"{reg.host}/s/app:1"], capture_output=True, text=True, timeout=120)
    resumed = [l for l in r.stderr.splitlines() if big in l and '"resumedFrom"' in l]
    print(f"healthy pull after the stall: {time.monotonic() - t0:.1f} s, exit {r.returncode}")
    c.ok(r.returncode == 0 and big[7:] in blobs_in(root) and refs_in(root) != [],
         "a later pull from a healthy registry succeeds: " + r.stderr.strip()[-300:])
    c.ok(off is None or resumed, f"it resumed the partial layer from byte {off}")
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

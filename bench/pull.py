#!/usr/bin/python3
"""bench/pull.sh's body: see there. Prints times, peak RSS and ratios.

The tools run interleaved (skopeo, umoci, berth, berth --no-unpack, then
again), RUNS times, so load from other processes hits them alike; the best
wall time of each counts (and the median is shown), the worst peak RSS.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "image", "tests"))
from remote_lib import *  # noqa

berth = sys.argv[1]
RUNS = int(os.environ.get("RUNS", "5"))
LINK_RATE = int(os.environ.get("LINK_RATE_MIB", "16")) << 20
tmp = tempfile.mkdtemp(prefix="berth-bench-pull-")
reg = Registry(tmp, "reg")


def timed(argv):
    """(seconds, peak RSS KiB) of argv via GNU time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {r.stderr[-2000:]}")
    e, m = r.stderr.strip().splitlines()[-1].split()
    return float(e), int(m)


def interleaved(fns):
    """Runs each fn(i) once per round, RUNS rounds; per fn: (best s, median s, worst RSS KiB)."""
    results = [[] for _ in fns]
    for i in range(RUNS):
        for k, fn in enumerate(fns):
            results[k].append(fn(i))
    return [(min(r[0] for r in rs), statistics.median(r[0] for r in rs), max(r[1] for r in rs)) for rs in results]


def verdict(ok):
    return "met" if ok else "MISSED"


def served_bytes():
    """Bytes the registry wrote per URI, from its access log."""
    out = []
    for line in open(os.path.join(reg.dir, "registry.log")):
        if "response completed" in line and 'http.request.method=GET' in line:
            uri = re.search(r'http\.request\.uri="([^"]+)"', line)
            n = re.search(r"http\.response\.written=(\d+)", line)
            if uri and n:
                out.append((uri.group(1), int(n.group(1))))
    return out


try:
    lay = Layout(os.path.join(tmp, "layout"))
    rnd = tar_layer([("data/random.bin", os.urandom(30 << 20))], compress=True)
    words = [b"gateway", b"sensor", b"temperature", b"humidity", b"reading", b"modem", b"signal", b"berth"]
    import random
    random.seed(1)
    text = b"\n".join(b" ".join(random.choice(words) for _ in range(12)) for _ in range(140000))
    txt = tar_layer([("data/log.txt", text)], compress=True)
    txt2 = tar_layer([("data/log.txt", text + b"\nversion 2\n")], compress=True)
    bb = busybox_layer()
    d1, _ = lay.image([bb, txt, rnd], "amd64", "1")
    lay.tag(d1, "1")
    d2, _ = lay.image([bb, txt2, rnd], "amd64", "2")
    lay.tag(d2, "2")
    H = reg.host
    total = sum(len(l[0]) for l in (bb, txt, rnd))
    print(f"image: 3 layers, {total / 1e6:.1f} MB compressed")
    for t in ("1", "2"):
        subprocess.run([berth, "image", "push", "--quiet", "--insecure-http", f"oci:{lay.path}:{t}", f"{H}/bench/app:{t}"],
                       check=True, stdout=subprocess.DEVNULL)
    accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
    key = new_key(os.path.join(tmp, "key.pem"))
    py_sign(reg, "bench/app", d1["digest"], f"{H}/bench/app:1", key)
    signed = policy_file(os.path.join(tmp, "signed.json"), os.path.join(tmp, "key.pem.pub"))

    def skopeo(i):
        d = os.path.join(tmp, f"oci{i}")
        return timed(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{H}/bench/app:1", f"oci:{d}:1"])

    def umoci(i):
        return timed(["umoci", "unpack", "--image", os.path.join(tmp, f"oci{i}") + ":1", os.path.join(tmp, f"bundle{i}")])

    def berth_pull(i):
        return timed([berth, "image", "pull", "--quiet", "--insecure-http", "--root", os.path.join(tmp, f"root{i}"),
                      "--policy", signed, f"{H}/bench/app:1"])

    def berth_pull_only(i):
        return timed([berth, "image", "pull", "--quiet", "--insecure-http", "--no-unpack", "--root",
                      os.path.join(tmp, f"rootp{i}"), "--policy", signed, f"{H}/bench/app:1"])

    s, u, b, bp = interleaved([skopeo, umoci, berth_pull, berth_pull_only])
    ref = s[0] + u[0]
    print(f"runs: {RUNS}, interleaved; best wall time (median), worst peak RSS")
    print(f"skopeo copy: {s[0]:.3f} s ({s[1]:.3f}), peak RSS {s[2] / 1024:.1f} MiB")
    print(f"umoci unpack: {u[0]:.3f} s ({u[1]:.3f}), peak RSS {u[2] / 1024:.1f} MiB")
    print(f"berth pull+verify+unpack: {b[0]:.3f} s ({b[1]:.3f}), peak RSS {b[2] / 1024:.1f} MiB")
    print(f"berth pull+verify only (--no-unpack): {bp[0]:.3f} s ({bp[1]:.3f}), peak RSS {bp[2] / 1024:.1f} MiB "
          f"(vs skopeo {bp[0] / s[0]:.2f}x)")
    print(f"unpacking adds {b[0] - bp[0]:.3f} s to the download")
    ratio = b[0] / ref
    print(f"ratio berth / (skopeo + umoci) = {ratio:.2f} (target <= 0.60: {verdict(ratio <= 0.60)}; "
          f"medians {b[1] / (s[1] + u[1]):.2f})")
    print(f"berth peak RSS = {b[2] / 1024:.1f} MiB, {b[2] / s[2]:.2f}x skopeo's (target <= 16 MiB: "
          f"{verdict(b[2] <= 16 * 1024)})")

    # A slower link (a throttling proxy): the one-pass unpack should hide
    # behind the download, so pull+unpack takes about as long as the
    # download alone.
    px = Proxy(reg.port, rate=LINK_RATE)
    # (the signature now names the proxy's host: it replaces the first one)
    py_sign(reg, "bench/app", d1["digest"], f"127.0.0.1:{px.port}/bench/app:1", key)

    def over_link(i, unpack):
        root = os.path.join(tmp, f"rootl{i}{'u' if unpack else ''}")
        r = timed([berth, "image", "pull", "--quiet", "--insecure-http", "--root", root, "--policy", signed,
                   *([] if unpack else ["--no-unpack"]), f"127.0.0.1:{px.port}/bench/app:1"])
        shutil.rmtree(root)
        return r

    link_runs = max(1, RUNS // 2)
    lu, ld = [], []
    for i in range(link_runs):
        lu.append(over_link(i, True)[0])
        ld.append(over_link(i, False)[0])
    px.shutdown()
    print(f"over a {LINK_RATE >> 20} MiB/s link ({link_runs} runs, best): pull+verify+unpack {min(lu):.3f} s, "
          f"pull+verify only {min(ld):.3f} s: unpacking adds {min(lu) - min(ld):+.3f} s")

    # Shared layers: update root0 from :1 to :2.
    before = len(served_bytes())
    subprocess.run([berth, "image", "pull", "--quiet", "--insecure-http", "--root", os.path.join(tmp, "root0"),
                    "--policy", accept, f"{H}/bench/app:2"], check=True, stdout=subprocess.DEVNULL)
    got = served_bytes()[before:]
    blobs = [(u, n) for u, n in got if "/blobs/" in u]
    mans = [(u, n) for u, n in got if "/manifests/" in u]
    want = {d2["digest"]}
    manifest2 = json.loads(open(os.path.join(lay.path, "blobs", "sha256", d2["digest"][7:]), "rb").read())
    new_blobs = {manifest2["config"]["digest"], sha(txt2[0])}
    fetched = {u.rsplit("/", 1)[1] for u, _ in blobs}
    print(f"update :1 -> :2: blobs fetched {sorted(x[:19] for x in fetched)} ({sum(n for _, n in blobs)} bytes), "
          f"manifests {len(mans)} ({sum(n for _, n in mans)} bytes)")
    exact = fetched == new_blobs and len(mans) == 1
    print(f"shared layers: {'exactly the new layer + config + manifest' if exact else 'MISMATCH'}"
          f" (new layer {len(txt2[0])} bytes; target: exactly those: {verdict(exact)})")
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

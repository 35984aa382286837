#!/usr/bin/python3
"""Power-cut safety of `berth image pull` (download, hash, unpack in one pass)
against Debian's docker-registry on 127.0.0.1:

- gc during a pull waits for it (the pull holds the store's shared lock):
  afterwards every blob of the image is there and fsck is clean;
- the pull is killed with SIGKILL BERTH_CRASH_COUNT times (20 in CI, 200 in
  the slow suite): at a random instant of an unthrottled pull (mostly inside
  the streaming unpack), of a rate-limited one (so partial downloads with
  resume state are left and the next round resumes them, unpacking from the
  stored blob), or at a failpoint of the fetch, store and unpack steps.
  After each kill `berth image fsck` finds only temporaries to remove
  (never a corrupted blob, an incomplete layer or a dangling ref) and a
  second fsck is clean;
- finally a pull succeeds and the image is usable: every unpacked layer
  holds exactly the files of its tar and busybox runs from it.
Usage: pull_crash_test.py BERTH"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()
if os.geteuid() != 0:
    print("skipped: needs root (layers are unpacked with their owners)")
    sys.exit(77)

B = os.path.abspath(sys.argv[1])
N = int(os.environ.get("BERTH_CRASH_COUNT", "20"))
# What fsck may find after a kill: temporaries of an interrupted step, all removed.
ALLOWED = ("stale temporary", "partial download without resume state", "resume state without data", "unfinished layer")
FAILPOINTS = ["fetch.persist", "fetch.commit", "store.commit.rename", "store.put.write", "store.put.rename",
              "unpack.stream", "unpack.entry", "unpack.sync", "unpack.rename", "atomic_write.rename"]
# A slow link (a throttling proxy, remote_lib.Proxy): a 1.2 MB layer takes
# ~2 s, past the 1 s interval of the resume state.
RATE = 600 << 10

c = Checks()
tmp = tempfile.mkdtemp(prefix="berth-pull-crash-")
reg = Registry(tmp, "reg")
px = None
try:
    rnd = os.urandom(1200 << 10)
    files = [(f"data/f{i:03}.txt", (f"file {i}\n" * (i + 1)).encode()) for i in range(300)]
    layers = [busybox_layer(), tar_layer([("data", None)] + files), tar_layer([("blob/random.bin", rnd)])]
    lay = Layout(os.path.join(tmp, "layout"))
    d1, _ = lay.image(layers, "amd64", "crash")
    lay.tag(d1, "1")
    subprocess.run([B, "image", "push", "--quiet", "--insecure-http", f"oci:{lay.path}:1", f"{reg.host}/crash/app:1"],
                   check=True, stdout=subprocess.DEVNULL)
    px = Proxy(reg.port)  # every pull goes through it; px.rate throttles blob bodies
    IMG = f"127.0.0.1:{px.port}/crash/app:1"
    key = new_key(os.path.join(tmp, "key.pem"))
    py_sign(reg, "crash/app", d1["digest"], IMG, key)
    policy = policy_file(os.path.join(tmp, "policy.json"), os.path.join(tmp, "key.pem.pub"))
    root = os.path.join(tmp, "root")

    def berth(*args, env=None):
        return subprocess.run([B, "--root", root, "image", *args], capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, **(env or {})))

    def pull_argv(rate=0):
        px.rate = rate
        return [B, "--root", root, "image", "pull", "--quiet", "--insecure-http", "--policy", policy, IMG]

    def blob_names():
        return blobs_in(root)

    def image_blobs():
        m = json.loads(open(os.path.join(lay.path, "blobs", "sha256", d1["digest"][7:]), "rb").read())
        return {d1["digest"][7:], m["config"]["digest"][7:]} | {l["digest"][7:] for l in m["layers"]}

    # ---- gc waits for a running pull (the shared store lock).
    p = subprocess.Popen(pull_argv(RATE), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.time() + 30
    while len(blob_names()) < 2 and p.poll() is None and time.time() < end:
        time.sleep(0.02)  # the config and the first layer are stored, the rest is on its way
    gc = subprocess.Popen([B, "--root", root, "image", "gc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    c.ok(p.poll() is None and gc.poll() is None, "gc started during a pull waits for it")
    c.ok(p.wait(60) == 0, "the pull finishes while gc waits: " + (p.stderr.read() or "").strip())
    c.ok(gc.wait(60) == 0, "gc runs after the pull")
    c.ok(image_blobs() <= blob_names(), "gc removed nothing the pulled image uses")
    r = berth("fsck", "--check")
    c.ok(r.returncode == 0, "fsck is clean after gc raced a pull: " + r.stdout.strip())

    # ---- How long a whole pull takes, unthrottled and throttled.
    def timed_pull(rate=0):
        berth("rm", IMG)
        berth("gc")
        s = time.time()
        r = subprocess.run([a for a in pull_argv(rate) if a != "--quiet"], check=True, capture_output=True, text=True)
        t = time.time() - s
        events = [json.loads(l) for l in r.stderr.splitlines() if l.startswith("{")]
        return t, [e["detail"] for e in events if e["event"] == "unpacked"]

    t_fast, streamed = timed_pull()
    t_fast = max(t_fast, 0.05)
    c.ok(len(streamed) == 3, f"a fresh pull unpacks all 3 layers while they download ({len(streamed)} streamed)")
    t_slow, _ = timed_pull(RATE)
    print(f"one pull: {t_fast:.2f} s unthrottled, {t_slow:.2f} s at {RATE >> 10} KiB/s", flush=True)

    # ---- The kill loop.
    # Failpoint rounds need a build with test hooks (-Dtest_hooks=true);
    # without them every round is a kill -9 round.
    hooks = '"test-hooks"' in subprocess.run([B, "version", "--json"], capture_output=True, text=True).stdout
    if not hooks:
        print("note: built without test hooks: failpoint rounds become kill -9 rounds", flush=True)
    rng = random.Random(os.environ.get("BERTH_CRASH_SEED") or None)
    repaired = completed = resumed = 0
    for i in range(1, N + 1):
        if os.path.exists(os.path.join(root, "refs")) and refs_in(root):
            berth("rm", IMG)  # the previous round finished: start from an empty store
            berth("gc")
        kind = i % 4
        if kind == 0 and hooks:
            fp = f"{rng.choice(FAILPOINTS)}=crash@{rng.randint(1, 3)}"
            r = subprocess.run(pull_argv(RATE if fp.startswith("fetch.persist") else 0), capture_output=True,
                               text=True, timeout=120, env=dict(os.environ, BERTH_FAILPOINTS=fp))
            how = f"failpoint {fp} (exit {r.returncode})"
        else:
            rate = RATE if kind == 1 else 0
            delay = rng.uniform(0, (t_slow if rate else t_fast) * 1.1)
            p = subprocess.Popen(pull_argv(rate), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            p.kill()
            p.wait()
            how = f"SIGKILL after {delay * 1000:.0f} ms{' throttled' if rate else ''}"
        if any(n.endswith(".state") for n in os.listdir(os.path.join(root, "ingest"))):
            resumed += 1
        r = berth("fsck")
        lines = [l for l in r.stdout.splitlines() if not l.startswith("checked ")]
        bad = [l for l in lines if not l.startswith(ALLOWED)]
        if r.returncode != 0 or bad:
            c.ok(False, f"round {i} ({how}): fsck found damage: {r.stdout.strip()} {r.stderr.strip()}")
            break
        if lines:
            repaired += 1
        r = berth("fsck", "--check")
        if r.returncode != 0:
            c.ok(False, f"round {i} ({how}): fsck not clean after repair: {r.stdout.strip()}")
            break
        if refs_in(root):
            completed += 1
    else:
        c.ok(True, f"{N} kills: fsck found only temporaries ({repaired} rounds left some, {resumed} left a "
                   f"resumable partial, {completed} pulls finished before the kill)")

    # ---- A last pull succeeds and the image is usable.
    r = subprocess.run(pull_argv(), capture_output=True, text=True, timeout=120)
    c.ok(r.returncode == 0, "a pull after the kills succeeds: " + r.stderr.strip()[-500:])
    r = berth("fsck", "--check")
    c.ok(r.returncode == 0, "fsck is clean at the end: " + r.stdout.strip())
    c.ok(image_blobs() <= blob_names(), "every blob of the image is stored")

    def layer_root(diff_id):
        return os.path.join(root, "layers", diff_id[7:], "rootfs")

    bb_root = layer_root(layers[0][1])
    same = all(open(os.path.join(layer_root(layers[1][1]), n), "rb").read() == data for n, data in files)
    c.ok(same and len(os.listdir(os.path.join(layer_root(layers[1][1]), "data"))) == len(files),
         "the unpacked text layer holds exactly its 300 files")
    c.ok(open(os.path.join(layer_root(layers[2][1]), "blob/random.bin"), "rb").read() == rnd,
         "the unpacked random layer is byte-identical")
    r = subprocess.run(["chroot", bb_root, "/bin/sh", "-c", "echo usable"], capture_output=True, text=True)
    c.ok(r.returncode == 0 and r.stdout.strip() == "usable", "busybox runs from the unpacked layer: " + r.stderr.strip())
finally:
    if px:
        px.shutdown()
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)
sys.exit(1 if c.failed else 0)

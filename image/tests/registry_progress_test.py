#!/usr/bin/python3
"""How `berth image pull` and `berth run IMAGE` show progress, against
docker-registry on 127.0.0.1:
- stderr not a terminal: JSON lines only;
- -q: nothing on stderr;
- --progress=json on a terminal: JSON lines only;
- a terminal (a real pty): a line per blob updated in place, each layer
  ending "verified, unpacked", no JSON; the same for `berth run IMAGE`
  (which unpacks the layers after its trust check).
Usage: registry_progress_test.py BERTH"""
import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()

ESC = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def on_pty(args, timeout=120):
    """Runs args with stderr on a pty; returns (exit code, what the pty showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the pty's other side is closed
                break
            if not chunk:
                break
            out += chunk
        elif p.poll() is not None:
            break
    os.close(master)
    try:
        rc = p.wait(max(1, end - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    return rc, out.decode(errors="replace")


def all_json(text):
    lines = [l for l in text.replace("\r", "").splitlines() if l.strip()]
    try:
        return bool(lines) and all("event" in json.loads(l) for l in lines)
    except ValueError:
        return False


def final_lines(screen, hexes):
    """The last line the display drew for each short digest."""
    lines = [ESC.sub("", l).strip() for l in re.split(r"[\r\n]", screen)]
    return {h: ([l for l in lines if l.startswith(h)] or [""])[-1] for h in hexes}


def push_image(reg, repo, tag, layers):
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [l[1] for l in layers]}}).encode()
    man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": reg.put_blob(repo, cfg),
                      "size": len(cfg)},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": reg.put_blob(repo, l[0]),
                       "size": len(l[0])} for l in layers]}
    reg.put_manifest(repo, tag, json.dumps(man).encode())
    return [sha(l[0])[7:19] for l in layers]


BERTH = os.path.abspath(sys.argv[1])
tmp = tempfile.mkdtemp(prefix="berth-progress-")
os.chmod(tmp, 0o755)
c = Checks()
reg = Registry(tmp, "registry")
accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
try:
    H = reg.host
    layers = [busybox_layer(), tar_layer([("data", None), ("data/f", os.urandom(300000))])]
    hexes = push_image(reg, "p/app", "1", layers)
    image = f"{H}/p/app:1"

    def pull(root, *flags):
        return [BERTH, "image", "pull", "--root", os.path.join(tmp, root), "--policy", accept, *flags, image]

    r = subprocess.run(pull("root-pipe"), capture_output=True, text=True, timeout=120)
    done = [json.loads(l)["digest"][7:19] for l in r.stderr.splitlines() if '"event":"done"' in l]
    c.ok(r.returncode == 0 and all_json(r.stderr), "stderr not a terminal: JSON lines only")
    c.ok(all(h in done for h in hexes), f"a done event for each layer ({done})")

    r = subprocess.run(pull("root-quiet", "-q"), capture_output=True, text=True, timeout=120)
    c.ok(r.returncode == 0 and r.stderr == "", f"-q: nothing on stderr ({r.stderr[:200]!r})")

    rc, screen = on_pty(pull("root-tty-json", "--progress=json"))
    c.ok(rc == 0 and all_json(screen), f"--progress=json on a terminal: JSON lines only ({screen[:200]!r})")

    rc, screen = on_pty(pull("root-tty"))
    last = final_lines(screen, hexes)
    print("the terminal's last lines:\n  " + "\n  ".join(last.values()))
    c.ok(rc == 0 and '{"event"' not in screen, f"a terminal gets no JSON ({screen[:200]!r})")
    c.ok("\x1b[" in screen, "the lines are updated in place")
    c.ok(re.search(r"\d+(\.\d)? (B|KiB|MiB)/s\s+ETA", screen) is not None, "lines show a rate and an ETA")
    c.ok(all(l.endswith("verified, unpacked") for l in last.values()), "each layer's line ends verified, unpacked")

    if os.geteuid() == 0:
        state, store = os.path.join(tmp, "state"), os.path.join(tmp, "store")
        rc, screen = on_pty([BERTH, "--root", state, "run", "--rm", "--store", store, "--policy", accept, image, "sh", "-c", ":"])
        last = final_lines(screen, hexes)
        c.ok(rc == 0 and '{"event"' not in screen and all(l.endswith("verified, unpacked") for l in last.values()),
             f"berth run IMAGE on a terminal shows the same display (exit {rc}): {list(last.values())} {screen[-300:]!r}")
    else:
        print("skipped: berth run IMAGE needs root")
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

"""Shared helpers of the RUN-step system tests (build_run_*_test.py, run
with /usr/bin/python3 as root): a temporary directory, a real image (an OCI
layout of busybox-static and a layer of files) imported into a berth store
whose unpacked layers are the steps' lower directories, and the test-only
driver build_run_step (src/tests/build_run_step.cpp).

Usage of a test: TEST.py BERTH BUILD_RUN_STEP"""
import glob
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import Checks, Layout, sha, tar_layer  # noqa: E402,F401

APPLETS = ["sh", "cat", "echo", "rm", "mkdir", "id", "ls", "sleep", "test", "touch", "chmod", "pwd", "true"]


def skip(why):
    print(f"SKIP: {why}")
    sys.exit(77)


def busybox_files():
    """The busybox-static layer's entries: /bin/busybox and the applets the tests use."""
    bb = open("/bin/busybox", "rb").read()
    files = [("bin", None), ("bin/busybox", bb)] + [(f"bin/{a}", ("link", "busybox")) for a in APPLETS]
    return files + [("etc", None),
                    ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nbuilder:x:1234:2345::/home/builder:/bin/sh\n"),
                    ("etc/group", b"root:x:0:\nbuilders:x:2345:\n")]


def context_dir(parent, name, containerfile, files=None, mode=None):
    """A build context `parent`/`name` holding the Containerfile and `files` ({name: bytes}, chmod `mode` when given)."""
    d = os.path.join(parent, name)
    os.makedirs(d)
    with open(os.path.join(d, "Containerfile"), "w") as f:
        f.write(containerfile)
    for n, data in (files or {}).items():
        with open(os.path.join(d, n), "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(os.path.join(d, n), mode)
    return d


def tar_of_dir(path):
    """A tar layer (blob, diff_id) of the directory tree at `path`, as it is on disk."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name in sorted(os.listdir(path)):
            t.add(os.path.join(path, name), arcname=name)
    data = raw.getvalue()
    return gzip.compress(data, mtime=0), sha(data)


class Setup:
    """A temporary directory (removed at the end, with anything the runner
    left), the store, and the runner's state directory."""

    def __init__(self, prefix):
        if os.geteuid() != 0:
            skip("needs root")
        if not os.path.exists("/bin/busybox") or b"statically linked" not in subprocess.run(
                ["file", "-L", "/bin/busybox"], capture_output=True).stdout:
            skip("needs busybox-static")
        self.berth_bin = os.path.abspath(sys.argv[1])
        self.step_bin = os.path.abspath(sys.argv[2])
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.tmp, 0o755)
        self.store = os.path.join(self.tmp, "store")
        self.state = os.path.join(self.tmp, "state")
        self.n = 0
        self.pids = set()  # of the runners started: their containers' ids start with b<pid>-

    def image(self, layers, name="base"):
        """Imports an image of `layers` ([(blob, diff_id)]) into the store;
        returns its unpacked layer directories, topmost first."""
        lay = Layout(os.path.join(self.tmp, f"layout-{name}"))
        desc, _ = lay.image(layers)
        lay.tag(desc, "1")
        r = subprocess.run([self.berth_bin, "image", "import", "--store", self.store, lay.path, f"localhost/{name}:1"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"FAIL: import: {r.stderr.strip()}")
        dirs = [os.path.join(self.store, "layers", d[1][len("sha256:"):], "rootfs") for d in layers]
        for d in dirs:
            if not os.path.isdir(d):
                raise SystemExit(f"FAIL: import did not unpack {d}")
        return list(reversed(dirs))

    def dirs(self):
        """A fresh (upper, work) pair."""
        self.n += 1
        upper, work = (os.path.join(self.tmp, f"{k}{self.n}") for k in ("upper", "work"))
        os.makedirs(upper)
        os.makedirs(work)
        return upper, work

    def step(self, lowers, argv, *opts, upper=None, work=None, out=None, wait=True):
        """Runs one step; returns (CompletedProcess or Popen, upper, out file)."""
        if upper is None:
            upper, work = self.dirs()
        out = out or os.path.join(self.tmp, f"out{self.n}")
        cmd = [self.step_bin, "--state", self.state, "--out", out, "--upper", upper, "--work", work]
        for d in lowers:
            cmd += ["--lower", d]
        cmd += [*opts, "--", *argv]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.pids.add(str(p.pid))
        if not wait:
            return p, upper, out
        stdout, stderr = p.communicate(timeout=60)
        return subprocess.CompletedProcess(cmd, p.returncode, stdout, stderr), upper, out

    def leftovers(self):
        """What the runner's containers left: state entries, bundles, cgroups."""
        left = []
        for sub in ("run", "bundles"):
            d = os.path.join(self.state, sub)
            left += [f"{sub}/{n}" for n in (os.listdir(d) if os.path.isdir(d) else [])]
        # Cgroups are the host's: only those of this test's runners (ids b<pid>-...).
        cgroups = glob.glob("/sys/fs/cgroup/*/berth-build/b*") + glob.glob("/sys/fs/cgroup/berth-build/b*")
        return left + [c for c in cgroups if os.path.basename(c).split("-")[0][1:] in self.pids]

    def sweep(self):
        """Makes a runner and nothing else: it removes what killed ones left."""
        return subprocess.run([self.step_bin, "--state", self.state, "--sweep"], capture_output=True, text=True)

    def cleanup(self):
        self.sweep()
        shutil.rmtree(self.tmp, ignore_errors=True)


def tree(path):
    """Everything under `path`: {relative path: kind}, kind 'dir', 'link', 'chr', or the file's bytes."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = "link"
            elif os.path.isdir(p):
                out[rel] = "dir"
            elif (st.st_mode & 0o170000) == 0o020000:
                out[rel] = "chr"
            else:
                out[rel] = open(p, "rb").read()
    return out


def overlay_xattrs(path):
    """Paths under `path` that still carry an overlay attribute."""
    bad = []
    for root, dirs, files in os.walk(path):
        for n in [""] + dirs + files:
            p = os.path.join(root, n) if n else root
            try:
                names = os.listxattr(p, follow_symlinks=False)
            except OSError:
                continue
            if any(".overlay." in a for a in names):
                bad.append(os.path.relpath(p, path))
    return bad

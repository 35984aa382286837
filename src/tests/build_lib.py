"""Shared helpers of the `berth build` system tests (src/tests/build_*_test.py,
run with /usr/bin/python3): a temporary directory with a store, contexts
holding a static busybox, the built image's manifest and config read back
from the store, and a check list that exits 1 on any failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

BUSYBOX = "/bin/busybox"


def skip(why):
    print("SKIP: " + why)
    sys.exit(77)


def need(*programs):
    for p in programs:
        if not shutil.which(p):
            skip(f"needs {p}")
    if os.geteuid() != 0:
        skip("needs root (layers are unpacked into the store)")


class Checks:
    def __init__(self):
        self.failed = 0

    def ok(self, cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        if not cond:
            self.failed += 1
        return cond

    def eq(self, got, want, what):
        if not self.ok(got == want, what):
            print(f"   got:  {got!r}\n   want: {want!r}")

    def exit(self):
        if self.failed:
            print(f"{self.failed} failed")
            sys.exit(1)
        print("all passed")


class Env:
    """A temporary directory with a store; removed by close()."""

    def __init__(self, berth, prefix):
        self.berth = os.path.abspath(berth)
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.store = os.path.join(self.tmp, "store")

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def context(self, name, containerfile, files=None, busybox=True):
        """A context directory: the Containerfile, `files` (path -> bytes or str), busybox."""
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        if busybox:
            shutil.copy(BUSYBOX, os.path.join(d, "busybox"))
        for path, data in (files or {}).items():
            p = os.path.join(d, path)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
        with open(os.path.join(d, "Containerfile"), "w") as f:
            f.write(containerfile)
        return d

    def build(self, ctx, *args, store=None, env=None, prefix=()):
        """Runs berth build; returns (exit code, stdout, stderr)."""
        cmd = list(prefix) + [self.berth, "build", "--store", store or self.store, *args, ctx]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        return p.returncode, p.stdout.strip(), p.stderr

    def blob(self, digest, store=None):
        with open(os.path.join(store or self.store, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
            return f.read()

    def manifest(self, digest, store=None):
        return json.loads(self.blob(digest, store))

    def config(self, manifest_digest, store=None):
        m = self.manifest(manifest_digest, store)
        return json.loads(self.blob(m["config"]["digest"], store))

    def refs(self, store=None):
        d = os.path.join(store or self.store, "refs")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []


BASE_CONTAINERFILE = """FROM scratch
COPY busybox /bin/busybox
"""

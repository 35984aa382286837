"""Helpers of the fleet repository tests (run with /usr/bin/python3).

- Nginx: Debian's nginx serving a `berth fleet` repository's metadata/ and
  targets/ on 127.0.0.1, started from a config in a temporary directory (as
  docs/fleet.md's static-host example does).
- Clients: berth's own TUF client (`berth tuf`) and tuf-js's
  (fleet_repo_tufjs.mjs), each keeping its own metadata directory, so a
  test walks one repository through init, releases, rotations, delegations
  and refreshes and asks both clients the same questions.
- sign_role: signs TUF metadata outside berth (python3-cryptography), for
  tests that play a team signing what berth's controller would refuse.
"""
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

NGINX = "/usr/sbin/nginx"
TUFJS_DIR = os.environ.get("BERTH_TUFJS_DIR", os.path.expanduser("~/.cache/berth-tufjs"))
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "image", "tests"))
from remote_lib import free_port  # noqa: E402


IMAGE = "localhost:5000/app@sha256:" + "a" * 64  # the image every test manifest names


def manifest(path, version):
    """Writes an update manifest of VERSION to PATH; returns its sha256 (hex)."""
    doc = {"version": version, "name": f"app {version}", "containers": [{"name": "app", "image": IMAGE}]}
    data = (json.dumps(doc, indent=2) + "\n").encode()
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def test_args(doc, prefix):
    """(berth command, client kind, a fresh 0755 work directory) from
    `TEST BERTH berth|tuf-js`; None (after printing doc) on bad arguments."""
    if len(sys.argv) != 3 or sys.argv[2] not in ("berth", "tuf-js"):
        print(doc)
        return None
    berth = shlex.split(os.environ.get("MESON_EXE_WRAPPER", "")) + [sys.argv[1]]
    work = tempfile.mkdtemp(prefix=prefix)
    os.chmod(work, 0o755)
    return berth, sys.argv[2], work


def fleet_runner(berth):
    """fleet(*args, ok=True, err=None): runs `berth fleet ARGS`; with ok=False
    it must fail, and with err its stderr must be one line containing err."""
    def fleet(*args, ok=True, err=None):
        r = subprocess.run(berth + ["fleet", *args], capture_output=True, text=True)
        if ok and r.returncode != 0:
            raise AssertionError(f"berth fleet {' '.join(args)}: {r.stderr.strip()}")
        if not ok:
            if r.returncode == 0:
                raise AssertionError(f"berth fleet {' '.join(args)} succeeded")
            if err is not None and (err not in r.stderr or r.stderr.count("\n") != 1):
                raise AssertionError(f"berth fleet {' '.join(args)}: expected one line with {err!r}, got {r.stderr!r}")
        return r
    return fleet


class Skip(Exception):
    """A test needs something this machine lacks: exit 77 with the reason."""


class Nginx:
    """nginx serving ROOT/metadata and ROOT/targets (and nothing else of ROOT) on 127.0.0.1."""

    def __init__(self, root):
        if not os.access(NGINX, os.X_OK):
            raise Skip(f"{NGINX} is missing (apt-get install nginx)")
        self.root = os.path.abspath(root)
        self.dir = tempfile.mkdtemp(prefix="berth-nginx-")
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.port = None

    def config(self, port):
        return f"""daemon off;
master_process off;
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {self.dir}/access.log;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /metadata/ {{ root {self.root}; add_header Cache-Control "no-cache"; }}
        location /targets/ {{ root {self.root}; expires max; }}
        location / {{ return 404; }}
    }}
}}
"""

    def start(self):
        for _ in range(5):
            port = free_port()
            conf = os.path.join(self.dir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(self.config(port))
            self.proc = subprocess.Popen([NGINX, "-p", self.dir, "-c", conf, "-e", os.path.join(self.dir, "error.log")],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            end = time.time() + 10
            while time.time() < end and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    self.port = port
                    return self
                except OSError:
                    time.sleep(0.05)
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
            self.stop()
            if "Address already in use" not in err:
                raise RuntimeError(f"nginx did not start: {err}")
        raise RuntimeError("nginx found no free port")

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class BerthClient:
    """`berth tuf` with its own metadata and target directories."""

    name = "berth"

    def __init__(self, berth, work, root_json):
        self.berth = berth
        self.meta = os.path.join(work, "berth-meta")
        self.targets = os.path.join(work, "berth-targets")
        subprocess.run(berth + ["tuf", "--metadata-dir", self.meta, "init", root_json], check=True)

    def update(self, url, names):
        """{"refresh": "ok"|error line, name: sha256|"missing"|"error: ..."}"""
        base = ["tuf", "--metadata-dir", self.meta, "--metadata-url", url + "/metadata"]
        r = subprocess.run(self.berth + base + ["refresh"], capture_output=True, text=True)
        out = {"refresh": "ok" if r.returncode == 0 else r.stderr.strip()}
        if r.returncode != 0:
            return out
        for n in names:
            d = subprocess.run(self.berth + base + ["--target-name", n, "--target-dir", self.targets,
                                                    "--target-base-url", url + "/targets", "download"],
                               capture_output=True, text=True)
            if d.returncode == 0:
                out[n] = sha256_file(os.path.join(self.targets, urllib.parse.quote(n, safe="")))
            elif "not found in the repository" in d.stderr:
                out[n] = "missing"
            else:
                out[n] = "error: " + d.stderr.strip()
        return out


class TufjsClient:
    """tuf-js's Updater (fleet_repo_tufjs.mjs) with its own directories."""

    name = "tuf-js"

    def __init__(self, work, root_json):
        if not shutil.which("node"):
            raise Skip("node is not installed")
        if not os.path.isdir(os.path.join(TUFJS_DIR, "node_modules", "tuf-js")):
            raise Skip(f"tuf-js is not installed in {TUFJS_DIR} (npm install --prefix {TUFJS_DIR} tuf-js@5 @tufjs/models)")
        self.meta = os.path.join(work, "tufjs-meta")
        self.targets = os.path.join(work, "tufjs-targets")
        os.makedirs(self.meta)
        os.makedirs(self.targets)
        shutil.copy(root_json, os.path.join(self.meta, "root.json"))

    def update(self, url, names):
        r = subprocess.run(["node", os.path.join(HERE, "fleet_repo_tufjs.mjs"), self.meta, url + "/metadata", self.targets,
                            url + "/targets"] + names, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"fleet_repo_tufjs.mjs failed: {r.stderr}")
        return json.loads(r.stdout)


def client(kind, berth, work, root_json):
    return BerthClient(berth, work, root_json) if kind == "berth" else TufjsClient(work, root_json)


def canonical(obj):
    """TUF's canonical JSON (the OLPC dialect): sorted keys, no spaces,
    strings escaping only `"` and `\\`, integers only; UTF-8."""
    def enc(o):
        if isinstance(o, dict):
            return "{" + ",".join(enc(k) + ":" + enc(o[k]) for k in sorted(o)) + "}"
        if isinstance(o, list):
            return "[" + ",".join(enc(v) for v in o) + "]"
        if isinstance(o, str):
            return '"' + o.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if o is True or o is False or o is None:
            return json.dumps(o)
        if isinstance(o, int):
            return str(o)
        raise ValueError(f"no canonical form for {o!r}")
    return enc(obj).encode()


def keyid(keytype, scheme, public):
    return hashlib.sha256(canonical({"keytype": keytype, "keyval": {"public": public}, "scheme": scheme})).hexdigest()


def sign_role(signed, pem_paths):
    """The envelope of `signed`, signed by the ECDSA P-256 private keys in `pem_paths`."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = canonical(signed)
    sigs = []
    for p in pem_paths:
        with open(p, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        sigs.append({"keyid": keyid("ecdsa", "ecdsa-sha2-nistp256", pub),
                     "sig": key.sign(data, ec.ECDSA(hashes.SHA256())).hex()})
    return {"signatures": sigs, "signed": signed}


def meta_entry(version, data):
    return {"version": version, "length": len(data), "hashes": {"sha256": hashlib.sha256(data).hexdigest()}}

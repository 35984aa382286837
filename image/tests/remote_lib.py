"""Shared helpers of berth's registry system tests (run with /usr/bin/python3).

Real components only: Debian's docker-registry started on 127.0.0.1, images
built here from busybox-static into OCI layout directories, and an
independent implementation of cosign simple signing (python3-cryptography)
to sign and verify against berth.
"""
import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGANN = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10, host="127.0.0.1"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """docker-registry on 127.0.0.1 (or another local address: `addr`) with storage in a temp dir."""

    def __init__(self, tmp, name, extra="", tls=None, addr="127.0.0.1"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.host = f"{addr}:{self.port}"
        tls_yaml = f"\n  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}" if tls else ""
        cfg = f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {self.dir}/data
  delete:
    enabled: true
http:
  addr: {self.host}
  secret: berth-test{tls_yaml}
{extra}
"""
        with open(os.path.join(self.dir, "config.yml"), "w") as f:
            f.write(cfg)
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", os.path.join(self.dir, "config.yml")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, host=addr)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    # plain-http client for the independent signer/verifier
    def url(self, path):
        return f"http://{self.host}{path}"

    def get(self, path, accept=None):
        req = urllib.request.Request(self.url(path))
        if accept:
            req.add_header("Accept", accept)
        with urllib.request.urlopen(req) as r:
            return r.read(), r.headers

    def put_blob(self, repo, data):
        d = sha(data)
        req = urllib.request.Request(self.url(f"/v2/{repo}/blobs/uploads/"), method="POST", data=b"")
        with urllib.request.urlopen(req) as r:
            loc = r.headers["Location"]
        if loc.startswith("/"):
            loc = self.url(loc)
        sep = "&" if "?" in loc else "?"
        req = urllib.request.Request(f"{loc}{sep}digest={d}", method="PUT", data=data,
                                     headers={"Content-Type": "application/octet-stream"})
        urllib.request.urlopen(req).read()
        return d

    def put_manifest(self, repo, ref, body, mt=OCI_MANIFEST):
        req = urllib.request.Request(self.url(f"/v2/{repo}/manifests/{ref}"), method="PUT", data=body,
                                     headers={"Content-Type": mt})
        urllib.request.urlopen(req).read()

    def manifest_digest(self, repo, ref):
        req = urllib.request.Request(self.url(f"/v2/{repo}/manifests/{ref}"), method="HEAD",
                                     headers={"Accept": OCI_MANIFEST + "," + OCI_INDEX})
        with urllib.request.urlopen(req) as r:
            return r.headers["Docker-Content-Digest"]


# ---------------------------------------------------------------- a slow, flaky link

# A loopback proxy in front of a Registry: blob bodies at `rate` bytes/s
# (on average, from the start of each body) through small socket buffers, transfers of the digests in `drop_only`
# cut at random offsets (`drops` times). (libcurl 7.88's own rate limit,
# behind `--limit-rate`, lets the first megabytes of a transfer through at
# full speed, too many for a test image.)
BLOB_RE = re.compile(r"/v2/.+/blobs/(sha256:[0-9a-f]{64})")


class Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up are the point of this test

    def __init__(self, upstream, drops=0, rate=0):
        self.upstream = upstream
        self.rate = rate  # bytes/s of blob bodies; 0: unthrottled
        self.drop_only = set()  # digests whose transfers are dropped
        self.drops_left = drops
        self.drops_done = 0
        self.served = {}
        self.ranges = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def count(self, digest, n):
        with self.lock:
            self.served[digest] = self.served.get(digest, 0) + n


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.fwd("GET")

    def do_HEAD(self):
        self.fwd("HEAD")

    def relay_head(self, method):
        """Asks upstream, sends its status and headers; returns (status, body) for the caller to send."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        up.request(method, self.path, headers=hdrs)
        resp = up.getresponse()
        body = resp.read() if method == "GET" else b""
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", resp.getheader("Content-Length", "0") if method == "HEAD" else str(len(body)))
        self.end_headers()
        return resp.status, body

    def fwd(self, method):
        s = self.server
        status, body = self.relay_head(method)
        if method == "HEAD":
            return
        m = BLOB_RE.search(self.path)
        if m and status in (200, 206):
            with s.lock:
                s.ranges.append((m.group(1), self.headers.get("Range")))
            cut = len(body)
            if s.drops_left > 0 and len(body) > 1 and m.group(1) in s.drop_only:
                with s.lock:
                    s.drops_left -= 1
                    s.drops_done += 1
                cut = random.randint(1, len(body) - 1)
            off = 0
            start = time.monotonic()
            try:
                while off < cut:
                    n = min(16384, cut - off)
                    self.wfile.write(body[off:off + n])
                    self.wfile.flush()
                    s.count(m.group(1), n)
                    off += n
                    if s.rate:  # paced against the clock, so a late wake-up is made up, not lost
                        ahead = start + off / s.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
            except OSError:
                return
            if cut < len(body):
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)


# ---------------------------------------------------------------- images

def tar_layer(files, compress=True):
    """files: list of (path, bytes|None for dir|('link', target)). Returns (blob, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, content in files:
            ti = tarfile.TarInfo(path)
            ti.mtime = 1700000000
            if content is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
            elif isinstance(content, tuple):
                ti.type = tarfile.SYMTYPE
                ti.linkname = content[1]
                t.addfile(ti)
            else:
                ti.size = len(content)
                ti.mode = 0o755
                t.addfile(ti, io.BytesIO(content))
    tar = raw.getvalue()
    blob = gzip.compress(tar, compresslevel=1, mtime=0) if compress else tar
    return blob, sha(tar)


def busybox_layer():
    bb = open("/bin/busybox", "rb").read()
    return tar_layer([("bin", None), ("bin/busybox", bb), ("bin/sh", ("link", "busybox")),
                      ("etc", None), ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")])


class Layout:
    """An OCI image layout directory built from layers."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        self.index = {"schemaVersion": 2, "manifests": []}

    def blob(self, data):
        d = sha(data)
        with open(os.path.join(self.path, "blobs", "sha256", d[7:]), "wb") as f:
            f.write(data)
        return {"digest": d, "size": len(data)}

    def image(self, layers, arch="amd64", marker=""):
        """layers: [(blob, diff_id)]; returns (manifest descriptor, manifest bytes)."""
        cfg = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": ["/bin/sh"], "Labels": {"m": marker}},
                          "rootfs": {"type": "layers", "diff_ids": [l[1] for l in layers]}}).encode()
        m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **self.blob(cfg)),
             "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **self.blob(l[0])) for l in layers]}
        body = json.dumps(m).encode()
        desc = dict(mediaType=OCI_MANIFEST, **self.blob(body))
        desc["platform"] = {"architecture": arch, "os": "linux"}
        return desc, body

    def tag(self, desc, tag):
        d = dict(desc)
        d["annotations"] = {"org.opencontainers.image.ref.name": tag}
        self.index["manifests"].append(d)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump(self.index, f)

    def multiarch(self, descs):
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}).encode()
        return dict(mediaType=OCI_INDEX, **self.blob(body)), body


def multiarch_layout(path, text=b"hello multi-arch\n", tag="v1"):
    """A layout holding a linux amd64 + arm64 index under `tag`; returns (layout, amd, arm, index) descriptors."""
    lay = Layout(path)
    layers = [busybox_layer(), tar_layer([("app", None), ("app/hello.txt", text)])]
    amd, _ = lay.image(layers, "amd64", tag)
    arm, _ = lay.image(layers, "arm64", tag)
    idx, _ = lay.multiarch([amd, arm])
    lay.tag(idx, tag)
    return lay, amd, arm, idx


# ---------------------------------------------------------------- signatures (independent implementation)

def new_key(path):
    k = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:
        f.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()))
    with open(path + ".pub", "wb") as f:
        f.write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return k


def py_sign(reg, repo, manifest_digest, docker_ref, key, payload_digest=None, corrupt=False):
    """Writes a cosign simple-signing signature the way cosign/containers-image do."""
    payload = json.dumps({"critical": {"identity": {"docker-reference": docker_ref},
                                       "image": {"docker-manifest-digest": payload_digest or manifest_digest},
                                       "type": "cosign container image signature"},
                          "optional": {"creator": "python-test"}}, separators=(",", ":")).encode()
    sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    b64 = base64.b64encode(sig).decode()
    if corrupt:
        raw = bytearray(sig)
        raw[len(raw) // 2] ^= 0x01
        b64 = base64.b64encode(bytes(raw)).decode()
    pd = reg.put_blob(repo, payload)
    cfg = json.dumps({"architecture": "", "os": "", "config": {}, "rootfs": {"type": "layers", "diff_ids": [pd]}},
                     separators=(",", ":")).encode()
    cd = reg.put_blob(repo, cfg)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": len(cfg)},
         "layers": [{"mediaType": SIMPLE, "digest": pd, "size": len(payload), "annotations": {SIGANN: b64}}]}
    reg.put_manifest(repo, "sha256-" + manifest_digest[7:] + ".sig", json.dumps(m).encode())


def py_verify(reg, repo, manifest_digest, docker_ref, pubkey_pem):
    """Independent verifier: True when some signature is valid for digest and reference."""
    from cryptography.exceptions import InvalidSignature
    pub = serialization.load_pem_public_key(pubkey_pem)
    body, _ = reg.get(f"/v2/{repo}/manifests/sha256-{manifest_digest[7:]}.sig", OCI_MANIFEST)
    m = json.loads(body)
    for layer in m["layers"]:
        if layer["mediaType"] != SIMPLE:
            continue
        payload, _ = reg.get(f"/v2/{repo}/blobs/{layer['digest']}")
        assert sha(payload) == layer["digest"]
        try:
            pub.verify(base64.b64decode(layer["annotations"][SIGANN]), payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        p = json.loads(payload)
        c = p["critical"]
        if (c["type"] == "cosign container image signature" and c["image"]["docker-manifest-digest"] == manifest_digest
                and c["identity"]["docker-reference"] == docker_ref):
            return True
    return False


def policy_file(path, key_pub=None, accept=False):
    if accept:
        p = {"default": [{"type": "insecureAcceptAnything"}]}
    else:
        p = {"default": [{"type": "reject"}],
             "transports": {"docker": {"": [{"type": "sigstoreSigned", "keyPath": key_pub}]}}}
    with open(path, "w") as f:
        json.dump(p, f)
    return path


# ---------------------------------------------------------------- berth

class Berth:
    def __init__(self, exe):
        self.exe = exe

    def run(self, *args, check=None, timeout=120):
        r = subprocess.run([self.exe, "image", *args], capture_output=True, text=True, timeout=timeout)
        if check is True and r.returncode != 0:
            raise AssertionError(f"berth image {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        if check is False and r.returncode == 0:
            raise AssertionError(f"berth image {' '.join(args)} unexpectedly succeeded: {r.stderr}")
        return r


def refs_in(root):
    d = os.path.join(root, "refs")
    if not os.path.isdir(d):
        return []
    return [n for n in os.listdir(d) if not n.startswith(".")]


def blobs_in(root):
    d = os.path.join(root, "blobs", "sha256")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def require_registry():
    """Exits 77 (skipped) when docker-registry is missing."""
    if not shutil.which("docker-registry"):
        print("skipped: docker-registry is not installed")
        sys.exit(77)


def ingest_strays(root):
    """Partial files in ingest/ without a resume state (not resumable)."""
    d = os.path.join(root, "ingest")
    if not os.path.isdir(d):
        return []
    names = set(os.listdir(d))
    return [n for n in names if re.fullmatch(r"[0-9a-f]{64}", n) and n + ".state" not in names
            and os.path.getsize(os.path.join(d, n)) > 0]


class RunSetup:
    """What a `berth run` system test starts from (root and docker-registry
    required, else exit 77): the binary, a temporary directory (0755, for
    the containers' users) with its state and store paths, a repository
    name unique to the run, and the checks."""

    def __init__(self, prefix):
        if os.geteuid() != 0:
            print("skipped: needs root")
            sys.exit(77)
        require_registry()
        self.berth_bin = os.path.abspath(sys.argv[1])
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.tmp, 0o755)
        self.tag = os.path.basename(self.tmp).replace(prefix, "").lower().replace("_", "")
        self.state, self.store = os.path.join(self.tmp, "state"), os.path.join(self.tmp, "store")

    def berth(self, *args, timeout=120):
        return subprocess.run([self.berth_bin, "--root", self.state, *args], capture_output=True, text=True,
                              timeout=timeout)


def cleanup_run(tmp, reg, berth, state):
    """The end of a `berth run` test: the registry (if still up) stopped,
    the containers a failed check left deleted, `tmp` removed."""
    if reg:
        reg.stop()
    for id_ in os.listdir(state) if os.path.isdir(state) else []:
        berth("delete", "-f", id_)
    shutil.rmtree(tmp, ignore_errors=True)


class Checks:
    def __init__(self):
        self.failed = 0

    def exit(self):
        """Exits 1 naming the count when a check failed, else says so."""
        if self.failed:
            print(f"{self.failed} failed")
            sys.exit(1)
        print("all passed")

    def ok(self, cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        if not cond:
            self.failed += 1

#!/usr/bin/python3
"""Resume and lying registries:
- a loopback proxy in front of docker-registry drops blob transfers at random
  offsets: the pull completes and re-fetches <= 64 KiB per drop;
- kill -9 of a rate-limited pull mid-blob: the next pull resumes from the
  persisted offset (the bytes fetched twice are printed);
- a python registry that lies (wrong bytes, wrong size, endless body, 200
  instead of 206, wrong media type): one-line error, exit 1, blob not
  stored, and no partial that is not resumable; with the one-pass unpack
  (wrong bytes, a valid layer swapped for another, a hostile layer) also no
  layer and no temporary layer directory.
Usage: registry_resume_test.py BERTH"""
import http.client
import http.server
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()

# ------------------------------------------------------------------ lying registry

class Liar(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass

    def __init__(self):
        self.images = {}  # repo -> (manifest bytes, {digest: bytes}, mode, manifest content-type)
        self.hits = {}
        self.objects = {}
        self.obj_auth = []
        super().__init__(("127.0.0.1", 0), LiarHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class LiarHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_HEAD(self):
        self.handle_req(head=True)

    def do_GET(self):
        self.handle_req(head=False)

    def drop_half(self, data):
        """A 200 announcing all of `data` that sends half and drops the connection."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def reply(self, status, body, ctype="application/octet-stream", extra=(), length=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if length is not False:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in extra:
            self.send_header(k, v)
        if length is False:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except OSError:
                pass

    def handle_req(self, head):
        if self.path.startswith("/obj/"):  # "object storage": another host, must not see the registry's credentials
            self.server.obj_auth.append(self.headers.get("Authorization"))
            data = self.server.objects[self.path[5:]]
            return self.reply(200, data, head=head)
        if "/redirect/" in self.path and self.headers.get("Authorization") != "Basic " + base64.b64encode(b"u:p").decode():
            return self.reply(401, b"{}", "application/json", [("WWW-Authenticate", 'Basic realm="liar"')], head=head)
        if self.path == "/v2/":
            return self.reply(200, b"{}", "application/json", head=head)
        m = re.match(r"/v2/(.+)/(manifests|blobs)/(.+)$", self.path)
        if not m or m.group(1) not in self.server.images:
            return self.reply(404, b"{}", "application/json", head=head)
        repo, kind, ref = m.groups()
        man, blobs, mode, ctype = self.server.images[repo]
        if kind == "manifests":
            return self.reply(200, man, ctype, [("Docker-Content-Digest", sha(man))], head=head)
        data = blobs.get(ref)
        if data is None:
            return self.reply(404, b"{}", "application/json", head=head)
        key = (repo, ref)
        hit = self.server.hits.get(key, 0)
        self.server.hits[key] = hit + 1
        layer = len(data) > 1000
        if mode == "redirect":
            self.server.objects[ref] = data
            return self.reply(307, b"", extra=[("Location", f"http://localhost:{self.server.port}/obj/{ref}")], head=head)
        if not layer or mode == "ok":
            return self.reply(200, data, head=head)
        if mode == "wrongbytes":
            bad = bytearray(data)
            bad[len(bad) // 2] ^= 0xff
            return self.reply(200, bytes(bad), head=head)
        if mode == "swapped":  # another valid layer of the same size: unpacks fine, wrong digest
            return self.reply(200, same_size_layer(len(data)), head=head)
        if mode == "wrongsize":
            return self.reply(200, data[:-100], head=head)
        if mode == "endless":
            self.reply(200, b"", length=False, head=True)
            try:
                self.wfile.write(data)
                for _ in range(64):
                    self.wfile.write(os.urandom(16384))
            except OSError:
                pass
            return
        if mode == "range200":
            if hit == 0:  # drop mid-body, so that the next attempt asks for a Range
                return self.drop_half(data)
            return self.reply(200, data, head=head)  # ignores Range
        if mode == "badrange":
            if hit == 0:
                return self.drop_half(data)
            return self.reply(206, data[10:], extra=[("Content-Range", f"bytes 10-{len(data)-1}/{len(data)}")], head=head)
        return self.reply(500, b"", head=head)


def same_size_layer(size):
    """Another valid gzip layer of exactly `size` bytes: a smaller random
    file's tar, deflated, padded to the size with a comment in the gzip
    header (FCOMMENT), which every gzip reader skips."""
    tar, _ = tar_layer([("data.bin", os.urandom(size - 12000))], compress=False)
    z = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = z.compress(tar) + z.flush()
    trailer = struct.pack("<II", zlib.crc32(tar), len(tar) & 0xffffffff)
    pad = size - (10 + 1 + len(body) + len(trailer))
    assert pad >= 0, f"a {size}-byte layer: the deflated stand-in is {len(body)} bytes"
    header = b"\x1f\x8b\x08\x10" + struct.pack("<I", 0) + b"\x00\xff"  # FCOMMENT, no time, unknown OS
    return header + b"x" * pad + b"\x00" + body + trailer


def make_image(layer_media="application/vnd.oci.image.layer.v1.tar+gzip", size=300000, files=None):
    layer, diff = tar_layer(files or [("data.bin", os.urandom(size))], compress=True)
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(cfg), "size": len(cfg)},
                      "layers": [{"mediaType": layer_media, "digest": sha(layer), "size": len(layer)}]}).encode()
    return man, {sha(cfg): cfg, sha(layer): layer}, sha(layer)


def layers_in(root):
    """Unpacked layers and temporary layer directories."""
    d = os.path.join(root, "layers")
    return os.listdir(d) if os.path.isdir(d) else []


def saved_offset(state):
    """The offset of a resume state file, 0 while there is none (it is replaced by rename, never half written)."""
    try:
        return json.load(open(state))["offset"]
    except (OSError, ValueError, KeyError):
        return 0


berth = Berth(os.path.abspath(sys.argv[1]))
tmp = tempfile.mkdtemp(prefix="berth-resume-")
c = Checks()
reg = Registry(tmp, "plain")
accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
try:
    lay = Layout(os.path.join(tmp, "layout"))
    big = tar_layer([("big.bin", os.urandom(6 << 20))], compress=False)
    desc, _ = lay.image([busybox_layer(), big], "amd64", "big")
    lay.tag(desc, "big")
    H = reg.host
    berth.run("push", "--quiet", "--insecure-http", f"oci:{lay.path}:big", f"{H}/r/big:1", check=True)
    big_digest, big_size = sha(big[0]), len(big[0])

    # 1. random drops through the proxy
    px = Proxy(reg.port, drops=6)
    px.drop_only = {big_digest}
    root = os.path.join(tmp, "root-drops")
    r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--retry-delay-ms", "20", "--retries", "5",
                  "--root", root, "--policy", accept, f"127.0.0.1:{px.port}/r/big:1")
    c.ok(r.returncode == 0, "pull through a dropping proxy completes: " + r.stderr.strip()[-300:])
    served = px.served.get(big_digest, 0)
    drops = sum(1 for d, _ in px.ranges if d == big_digest) - 1
    refetched = served - big_size
    print(f"drops: {drops} on the big blob ({px.drops_done} in all), served {served} bytes for a {big_size}-byte blob, "
          f"re-fetched {refetched} bytes")
    c.ok(big_digest[7:] in blobs_in(root), "big blob stored")
    c.ok(drops == 6, f"the proxy dropped the big blob's transfer {drops} times")
    c.ok(refetched <= 65536 * drops, f"re-fetched {refetched} <= 64 KiB x {drops} drops")
    c.ok(all(rg is None or rg.startswith("bytes=") for _, rg in px.ranges), "retries asked for Range")
    px.shutdown()

    # 2. kill -9 mid-blob, then resume
    px = Proxy(reg.port, rate=1 << 20)  # the "link": 1 MiB/s, with small socket buffers
    root = os.path.join(tmp, "root-kill")
    ref = f"127.0.0.1:{px.port}/r/big:1"
    p = subprocess.Popen([berth.exe, "image", "pull", "--quiet", "--no-unpack", "--insecure-http", "--limit-rate", "2M",
                          "--root", root, "--policy", accept, ref], stderr=subprocess.PIPE)
    # Killed as soon as a resume state with some progress is on disk (polled,
    # with a deadline), as a power cut would come at any moment.
    state = os.path.join(root, "ingest", big_digest[7:] + ".state")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None and saved_offset(state) == 0:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    first = px.served.get(big_digest, 0)
    c.ok(os.path.exists(state), "kill -9 left a resume state")
    off = json.load(open(state))["offset"] if os.path.exists(state) else 0
    px.rate = 0
    r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--root", root, "--policy", accept, ref)
    c.ok(r.returncode == 0, "pull after kill -9 completes: " + r.stderr.strip()[-300:])
    total = px.served.get(big_digest, 0)
    ranges = [rg for d, rg in px.ranges if d == big_digest]
    print(f"kill -9: first run was served {first} bytes, persisted offset {off}, second run asked {ranges[-1]}, "
          f"fetched twice: {total - big_size} bytes (blob {big_size})")
    c.ok(off > 0 and ranges[-1] == f"bytes={off}-", "second pull resumed from the persisted offset")
    c.ok(first - off <= (1 << 20) + (256 << 10), f"fetched twice {first - off} <= 1 s of link + buffers (state saved every second)")
    c.ok(big_digest[7:] in blobs_in(root), "blob stored after resume")
    c.ok(not os.path.exists(state), "resume state removed after commit")
    px.shutdown()

    # 3. lying registries
    liar = Liar()
    cases = [("wrongbytes", "digest", None), ("wrongsize", "announced", None), ("endless", "more than", None),
             ("range200", "expected 206", None), ("badrange", "asked for bytes", None),
             ("wrongmedia", "media type", "text/html"), ("wrongctype", "declares", None)]
    for mode, expect, media in cases:
        man, blobs, layer = make_image(media or "application/vnd.oci.image.layer.v1.tar+gzip")
        ctype = "application/vnd.docker.distribution.manifest.v2+json" if mode == "wrongctype" else OCI_MANIFEST
        liar.images[f"lie/{mode}"] = (man, blobs, mode, ctype)
        root = os.path.join(tmp, "root-" + mode)
        r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--retries", "2", "--retry-delay-ms", "10",
                      "--root", root, "--policy", accept, f"127.0.0.1:{liar.port}/lie/{mode}:1", timeout=60)
        lines = r.stderr.strip().splitlines()
        c.ok(r.returncode == 1 and len(lines) == 1 and expect in r.stderr, f"{mode}: one-line error: {r.stderr.strip()}")
        c.ok(layer[7:] not in blobs_in(root) and refs_in(root) == [], f"{mode}: blob not stored, no ref")
        c.ok(ingest_strays(root) == [], f"{mode}: no partial without a resume state")
    # The same with the one-pass unpack: the layer is extracted while it
    # downloads, into a temporary directory that a digest mismatch discards.
    # A hostile layer (served with its right digest) is refused as before.
    outside = os.path.join(tmp, "escaped")
    streamed = [("swapped", "digest", None), ("wrongbytes", "digest", None),
                ("hostile", "..", [("data", None), ("data/../../../../../../.." + outside, b"evil")])]
    for mode, expect, files in streamed:
        man, blobs, layer = make_image(files=files)
        liar.images[f"lie/{mode}-unpack"] = (man, blobs, "ok" if mode == "hostile" else mode, OCI_MANIFEST)
        root = os.path.join(tmp, "root-unpack-" + mode)
        r = berth.run("pull", "--quiet", "--insecure-http", "--retries", "2", "--retry-delay-ms", "10",
                      "--root", root, "--policy", accept, f"127.0.0.1:{liar.port}/lie/{mode}-unpack:1", timeout=60)
        lines = r.stderr.strip().splitlines()
        c.ok(r.returncode == 1 and len(lines) == 1 and expect in r.stderr,
             f"{mode}, unpacking: one-line error: {r.stderr.strip()}")
        # (the hostile blob itself is right: whether it was stored depends on
        # whether its download ended before the unpacker refused it)
        stored = layer[7:] in blobs_in(root)
        c.ok((not stored or mode == "hostile") and refs_in(root) == [], f"{mode}, unpacking: blob stored only when right, no ref")
        c.ok(layers_in(root) == [] and ingest_strays(root) == [] and not os.path.exists(outside),
             f"{mode}, unpacking: no layer, no temporary, nothing outside: {layers_in(root)}")
    # 4. blob GETs redirected to another host: followed, without the Authorization header
    man, blobs, layer = make_image()
    liar.images["lie/redirect"] = (man, blobs, "redirect", OCI_MANIFEST)
    with open(os.path.join(tmp, "liar-creds.json"), "w") as f:
        json.dump({"auths": {f"127.0.0.1:{liar.port}": {"auth": base64.b64encode(b"u:p").decode()}}}, f)
    root = os.path.join(tmp, "root-redirect")
    r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--creds", os.path.join(tmp, "liar-creds.json"),
                  "--root", root, "--policy", accept, f"127.0.0.1:{liar.port}/lie/redirect:1")
    c.ok(r.returncode == 0 and layer[7:] in blobs_in(root), "redirected blob GETs followed: " + r.stderr.strip())
    c.ok(len(liar.obj_auth) == 2 and all(a is None for a in liar.obj_auth),
         f"no Authorization sent to the redirect target ({liar.obj_auth})")
    liar.shutdown()
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

#!/usr/bin/python3
"""Authentication and TLS against Debian's docker-registry:
- TLS with a CA made here by the openssl CLI, htpasswd (bcrypt) basic auth,
  credentials from a docker config.json; --ca, --pin (right and wrong);
- docker's token auth: docker-registry configured with `auth: token:` and a
  loopback token realm (python) that checks basic credentials and issues
  ES256 JWTs (x5c chain trusted by the registry's rootcertbundle).
Usage: registry_auth_test.py BERTH"""
import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

for tool in ("docker-registry", "openssl", "htpasswd"):
    if not shutil.which(tool):
        print(f"skipped: {tool} is not installed (apache2-utils provides htpasswd)")
        sys.exit(77)

berth = Berth(os.path.abspath(sys.argv[1]))
tmp = tempfile.mkdtemp(prefix="berth-auth-")
c = Checks()
regs = []


def sh(*args):
    subprocess.run(args, check=True, capture_output=True)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, key, cert_der, user, password):
        self.key, self.cert_der, self.user, self.password = key, cert_der, user, password
        self.requests = []
        super().__init__(("127.0.0.1", 0), TokenHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TokenHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        s = self.server
        q = urllib.parse.urlparse(self.path)
        params = urllib.parse.parse_qs(q.query)
        s.requests.append(params)
        auth = self.headers.get("Authorization", "")
        want = "Basic " + base64.b64encode(f"{s.user}:{s.password}".encode()).decode()
        if auth != want:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        access = []
        for scope in params.get("scope", []):
            for one in scope.split(" "):
                typ, name, actions = one.split(":")
                access.append({"type": typ, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(s.cert_der).decode()]}
        claims = {"iss": "berth-test-issuer", "sub": s.user, "aud": params.get("service", [""])[0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        r, s_ = decode_dss_signature(s.key.sign(signing, ec.ECDSA(hashes.SHA256())))
        jwt = signing.decode() + "." + b64url(r.to_bytes(32, "big") + s_.to_bytes(32, "big"))
        body = json.dumps({"token": jwt, "expires_in": 300}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


try:
    accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
    lay = Layout(os.path.join(tmp, "layout"))
    desc, _ = lay.image([busybox_layer()], "amd64", "auth")
    lay.tag(desc, "t")
    creds = os.path.join(tmp, "config.json")

    # ---- TLS + htpasswd
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
       "-subj", "/CN=berth test CA", "-keyout", f"{tmp}/ca.key", "-out", f"{tmp}/ca.crt")
    sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
       "-keyout", f"{tmp}/srv.key", "-out", f"{tmp}/srv.csr")
    with open(f"{tmp}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    sh("openssl", "x509", "-req", "-in", f"{tmp}/srv.csr", "-CA", f"{tmp}/ca.crt", "-CAkey", f"{tmp}/ca.key",
       "-CAcreateserial", "-days", "2", "-extfile", f"{tmp}/ext.cnf", "-out", f"{tmp}/srv.crt")
    pin = subprocess.run(f"openssl x509 -in {tmp}/srv.crt -pubkey -noout | openssl pkey -pubin -outform der | "
                         f"openssl dgst -sha256 -binary | base64", shell=True, capture_output=True, text=True, check=True).stdout.strip()
    with open(f"{tmp}/htpasswd", "w") as f:
        f.write(subprocess.run(["htpasswd", "-Bbn", "alice", "wonderland"], capture_output=True, text=True, check=True).stdout)
    tls = Registry(tmp, "tls", extra=f"auth:\n  htpasswd:\n    realm: berth-test\n    path: {tmp}/htpasswd",
                   tls=(f"{tmp}/srv.crt", f"{tmp}/srv.key"))
    regs.append(tls)
    H = tls.host
    with open(creds, "w") as f:
        json.dump({"auths": {H: {"auth": base64.b64encode(b"alice:wonderland").decode()}}}, f)
    with open(f"{tmp}/bad.json", "w") as f:
        json.dump({"auths": {H: {"auth": base64.b64encode(b"alice:wrong").decode()}}}, f)

    r = berth.run("push", "--quiet", "--ca", f"{tmp}/ca.crt", "--creds", creds, f"oci:{lay.path}:t", f"{H}/auth/app:1")
    c.ok(r.returncode == 0, "push over TLS with htpasswd credentials: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--ca", f"{tmp}/ca.crt", "--creds", creds, "--root", f"{tmp}/r1",
                  "--policy", accept, f"{H}/auth/app:1")
    c.ok(r.returncode == 0 and r.stdout.strip() == desc["digest"], "pull over TLS with basic auth: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--ca", f"{tmp}/ca.crt", "--root", f"{tmp}/r2", "--policy", accept,
                  f"{H}/auth/app:1")
    c.ok(r.returncode == 1 and "credentials" in r.stderr, "no credentials: refused: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--ca", f"{tmp}/ca.crt", "--creds", f"{tmp}/bad.json", "--root",
                  f"{tmp}/r3", "--policy", accept, f"{H}/auth/app:1")
    c.ok(r.returncode == 1 and "401" in r.stderr, "wrong password: refused: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--creds", creds, "--root", f"{tmp}/r4", "--policy", accept,
                  f"{H}/auth/app:1")
    c.ok(r.returncode == 1, "unknown CA: refused: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--ca", f"{tmp}/ca.crt", "--pin", f"sha256//{pin}", "--creds", creds,
                  "--root", f"{tmp}/r5", "--policy", accept, f"{H}/auth/app:1")
    c.ok(r.returncode == 0, "right pin: accepted: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--ca", f"{tmp}/ca.crt", "--pin",
                  "sha256//" + base64.b64encode(b"\0" * 32).decode(), "--creds", creds, "--root", f"{tmp}/r6",
                  "--policy", accept, f"{H}/auth/app:1")
    c.ok(r.returncode == 1 and "pinned" in r.stderr.lower(), "wrong pin: refused: " + r.stderr.strip())
    c.ok(refs_in(f"{tmp}/r6") == [] and refs_in(f"{tmp}/r2") == [], "refused pulls stored no ref")

    # ---- token auth
    tkey = ec.generate_private_key(ec.SECP256R1())
    import datetime
    from cryptography.x509.oid import NameOID
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth token issuer")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(tkey.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(tkey, hashes.SHA256()))
    with open(f"{tmp}/token.crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    ts = TokenServer(tkey, cert.public_bytes(serialization.Encoding.DER), "bob", "builder")
    tok = Registry(tmp, "token", extra=f"""auth:
  token:
    realm: http://127.0.0.1:{ts.port}/token
    service: berth-test
    issuer: berth-test-issuer
    rootcertbundle: {tmp}/token.crt""")
    regs.append(tok)
    T = tok.host
    with open(f"{tmp}/tcreds.json", "w") as f:
        json.dump({"auths": {T: {"username": "bob", "password": "builder"}}}, f)
    r = berth.run("push", "--quiet", "--insecure-http", "--creds", f"{tmp}/tcreds.json", f"oci:{lay.path}:t", f"{T}/tok/app:1")
    c.ok(r.returncode == 0, "push with Bearer token auth: " + r.stderr.strip())
    scopes = [s for q in ts.requests for s in q.get("scope", [])]
    c.ok(any("repository:tok/app:pull,push" in s for s in scopes), f"token requested for the push scope ({scopes[:3]})")
    r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--creds", f"{tmp}/tcreds.json", "--root",
                  f"{tmp}/t1", "--policy", accept, f"{T}/tok/app:1")
    c.ok(r.returncode == 0 and r.stdout.strip() == desc["digest"], "pull with Bearer token auth: " + r.stderr.strip())
    r = berth.run("push", "--quiet", "--insecure-http", "--creds", f"{tmp}/tcreds.json", "--mount-from", "tok/app",
                  f"oci:{lay.path}:t", f"{T}/tok/copy:1")
    c.ok(r.returncode == 0, "cross-repository push under token auth: " + r.stderr.strip())
    r = berth.run("pull", "--quiet", "--no-unpack", "--insecure-http", "--root", f"{tmp}/t2", "--policy", accept,
                  f"{T}/tok/app:1")
    c.ok(r.returncode == 1 and "denied" in r.stderr, "token realm refuses anonymous: " + r.stderr.strip())
    ts.shutdown()
finally:
    for r_ in regs:
        r_.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

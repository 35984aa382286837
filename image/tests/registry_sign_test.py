#!/usr/bin/python3
"""berth image push/pull/sign/verify against Debian's docker-registry:
a multi-arch index pushed by berth (and one by skopeo), signatures in both
directions against the independent python signer/verifier, and every
refusal case (other key, other digest, other repository, re-tagged image,
corrupted signature) leaving no ref behind. Usage: registry_sign_test.py BERTH"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()

berth = Berth(os.path.abspath(sys.argv[1]))
tmp = tempfile.mkdtemp(prefix="berth-regsign-")
c = Checks()
reg = Registry(tmp, "plain")
try:
    lay = Layout(os.path.join(tmp, "layout"))
    bb = busybox_layer()
    app = tar_layer([("app", None), ("app/hello.txt", b"hello 1.0\n")])
    amd, _ = lay.image([bb, app], "amd64", "v1")
    arm, _ = lay.image([bb, app], "arm64", "v1")
    idx, _ = lay.multiarch([amd, arm])
    lay.tag(idx, "v1")
    single, _ = lay.image([bb, tar_layer([("app", None), ("app/hello.txt", b"other\n")])], "amd64", "other")
    lay.tag(single, "other")

    key1 = new_key(os.path.join(tmp, "key1.pem"))
    new_key(os.path.join(tmp, "key2.pem"))
    key3 = new_key(os.path.join(tmp, "key3.pem"))
    pol1 = policy_file(os.path.join(tmp, "pol1.json"), os.path.join(tmp, "key1.pem.pub"))
    pol2 = policy_file(os.path.join(tmp, "pol2.json"), os.path.join(tmp, "key2.pem.pub"))
    H = reg.host

    # Push: berth, without --insecure-http (loopback falls back to http as docker does).
    r = berth.run("push", "--quiet", f"oci:{lay.path}:v1", f"{H}/test/app:v1", check=True)
    c.ok(r.stdout.strip() == idx["digest"], "push of a multi-arch index prints its digest")
    berth.run("push", "--quiet", "--chunk-size", "300k", f"oci:{lay.path}:other", f"{H}/test/other:1", check=True)
    c.ok(reg.manifest_digest("test/other", "1") == single["digest"], "chunked push stored the manifest")
    r = berth.run("push", "--mount-from", "test/app", f"oci:{lay.path}:v1", f"{H}/test/mounted:v1", check=True)
    c.ok('"mounted"' in r.stderr or "mounted:" in r.stderr, "cross-repository mount used for blobs already in test/app")
    c.ok(", 0 uploaded" not in r.stderr or "mounted" in r.stderr, "mount: " + r.stderr.strip().splitlines()[-1])

    # Unsigned: refused by the policy, nothing stored as a ref.
    root = os.path.join(tmp, "root-unsigned")
    r = berth.run("pull", "--quiet", "--root", root, "--policy", pol1, f"{H}/test/app:v1", check=False)
    c.ok("not signed" in r.stderr and len(r.stderr.strip().splitlines()) == 1, "unsigned image refused in one line: " + r.stderr.strip())
    c.ok(refs_in(root) == [] and len(blobs_in(root)) == 0, "refused pull stored no ref and no blob (policy before fetch)")
    # No policy and no trusted keys: the device default refuses.
    r = berth.run("pull", "--quiet", "--root", os.path.join(tmp, "root-default"), f"{H}/test/app:v1", check=False)
    c.ok("rejected" in r.stderr, "device default policy rejects: " + r.stderr.strip())

    # Python signs the index; berth verifies and pulls (both platforms).
    py_sign(reg, "test/app", idx["digest"], f"{H}/test/app:v1", key1)
    root = os.path.join(tmp, "root-ok")
    r = berth.run("pull", "--quiet", "--root", root, "--policy", pol1, "--platform", "linux/amd64", f"{H}/test/app:v1")
    c.ok(r.returncode == 0 and r.stdout.strip() == amd["digest"], "python-signed image pulls (amd64 manifest selected): " + r.stderr.strip()[-300:])
    c.ok(len(refs_in(root)) == 1, "pull set one ref")
    r = berth.run("pull", "--quiet", "--root", root, "--policy", pol1, "--platform", "linux/arm64", f"{H}/test/app:v1")
    c.ok(r.returncode == 0 and r.stdout.strip() == arm["digest"], "arm64 platform selected from the index")
    r = berth.run("verify", "--policy", pol1, f"{H}/test/app:v1")
    c.ok(r.returncode == 0 and "verified" in r.stdout, "berth image verify accepts the python signature")
    # Trusted keys under <root>/trust are the device default.
    root_t = os.path.join(tmp, "root-trust")
    os.makedirs(os.path.join(root_t, "trust"))
    shutil.copy(os.path.join(tmp, "key1.pem.pub"), os.path.join(root_t, "trust", "fleet.pub"))
    r = berth.run("pull", "--quiet", "--root", root_t, "--no-unpack", f"{H}/test/app:v1")
    c.ok(r.returncode == 0, "device default with a key in <root>/trust accepts a signed image: " + r.stderr.strip())

    # berth signs; the independent python verifier accepts it.
    r = berth.run("sign", "--key", os.path.join(tmp, "key2.pem"), f"{H}/test/other:1")
    c.ok(r.returncode == 0, "berth image sign: " + r.stderr.strip())
    c.ok(py_verify(reg, "test/other", single["digest"], f"{H}/test/other:1", open(os.path.join(tmp, "key2.pem.pub"), "rb").read()),
         "python verifier accepts berth's signature")
    c.ok(not py_verify(reg, "test/other", single["digest"], f"{H}/test/other:1", open(os.path.join(tmp, "key1.pem.pub"), "rb").read()),
         "python verifier refuses it under another key")
    r = berth.run("pull", "--quiet", "--root", os.path.join(tmp, "root-b"), "--policy", pol2, f"{H}/test/other:1")
    c.ok(r.returncode == 0, "berth pulls its own signature: " + r.stderr.strip())
    # A second signature is appended, not replacing the first.
    berth.run("sign", "--key", os.path.join(tmp, "key1.pem"), f"{H}/test/other:1", check=True)
    c.ok(py_verify(reg, "test/other", single["digest"], f"{H}/test/other:1", open(os.path.join(tmp, "key2.pem.pub"), "rb").read()),
         "signing again keeps the earlier signature")

    # Refusals: each in a fresh repository, signed "wrongly" by python.
    def refused(repo, tag, what, sign, policy=pol1, pull_tag=None):
        berth.run("push", "--quiet", f"oci:{lay.path}:other", f"{H}/{repo}:{tag}", check=True)
        d = reg.manifest_digest(repo, tag)
        sign(d)
        root = os.path.join(tmp, "root-" + repo.replace("/", "-"))
        r = berth.run("pull", "--quiet", "--root", root, "--policy", policy, f"{H}/{repo}:{pull_tag or tag}")
        lines = r.stderr.strip().splitlines()
        c.ok(r.returncode == 1 and len(lines) == 1, f"{what}: refused in one line: {r.stderr.strip()}")
        c.ok(refs_in(root) == [] and not os.path.isdir(os.path.join(root, "layers")) or
             refs_in(root) == [] and os.listdir(os.path.join(root, "layers")) == [], f"{what}: no ref, nothing unpacked")
        return r

    refused("neg/otherkey", "1", "signature by another key",
            lambda d: py_sign(reg, "neg/otherkey", d, f"{H}/neg/otherkey:1", key3))
    refused("neg/otherdigest", "1", "signature made for another digest",
            lambda d: py_sign(reg, "neg/otherdigest", d, f"{H}/neg/otherdigest:1", key1, payload_digest=idx["digest"]))
    refused("neg/otherrepo", "1", "payload naming another repository",
            lambda d: py_sign(reg, "neg/otherrepo", d, f"{H}/test/other:1", key1))
    refused("neg/retag", "1", "re-tagged image (signed as :1, pulled as :2)",
            lambda d: (py_sign(reg, "neg/retag", d, f"{H}/neg/retag:1", key1),
                       berth.run("push", "--quiet", f"oci:{lay.path}:other", f"{H}/neg/retag:2", check=True)),
            pull_tag="2")
    refused("neg/corrupt", "1", "corrupted signature",
            lambda d: py_sign(reg, "neg/corrupt", d, f"{H}/neg/corrupt:1", key1, corrupt=True))

    # skopeo as a second independent pusher: berth pulls what it wrote.
    if shutil.which("skopeo"):
        r = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{lay.path}:other",
                            f"docker://{H}/skopeo/other:1"], capture_output=True, text=True)
        if r.returncode == 0:
            r = berth.run("pull", "--quiet", "--root", os.path.join(tmp, "root-skopeo"), "--policy",
                          policy_file(os.path.join(tmp, "accept.json"), accept=True), f"{H}/skopeo/other:1")
            c.ok(r.returncode == 0, "image pushed by skopeo pulls: " + r.stderr.strip())
        else:
            print("note: skopeo copy failed: " + r.stderr.strip())
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

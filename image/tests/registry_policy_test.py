#!/usr/bin/python3
"""The trust policy and multi-arch signatures against real upstream tools:
docker-registry on 127.0.0.1, skopeo as containers/image's verifier.

- `berth image sign` of a multi-arch index signs the index and each platform
  manifest, so `skopeo copy` of every platform passes a policy requiring the
  key (an index-only signature does not, which is what skopeo checks);
- scopes naming one image by digest or tag, and wildcard host scopes, apply
  to `berth image pull`;
- a policy with a key berth does not implement (rekorPublicKeyPath) is
  refused with an error naming it, instead of being silently weaker.

Usage: registry_policy_test.py BERTH"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from remote_lib import *  # noqa

require_registry()
berth, c = Berth(os.path.abspath(sys.argv[1])), Checks()
tmp = tempfile.mkdtemp(prefix="berth-regpolicy-")
reg = Registry(tmp, "plain")


def write_json(name, obj):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def signed_by_key(reg, repo, digest, identity, pub):
    """py_verify, and False when `digest` has no signatures at all."""
    try:
        return py_verify(reg, repo, digest, identity, open(pub, "rb").read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def pull(policy, image, root_name):
    root = os.path.join(tmp, root_name)
    return berth.run("pull", "--quiet", "--no-unpack", "--root", root, "--policy", policy, image), root


try:
    lay, amd, arm, idx = multiarch_layout(os.path.join(tmp, "layout"))
    H = reg.host
    key = new_key(os.path.join(tmp, "key.pem"))
    pub = os.path.join(tmp, "key.pem.pub")
    for repo in ("ma/app", "ma/indexonly"):
        berth.run("push", "--quiet", f"oci:{lay.path}:v1", f"{H}/{repo}:v1", check=True)

    # ---- multi-arch signing, checked by skopeo (containers/image)
    if shutil.which("skopeo"):
        regd = os.path.join(tmp, "registries.d")
        os.makedirs(regd)
        with open(os.path.join(regd, "sigstore.yaml"), "w") as f:
            f.write("default-docker:\n  use-sigstore-attachments: true\n")
        skopeo_policy = write_json("skopeo-policy.json", {
            "default": [{"type": "reject"}],
            "transports": {"docker": {f"{H}/ma": [{"type": "sigstoreSigned", "keyPath": pub}]}}})

        def skopeo_copy(repo, arch, name):
            args = ["skopeo", "--policy", skopeo_policy, "--registries.d", regd]
            if arch == "all":
                args += ["copy", "--all"]
            else:
                args += ["--override-os", "linux", "--override-arch", arch, "copy"]
            args += ["--quiet", "--src-tls-verify=false", "--remove-signatures", f"docker://{H}/{repo}:v1",
                     f"oci:{os.path.join(tmp, name)}:v1"]
            return subprocess.run(args, capture_output=True, text=True, timeout=120)

        def skopeo_accepts(r):
            """Debian builds containers/image with sigstore verification patched
            out: it still looks the signatures up (and says "no signature
            exists" without one), but fails every one it finds. There, reaching
            that check shows that a signature is where upstream looks for it;
            its cryptography is checked by py_verify. Elsewhere: success."""
            if "Debian-local change: sigstore disabled" in r.stderr:
                return "no signature exists" not in r.stderr
            return r.returncode == 0

        r = skopeo_copy("ma/app", "amd64", "unsigned")
        c.ok(r.returncode != 0, "skopeo refuses the unsigned image under the policy (the check is live): " +
             r.stderr.strip()[-200:])

        # An index signature alone (what berth signed before) is not enough for skopeo.
        py_sign(reg, "ma/indexonly", idx["digest"], f"{H}/ma/indexonly:v1", key)
        r = skopeo_copy("ma/indexonly", "arm64", "indexonly")
        c.ok(r.returncode != 0, "skopeo refuses a platform whose only signature is the index's: " + r.stderr.strip()[-200:])

        r = berth.run("sign", "--key", os.path.join(tmp, "key.pem"), f"{H}/ma/app:v1")
        lines = r.stdout.split()
        c.ok(r.returncode == 0, "berth image sign of the index: " + r.stderr.strip())
        c.ok(lines[0::2] == [amd["digest"], arm["digest"], idx["digest"]],
             "berth signed both platform manifests, then the index: " + r.stdout.strip())
        for d in (amd["digest"], arm["digest"], idx["digest"]):
            c.ok(signed_by_key(reg, "ma/app", d, f"{H}/ma/app:v1", pub),
                 f"independent verifier accepts the signature of {d[:19]}")
        for arch in ("amd64", "arm64", "all"):
            r = skopeo_copy("ma/app", arch, "out-" + arch)
            c.ok(skopeo_accepts(r), f"skopeo copy ({arch}) finds the signature of each manifest it copies (and, where sigstore is enabled, accepts it): " +
                 (r.stderr.strip()[-300:] or "copied"))
        if "Debian-local change: sigstore disabled" in r.stderr:
            print("note: this skopeo has sigstore verification disabled (a Debian patch): signatures were found "
                  "where containers/image looks, not verified by it")
        # berth still takes either signature: the index's for a platform it lists.
        r = berth.run("verify", "--key", pub, "--platform", "linux/arm64", f"{H}/ma/indexonly:v1")
        c.ok(r.returncode == 0, "berth accepts an index signature for a platform manifest it lists: " + r.stderr.strip())
    else:
        print("note: skopeo is not installed; multi-arch signing not checked against containers/image")

    # ---- scopes naming one image (digest, tag) and wildcard hosts
    accept = [{"type": "insecureAcceptAnything"}]
    reject = [{"type": "reject"}]
    revoked = write_json("revoked.json", {"default": accept,
                                          "transports": {"docker": {f"{H}/ma/app@{amd['digest']}": reject}}})
    r, root = pull(revoked, f"{H}/ma/app@{amd['digest']}", "root-revoked")
    c.ok(r.returncode == 1 and "rejected" in r.stderr and refs_in(root) == [],
         "a scope rejecting one digest refuses that digest: " + r.stderr.strip())
    r, _ = pull(revoked, f"{H}/ma/app@{arm['digest']}", "root-other-digest")
    c.ok(r.returncode == 0, "another digest of the repository is accepted: " + r.stderr.strip())

    tag_scope = write_json("tag.json", {"default": accept, "transports": {"docker": {f"{H}/ma/app:v1": reject}}})
    r, _ = pull(tag_scope, f"{H}/ma/app:v1", "root-tag")
    c.ok(r.returncode == 1 and "rejected" in r.stderr, "a scope naming a tag applies to that tag: " + r.stderr.strip())

    wildcard = write_json("wildcard.json", {"default": accept, "transports": {"docker": {"*.0.0.1": reject}}})
    r, _ = pull(wildcard, f"{H}/ma/app:v1", "root-wildcard")
    c.ok(r.returncode == 1 and "*.0.0.1" in r.stderr, "a wildcard host scope applies (scope named): " + r.stderr.strip())

    # ---- strict parsing: a requirement berth cannot check invalidates the policy
    rekor = write_json("rekor.json", {"default": reject, "transports": {"docker": {f"{H}/ma": [
        {"type": "sigstoreSigned", "keyPath": pub, "rekorPublicKeyPath": pub}]}}})
    r, root = pull(rekor, f"{H}/ma/app:v1", "root-rekor")
    c.ok(r.returncode == 1 and "rekorPublicKeyPath" in r.stderr and len(r.stderr.strip().splitlines()) == 1,
         "a policy requiring a Rekor proof is refused, naming the key: " + r.stderr.strip())
    typo = write_json("typo.json", {"default": accept, "transprts": {}})
    r, _ = pull(typo, f"{H}/ma/app:v1", "root-typo")
    c.ok(r.returncode == 1 and "transprts" in r.stderr, "an unknown top-level key is refused, naming it: " + r.stderr.strip())
finally:
    reg.stop()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{c.failed} failure(s)")
sys.exit(1 if c.failed else 0)

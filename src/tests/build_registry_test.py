#!/usr/bin/python3
"""`berth build` with Debian's docker-registry on 127.0.0.1: --push with
--sign-key (the signature checked by an independent verifier and by
`berth image verify`), a multi-platform index pushed and signed; a base
image pulled from the registry under a policy that requires the key; an
unsigned base refused with nothing stored. Usage: build_registry_test.py BERTH"""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "..", "image", "tests"))
from build_lib import *  # noqa
from build_lib import Checks  # noqa: the build tests' own
import remote_lib  # noqa

need("docker-registry")
e = Env(sys.argv[1], "berth-build-registry-")
c = Checks()
reg = remote_lib.Registry(e.tmp, "registry")
try:
    H = reg.host
    key = os.path.join(e.tmp, "key.pem")
    remote_lib.new_key(key)
    signed_policy = remote_lib.policy_file(os.path.join(e.tmp, "signed.json"), key + ".pub")

    base = e.context("base", BASE_CONTAINERFILE + 'CMD ["/bin/busybox", "sh"]\n')
    rc, base_digest, err = e.build(base, "-t", f"{H}/test/busybox:1", "--push", "--sign-key", key)
    c.ok(rc == 0, "base built, pushed and signed")
    if rc:
        print(err)
    c.eq(reg.manifest_digest("test/busybox", "1"), base_digest, "the registry has the built manifest")
    with open(key + ".pub", "rb") as f:
        pub = f.read()
    c.ok(remote_lib.py_verify(reg, "test/busybox", base_digest, f"{H}/test/busybox:1", pub),
         "the signature verifies with an independent verifier")
    p = subprocess.run([e.berth, "image", "verify", "--policy", signed_policy, f"{H}/test/busybox:1"], capture_output=True,
                       text=True)
    c.ok(p.returncode == 0, "berth image verify accepts it")

    multi = e.context("multi", "FROM scratch\nARG TARGETARCH\nENV ARCH=$TARGETARCH\n", busybox=False)
    rc, index_digest, err = e.build(multi, "-t", f"{H}/test/multi:1", "--platform", "linux/arm64,linux/amd64", "--push",
                                    "--sign-key", key)
    c.ok(rc == 0, "an index built, pushed and signed")
    c.eq(reg.manifest_digest("test/multi", "1"), index_digest, "the registry has the index")
    c.ok(remote_lib.py_verify(reg, "test/multi", index_digest, f"{H}/test/multi:1", pub), "the index is signed")

    # A base from the registry, into a new store, under the policy requiring the key.
    store2 = os.path.join(e.tmp, "store2")
    app = e.context("app", f"FROM {H}/test/busybox:1\nCOPY hello /hello\n", {"hello": "hi\n"}, busybox=False)
    rc, app_digest, err = e.build(app, "-t", "app:1", "--policy", signed_policy, store=store2)
    c.ok(rc == 0, "FROM a signed registry image pulled under the policy")
    if rc:
        print(err)
    else:
        c.eq(e.manifest(app_digest, store2)["layers"][0], e.manifest(base_digest)["layers"][0],
             "the pulled base layer reused byte for byte")

    # An unsigned base is refused; nothing lands in the store.
    rc, _, err = e.build(base, "-t", f"{H}/test/unsigned:1", "--push")
    c.ok(rc == 0, "an unsigned image pushed")
    store3 = os.path.join(e.tmp, "store3")
    bad = e.context("bad", f"FROM {H}/test/unsigned:1\nCOPY hello /hello\n", {"hello": "hi\n"}, busybox=False)
    rc, _, err = e.build(bad, "-t", "bad:1", "--policy", signed_policy, store=store3)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    c.ok(rc == 1 and last.startswith(f"berth: Containerfile:1: FROM {H}/test/unsigned:1: pull"),
         f"an unsigned base refused in one line: {last}")
    left = [n for sub in ("refs", "blobs/sha256", "layers") for n in
            (os.listdir(os.path.join(store3, sub)) if os.path.isdir(os.path.join(store3, sub)) else [])]
    c.eq(left, [], "nothing stored from the refused base")
finally:
    reg.stop()
    e.close()
c.exit()

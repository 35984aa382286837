#!/usr/bin/python3
"""`berth run IMAGE` against Debian's docker-registry on 127.0.0.1: a busybox
image pushed and signed by berth is pulled, verified and run under a policy
that requires the key; it runs again with the registry stopped (from the
signatures recorded by the first run, or by `berth image pull`), and not
under another key. An unsigned image and an unknown one are refused in one
line with nothing fetched, unpacked, mounted or left behind. Usage: run_registry_test.py BERTH"""
import glob
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import *  # noqa

t = RunSetup("berth-runreg-")
tmp, tag, state, store, berth = t.tmp, t.tag, t.state, t.store, t.berth
c = Checks()


def traces():
    """Container state dirs, bundles, mounts under tmp, cgroups of this test."""
    out = []
    for d in (state, os.path.join(store, "containers")):
        out += sorted(os.listdir(d)) if os.path.isdir(d) else []
    with open("/proc/self/mountinfo") as f:
        out += [line.split()[4] for line in f if line.split()[4].startswith(tmp)]
    out += glob.glob(f"/sys/fs/cgroup/**/*{tag}*", recursive=True)
    return out


def layers():
    d = os.path.join(store, "layers")
    return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []


reg = Registry(tmp, "registry")
try:
    H = reg.host
    lay = Layout(os.path.join(tmp, "layout"))
    desc, _ = lay.image([busybox_layer()], "amd64", tag)
    lay.tag(desc, "1")
    unsigned_desc, _ = lay.image([busybox_layer(), tar_layer([("u", None), ("u/f", b"unsigned\n")])], "amd64", tag)
    lay.tag(unsigned_desc, "unsigned")
    amd, _ = lay.image([busybox_layer(), tar_layer([("m", None), ("m/arch", b"amd64\n")])], "amd64", tag)
    arm, _ = lay.image([busybox_layer(), tar_layer([("m", None), ("m/arch", b"arm64\n")])], "arm64", tag)
    idx, _ = lay.multiarch([amd, arm])
    lay.tag(idx, "multi")
    new_key(os.path.join(tmp, "key.pem"))
    new_key(os.path.join(tmp, "other.pem"))
    pol = policy_file(os.path.join(tmp, "policy.json"), os.path.join(tmp, "key.pem.pub"))
    pol_other = policy_file(os.path.join(tmp, "other.json"), os.path.join(tmp, "other.pem.pub"))
    image = f"{H}/{tag}/app:1"
    unsigned = f"{H}/{tag}/app:unsigned"
    multi = f"{H}/{tag}/multi:1"

    for src, dst in ((f"oci:{lay.path}:1", image), (f"oci:{lay.path}:unsigned", unsigned), (f"oci:{lay.path}:multi", multi)):
        r = berth("image", "push", "--quiet", src, dst)
        c.ok(r.returncode == 0, f"push {dst}: {r.stderr.strip()}")
    for img in (image, multi):  # the multi-arch image is signed on its index, as `skopeo copy --all` does
        r = berth("image", "sign", "--quiet", "--key", os.path.join(tmp, "key.pem"), img)
        c.ok(r.returncode == 0, f"berth image sign {img}: {r.stdout.strip()} {r.stderr.strip()}")
    before = traces()

    # Refusals: one line, exit 1, nothing fetched, unpacked or left.
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", unsigned, "echo", "no")
    c.ok(r.returncode == 1 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and "not signed" in r.stderr,
         f"unsigned image refused in one line: {r.stderr.strip()}")
    c.ok(traces() == before and layers() == [] and blobs_in(store) == set() and refs_in(store) == [],
         "nothing fetched, unpacked or left for the unsigned image")
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", f"{H}/{tag}/nothing:1", "echo", "no")
    c.ok(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "not found" in r.stderr,
         f"unknown image refused in one line: {r.stderr.strip()}")
    c.ok(traces() == before and refs_in(store) == [], "the unknown image left nothing")

    # Signed: pulled, verified and run in one command.
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", image, "sh", "-c", "echo hi; exit 3")
    c.ok(r.stdout == "hi\n" and r.returncode == 3,
         f"run pulls, verifies and runs the signed image: rc={r.returncode} out={r.stdout!r} err={r.stderr.strip()}")
    c.ok(traces() == before, "--rm left no state, bundle, mount or cgroup")
    c.ok(len(glob.glob(os.path.join(store, "signatures", "*.json"))) == 1, "the verified signature is recorded in the store")
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", multi, "sh", "-c", "read a </m/arch; echo $a")
    c.ok(r.stdout == "amd64\n" and r.returncode == 0,
         f"a multi-arch image signed on its index: this platform's manifest runs: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")

    # `berth image pull` records the signatures that passed too.
    pulled = os.path.join(tmp, "pulled-store")
    for img in (image, multi):
        r = berth("--root", pulled, "image", "pull", "--quiet", "--policy", pol, img)
        c.ok(r.returncode == 0, f"berth image pull {img}: {r.stderr.strip()}")
    c.ok(len(glob.glob(os.path.join(pulled, "signatures", "*.json"))) == 2, "image pull recorded both images' signatures")

    # Offline: the recorded signature is verified again, under the policy in force.
    reg.stop()
    reg = None
    for img, cmd, want in ((image, "echo pulled", "pulled\n"), (multi, "read a </m/arch; echo $a", "amd64\n")):
        r = berth("run", "--rm", "--store", pulled, "--policy", pol, "--quiet", "--retries", "1", img, "sh", "-c", cmd)
        c.ok(r.stdout == want and r.returncode == 0,
             f"an image only pulled runs with the registry down ({img}): rc={r.returncode} {r.stderr.strip()}")
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", "--retries", "1", image, "sh", "-c", "echo offline")
    c.ok(r.stdout == "offline\n" and r.returncode == 0, f"runs with the registry down: rc={r.returncode} {r.stderr.strip()}")
    r = berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", "--retries", "1", multi, "sh", "-c", "read a </m/arch; echo $a")
    c.ok(r.stdout == "amd64\n" and r.returncode == 0,
         f"the index-signed image runs with the registry down: rc={r.returncode} {r.stderr.strip()}")
    r = berth("run", "--rm", "--store", store, "--policy", pol_other, "--quiet", "--retries", "1", image, "echo", "no")
    c.ok(r.returncode == 1 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1,
         f"offline, a policy with another key refuses it in one line: {r.stderr.strip()}")
    c.ok(traces() == before, "the refusal left nothing")
finally:
    cleanup_run(tmp, reg, berth, state)
c.exit()

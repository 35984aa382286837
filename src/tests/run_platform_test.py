#!/usr/bin/python3
"""`berth run --platform` with images of two platforms in one store, against
Debian's docker-registry on 127.0.0.1 (issue: the platform was ignored once
the name was in the store). A multi-arch image (this machine's platform and
another) runs the manifest of the platform asked for, whichever was stored
before; a single-platform image of another platform is refused, not run;
and with the registry down, a stored image of another platform is refused
with an error naming both platforms. Each manifest's image has a file
/m/arch naming its platform (the binaries are this machine's, so both run).
Usage: run_platform_test.py BERTH"""
import os
import platform
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import *  # noqa

HOST = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine())
if not HOST:
    print(f"skipped: no test images for {platform.machine()}")
    sys.exit(77)
OTHER = "arm64" if HOST == "amd64" else "amd64"

t = RunSetup("berth-runplat-")
tmp, tag, state, store, berth = t.tmp, t.tag, t.state, t.store, t.berth
c = Checks()


def run(image, *opts):
    """Prints /m/arch in `image` (busybox's sh only); returns the CompletedProcess."""
    return berth("run", "--rm", "--store", store, "--policy", pol, "--quiet", "--retries", "1", *opts,
                 image, "sh", "-c", "read a </m/arch; echo $a")


def arch_layer(arch):
    return tar_layer([("m", None), ("m/arch", f"{arch}\n".encode())])


reg = Registry(tmp, "registry")
try:
    H = reg.host
    lay = Layout(os.path.join(tmp, "layout"))
    here, _ = lay.image([busybox_layer(), arch_layer(HOST)], HOST, tag)
    there, _ = lay.image([busybox_layer(), arch_layer(OTHER)], OTHER, tag)
    idx, _ = lay.multiarch([here, there])
    lay.tag(idx, "multi")
    lay.tag(there, "foreign")
    pol = policy_file(os.path.join(tmp, "policy.json"), accept=True)
    multi = f"{H}/{tag}/multi:1"
    foreign = f"{H}/{tag}/foreign:1"
    for src, dst in ((f"oci:{lay.path}:multi", multi), (f"oci:{lay.path}:foreign", foreign)):
        r = berth("image", "push", "--quiet", src, dst)
        c.ok(r.returncode == 0, f"push {dst}: {r.stderr.strip()}")

    r = run(multi)
    c.ok(r.returncode == 0 and r.stdout == f"{HOST}\n",
         f"without --platform, this machine's manifest runs: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(multi, "--platform", f"linux/{OTHER}")
    c.ok(r.returncode == 0 and r.stdout == f"{OTHER}\n",
         f"--platform linux/{OTHER} runs that manifest, not the stored {HOST} one: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(multi)
    c.ok(r.returncode == 0 and r.stdout == f"{HOST}\n",
         f"without --platform after a {OTHER} run, this machine's manifest runs again: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(multi, "--platform", f"linux/{HOST}")
    c.ok(r.returncode == 0 and r.stdout == f"{HOST}\n",
         f"--platform linux/{HOST} runs this machine's manifest: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")

    r = run(foreign)
    c.ok(r.returncode != 0 and OTHER not in r.stdout and f"linux/{OTHER}" in r.stderr,
         f"a single-platform {OTHER} image is refused without --platform: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(foreign, "--platform", f"linux/{OTHER}")
    c.ok(r.returncode == 0 and r.stdout == f"{OTHER}\n",
         f"... and runs with --platform linux/{OTHER}: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")

    # Offline: the store holds only the other platform's manifest under the name.
    r = run(multi, "--platform", f"linux/{OTHER}")
    c.ok(r.returncode == 0 and r.stdout == f"{OTHER}\n", f"{OTHER} stored last: rc={r.returncode} {r.stderr.strip()}")
    reg.stop()
    reg = None
    r = run(multi)
    c.ok(r.returncode == 1 and OTHER not in r.stdout and f"linux/{OTHER}" in r.stderr and f"linux/{HOST}" in r.stderr,
         f"registry down: the stored {OTHER} manifest is not run for linux/{HOST}: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(multi, "--platform", f"linux/{OTHER}")
    c.ok(r.returncode == 0 and r.stdout == f"{OTHER}\n",
         f"registry down: the stored manifest runs for its own platform: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    r = run(foreign)
    c.ok(r.returncode == 1 and r.stdout == "" and f"linux/{OTHER}" in r.stderr,
         f"registry down: the stored single-platform {OTHER} image is refused: rc={r.returncode} {r.stdout!r} {r.stderr.strip()}")
    left = os.listdir(os.path.join(store, "containers")) if os.path.isdir(os.path.join(store, "containers")) else []
    c.ok(left == [], f"no bundle left behind: {left}")
finally:
    cleanup_run(tmp, reg, berth, state)
c.exit()

#!/usr/bin/python3
"""A RUN step over a real image's layers (busybox-static and a layer of
files, imported into a berth store and unpacked there) gives its changes
only, in OCI layer form: a new and a changed file as files, a file of a
lower layer deleted as .wh.<name>, a directory removed and made again as
an opaque one (.wh..wh..opq), no overlay attribute, none of the mount
points the runtime made. That tree, packed as a layer and imported on top
of the image, reads as the step left the root. The step gets its argv,
env, cwd and user (a name from the rootfs' /etc/passwd), the host's
resolv.conf and hosts with the host network (without a trace in the
layer), and only a loopback interface with --no-network.
Usage: build_run_layer_test.py BERTH BUILD_RUN_STEP"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Setup, busybox_files, overlay_xattrs, tar_layer, tar_of_dir, tree  # noqa: E402

t = Setup("berth-buildrun-layer-")
c = Checks()
try:
    base = tar_layer(busybox_files())
    files = tar_layer([("app", None), ("app/config", b"v1\n"), ("app/old", None), ("app/old/x", b"x\n"),
                       ("app/keep", b"same\n"), ("etc", None), ("etc/base.txt", b"from the base\n")])
    lowers = t.image([base, files])

    script = ("echo new >/app/new; echo v2 >/app/config; rm /etc/base.txt; rm -r /app/old; mkdir /app/old; "
              "echo fresh >/app/old/y; echo \"$FOO $(pwd) $(id -u)\"")
    r, upper, out = t.step(lowers, ["sh", "-c", script], "--env", "FOO=bar", "--cwd", "/app")
    c.ok(r.returncode == 0, f"the step succeeds: rc={r.returncode} {r.stderr.strip()}")
    c.ok(open(out).read() == "bar /app 0\n", f"it ran with its env and cwd, as root: {open(out).read()!r}")
    got = tree(upper)
    want = {"app": "dir", "app/new": b"new\n", "app/config": b"v2\n", "app/old": "dir", "app/old/.wh..wh..opq": b"",
            "app/old/y": b"fresh\n", "etc": "dir", "etc/.wh.base.txt": b""}
    c.ok(got == want, f"the upper directory holds the step's changes in OCI form: {sorted(got.items())}")
    c.ok(overlay_xattrs(upper) == [], f"no overlay attribute is left: {overlay_xattrs(upper)}")
    c.ok("mounts left: 0" in r.stderr, f"the overlay is unmounted: {r.stderr.strip()}")

    # The tree as a layer on top of the image: berth's unpacker and overlay read it as the step's result.
    layer = tar_of_dir(upper)
    lowers3 = t.image([base, files, layer], "after")
    check = ("test ! -e /etc/base.txt && test ! -e /app/old/x && test -e /app/keep && "
             "cat /app/config /app/new /app/old/y && ls /app/old")
    r, upper2, out = t.step(lowers3, ["sh", "-c", check])
    c.ok(r.returncode == 0 and open(out).read() == "v2\nnew\nfresh\ny\n",
         f"the layer, imported on top, reads as the step left the root: rc={r.returncode} "
         f"{open(out).read()!r} {r.stderr.strip()}")
    c.ok(tree(upper2) == {}, f"a step that changes nothing gives an empty layer: {sorted(tree(upper2))}")

    r, upper, out = t.step(lowers, ["sh", "-c", "id -u; id -g; echo $HOME"], "--user", "builder")
    c.ok(r.returncode == 0 and open(out).read() == "1234\n2345\n/home/builder\n",
         f"--user builder runs as the rootfs' /etc/passwd says: {open(out).read()!r} {r.stderr.strip()}")

    r, upper, out = t.step(lowers, ["sh", "-c", "cat /etc/resolv.conf /etc/hosts; ls /sys/class/net"])
    host = "".join(open(f).read() for f in ("/etc/resolv.conf", "/etc/hosts") if os.path.exists(f))
    host_ifs = sorted(os.listdir("/sys/class/net"))
    text = open(out).read()
    c.ok(r.returncode == 0 and text.startswith(host) and sorted(text[len(host):].split()) == host_ifs,
         f"the host network, with the host's resolv.conf and hosts: {text!r} {r.stderr.strip()}")
    c.ok(tree(upper) == {}, f"... which leave no trace in the layer: {sorted(tree(upper))}")

    r, upper, out = t.step(lowers, ["ls", "/sys/class/net"], "--no-network")
    c.ok(r.returncode == 0 and open(out).read().split() == ["lo"],
         f"--no-network: loopback only: {open(out).read()!r} {r.stderr.strip()}")

    c.ok(t.leftovers() == [], f"no container, bundle or cgroup is left: {t.leftovers()}")
finally:
    t.cleanup()
c.exit()

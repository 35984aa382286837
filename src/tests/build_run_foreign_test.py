#!/usr/bin/python3
"""A RUN step of linux/arm/v7 on an x86_64 host runs its ARM program under
qemu-arm through binfmt_misc's F flag (the interpreter is not in the
container's root): the program sees an armv7l machine and its file lands
in the layer. A platform with no registration fails before anything is
made, naming the command that registers it.

The test sets binfmt up when it can (mounts binfmt_misc, registers Debian's
qemu-arm.conf; both stay, as at boot with qemu-user-static) and skips
(77) without qemu-user-static or arm-linux-gnueabihf-gcc, or when qemu-arm
is registered without the F flag (not ours to change).
Usage: build_run_foreign_test.py BERTH BUILD_RUN_STEP"""
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Setup, skip, tar_layer, tree  # noqa: E402

MISC = "/proc/sys/fs/binfmt_misc"
CONF = "/usr/lib/binfmt.d/qemu-arm.conf"
PROGRAM = r"""
#include <stdio.h>
#include <sys/utsname.h>
int main(int argc, char **argv) {
    struct utsname u;
    uname(&u);
    printf("%s\n", u.machine);
    FILE *f = fopen(argv[1], "w");
    return f && fputs("made on arm\n", f) >= 0 && fclose(f) == 0 ? 0 : 1;
}
"""


def binfmt_arm():
    """Mounts binfmt_misc and registers qemu-arm (flag F) where missing."""
    if not os.path.exists(f"{MISC}/register"):
        r = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", MISC], capture_output=True, text=True)
        if r.returncode != 0:
            skip(f"cannot mount binfmt_misc: {r.stderr.strip()}")
    if not os.path.exists(f"{MISC}/qemu-arm"):
        if not os.path.exists(CONF):
            skip("needs qemu-user-static (its /usr/lib/binfmt.d/qemu-arm.conf)")
        with open(f"{MISC}/register", "w") as f:
            f.write(open(CONF).read())
    flags = [l for l in open(f"{MISC}/qemu-arm").read().splitlines() if l.startswith("flags:")]
    if not flags or "F" not in flags[0]:
        skip(f"qemu-arm is registered without the F flag ({flags}); not changed by a test")


if platform.machine() != "x86_64":
    skip(f"the foreign platform of this test is arm/v7 on x86_64, not {platform.machine()}")
t = Setup("berth-buildrun-foreign-")
c = Checks()
try:
    gcc = "arm-linux-gnueabihf-gcc"
    src, prog = os.path.join(t.tmp, "hello.c"), os.path.join(t.tmp, "hello-arm")
    open(src, "w").write(PROGRAM)
    r = subprocess.run([gcc, "-static", "-Os", "-o", prog, src], capture_output=True, text=True) \
        if subprocess.run(["which", gcc], capture_output=True).returncode == 0 else None
    if r is None or r.returncode != 0:
        skip(f"needs {gcc} with a static armhf libc: {r.stderr.strip() if r else 'not installed'}")
    binfmt_arm()
    lowers = t.image([tar_layer([("bin", None), ("bin/hello-arm", open(prog, "rb").read())])])

    r, upper, out = t.step(lowers, ["/bin/hello-arm", "/made"], "--platform", "linux/arm/v7")
    c.ok(r.returncode == 0 and open(out).read() == "armv7l\n",
         f"the arm/v7 program runs under qemu-arm and sees armv7l: rc={r.returncode} {open(out).read()!r} {r.stderr.strip()}")
    c.ok(tree(upper) == {"made": b"made on arm\n"}, f"its file is the step's layer: {tree(upper)}")
    c.ok("mounts left: 0" in r.stderr and t.leftovers() == [], f"nothing is left: {r.stderr.strip()} {t.leftovers()}")

    if os.path.exists(f"{MISC}/qemu-s390x"):
        print("(qemu-s390x is registered here: the unregistered platform's case is not checked)")
    else:
        r, upper, out = t.step(lowers, ["/bin/hello-arm", "/made"], "--platform", "linux/s390x")
        want = "qemu-s390x is not registered: "
        c.ok(r.returncode == 1 and want in r.stderr and f"> {MISC}/register`" in r.stderr and "exec format" not in r.stderr,
             f"an unregistered platform names the command that registers it: {r.stderr.strip()}")
        c.ok(tree(upper) == {} and t.leftovers() == [], f"... before making anything: {tree(upper)} {t.leftovers()}")
finally:
    t.cleanup()
c.exit()

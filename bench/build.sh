#!/usr/bin/env bash
# `berth build` against `podman build` and `buildah bud` (Debian's, with
# runc: crun refuses this host's hybrid cgroups), all three building for
# linux/arm/v7 on this x86_64 host with qemu-arm through binfmt_misc (flag
# F), each with its own empty storage for a cold build and the same
# storage again for a warm one (the layer cache):
#
#   (1) sensor-like   FROM the busybox armhf base, COPY, ENV, HEALTHCHECK,
#                     CMD: no RUN; what a builder costs around its work
#   (2) compile       FROM a Debian armhf minbase with gcc, COPY a ~200-line
#                     C program, RUN gcc -O2 on it under qemu-arm; the
#                     bare emulated compile (the same gcc in a chroot of
#                     the same rootfs) is measured too, so that what each
#                     builder adds (container setup, diff, commit) shows
#
# Printed per case and tool: the median wall time of RUNS builds (default
# 3) cold and warm, the builder's own peak RSS (VmHWM, sampled every 5 ms)
# and the largest ru_maxrss among it and the processes it waited for (a
# RUN step's programs where the builder reaps them itself). Then the ratios against the issue's
# goals: (1) berth <= 0.5x podman cold, <= 0.3x warm; (2) berth's time
# minus the bare compile <= 0.3x podman's, <= 0.3x warm; peak RSS below
# podman's. Reproducibility: berth's digests of two cold builds (other
# store, other time) must be equal; podman's differ unless --timestamp 0,
# and with it its COPY layer is compared with berth's.
#
# The base images come from cross/make-base-image.sh (cached under
# .sysroot/images; the Debian one with gcc takes minutes the first time).
# binfmt_misc is mounted and Debian's qemu-arm.conf registered when they
# are missing. Needs root, podman, buildah, qemu-user-static.
#
#   bench/build.sh            (BERTH=/path/to/berth, RUNS=N)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
[ "$(id -u)" = 0 ] || { echo "build.sh: needs root" >&2; exit 1; }
for tool in podman buildah; do
    command -v $tool >/dev/null || { echo "build.sh: needs $tool" >&2; exit 1; }
done
. "$here/bundle.sh"
berth=$(find_berth)
"$berth" build --help >/dev/null 2>&1 || { echo "build.sh: $berth has no build command" >&2; exit 1; }

misc=/proc/sys/fs/binfmt_misc
if [ ! -e "$misc/register" ]; then
    echo "(mounting binfmt_misc)"
    mount -t binfmt_misc binfmt_misc "$misc"
fi
if [ ! -e "$misc/qemu-arm" ]; then
    [ -f /usr/lib/binfmt.d/qemu-arm.conf ] || { echo "build.sh: needs qemu-user-static" >&2; exit 1; }
    echo "(registering qemu-arm: /usr/lib/binfmt.d/qemu-arm.conf)"
    cat /usr/lib/binfmt.d/qemu-arm.conf >"$misc/register"
fi
grep -q '^flags:.*F' "$misc/qemu-arm" || { echo "build.sh: qemu-arm is registered without the F flag" >&2; exit 1; }

"$top/cross/make-base-image.sh" busybox armhf
"$top/cross/make-base-image.sh" --include gcc,libc6-dev debian armhf

exec /usr/bin/python3 - "$berth" "$top" <<'PY'
import json, os, shutil, statistics, subprocess, sys, tempfile, time

berth, top = sys.argv[1], sys.argv[2]
RUNS = int(os.environ.get("RUNS", "3"))
PLATFORM = "linux/arm/v7"
ULIMITS = ["--ulimit", "nproc=4096:4096", "--ulimit", "nofile=1024:1024"]

tmp = tempfile.mkdtemp(prefix="berth-bench-build-")
os.chmod(tmp, 0o755)
# podman and buildah refuse a `.` in an oci: path (.sysroot): links without one.
images = {}
for name, layout in (("busybox", "busybox"), ("gcc", "debian-gcc+libc6-dev")):
    images[name] = os.path.join(tmp, "images", name)
    os.makedirs(os.path.dirname(images[name]), exist_ok=True)
    os.symlink(os.path.join(top, ".sysroot", "images", layout), images[name])


def program(functions=33):
    """A ~200-line C program: functions of integer arithmetic and a main calling them."""
    lines = ["#include <stdio.h>", "#include <stdint.h>", ""]
    for i in range(functions):
        lines += [f"static uint32_t step{i}(uint32_t x) {{",
                  f"    for (int i = 0; i < {i + 3}; i++) x = x * {2 * i + 3}u + (x >> {i % 7 + 1});",
                  f"    return x ^ {i * 2654435761 % 4294967296}u;", "}", ""]
    lines += ["int main(void) {", "    uint32_t x = 1;"]
    lines += [f"    x = step{i}(x);" for i in range(functions)]
    lines += ['    printf("%u\\n", x);', "    return 0;", "}"]
    return "\n".join(lines) + "\n"


def context(name, text, files):
    d = os.path.join(tmp, "ctx", name)
    os.makedirs(d)
    with open(os.path.join(d, "Containerfile"), "w") as f:
        f.write(text)
    for fname, data in files.items():
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)
        os.chmod(os.path.join(d, fname), 0o755)
    return d


sensor = open(os.path.join(top, "examples", "sensor", "sensor"), "rb").read()
CASES = {
    "sensor-like": context("sensor", f"""FROM oci:{images['busybox']}:latest
COPY sensor /usr/bin/sensor
ENV SENSOR_FILE=/run/sensor/readings PORT=8080
HEALTHCHECK --interval=2s --timeout=2s CMD wget -q -O /dev/null http://127.0.0.1:8080/health
CMD ["/usr/bin/sensor", "serve"]
""", {"sensor": sensor}),
    "compile": context("compile", f"""FROM oci:{images['gcc']}:latest
COPY prog.c /src/prog.c
RUN gcc -O2 -o /usr/local/bin/prog /src/prog.c
CMD ["/usr/local/bin/prog"]
""", {"prog.c": program().encode()}),
}


def hwm_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(cmd):
    """(seconds, peak RSS KiB of the builder process itself, largest ru_maxrss
    among it and what it waited for) of `cmd`, which must succeed."""
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    own = 0
    while True:  # VmHWM only grows: the last sample before the exit is the peak, near enough
        own = max(own, hwm_kib(p.pid))
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.005)
    took = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.read().decode(errors='replace')[-3000:]}")
    return took, own, usage.ru_maxrss


class Tool:
    def __init__(self, name):
        self.name = name

    def storage(self):
        # Directly under /tmp: podman refuses a run root of more than 50 characters.
        return tempfile.mkdtemp(prefix=f"bb-{self.name[:2]}-")

    def build_cmd(self, store, ctx, extra=()):
        tag = "localhost/bench:1"
        if self.name == "berth":
            return [berth, "build", "--store", store, "--platform", PLATFORM, "-t", tag, *extra, ctx]
        if self.name == "podman":
            return ["podman", "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver", "overlay",
                    "build", "--runtime", "runc", "--platform", PLATFORM, *ULIMITS, "--format", "docker", "-t", tag,
                    *extra, ctx]
        return ["buildah", "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver", "overlay",
                "bud", "--runtime", "runc", "--platform", PLATFORM, *ULIMITS, "--format", "docker", "--layers",
                "-t", tag, *extra, ctx]

    def cleanup(self, store):
        if self.name != "berth":
            subprocess.run([self.name, "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver",
                            "overlay", "rmi", "-af"] if self.name == "buildah" else
                           ["podman", "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver",
                            "overlay", "system", "reset", "-f"], capture_output=True)
        subprocess.run(["umount", "-R", store], capture_output=True)
        shutil.rmtree(store, ignore_errors=True)


TOOLS = [Tool("berth"), Tool("podman"), Tool("buildah")]


def measure(tool, ctx):
    cold, warm, own, tree = [], [], [], []
    for _ in range(RUNS):
        store = tool.storage()
        try:
            for times in (cold, warm):
                t, o, r = timed(tool.build_cmd(store, ctx))
                times.append(t)
                own.append(o)
                tree.append(r)
        finally:
            tool.cleanup(store)
    return statistics.median(cold), statistics.median(warm), max(own) / 1024, max(tree) / 1024


def bare_compile():
    """The gcc step alone: the Debian armhf rootfs unpacked, gcc run in a chroot of it (qemu-arm via binfmt)."""
    root = os.path.join(tmp, "gcc-root")
    os.makedirs(root)
    idx = json.load(open(os.path.join(images["gcc"], "index.json")))["manifests"][0]["digest"].split(":")[1]
    blob = lambda h: os.path.join(images["gcc"], "blobs", "sha256", h)
    for m in json.load(open(blob(idx)))["manifests"]:
        if m["platform"]["architecture"] == "arm":
            man = json.load(open(blob(m["digest"].split(":")[1])))
    subprocess.run(["tar", "-xzf", blob(man["layers"][0]["digest"].split(":")[1]), "-C", root], check=True)
    os.makedirs(os.path.join(root, "src"), exist_ok=True)
    with open(os.path.join(root, "src", "prog.c"), "w") as f:
        f.write(program())
    script = (f"mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && "
              f"exec chroot {root} gcc -O2 -o /tmp/prog /src/prog.c")
    times = [timed(["unshare", "-m", "--propagation", "private", "sh", "-c", script])[0] for _ in range(RUNS)]
    shutil.rmtree(root)
    return statistics.median(times)


def berth_digests(ctx, epoch_env=None):
    """The manifest digest and diff_ids of a cold berth build written as an OCI layout."""
    store, out = tempfile.mkdtemp(dir=tmp), tempfile.mkdtemp(dir=tmp)
    shutil.rmtree(out)
    env = dict(os.environ, **(epoch_env or {}))
    subprocess.run([berth, "build", "--store", store, "--platform", PLATFORM, "--output", f"type=oci,dest={out}", ctx],
                   check=True, capture_output=True, env=env)
    idx = json.load(open(os.path.join(out, "index.json")))["manifests"][0]
    blob = lambda d: os.path.join(out, "blobs", "sha256", d.split(":")[1])
    doc = json.load(open(blob(idx["digest"])))
    if "manifests" in doc:  # an index of one platform
        idx = doc["manifests"][0]
        doc = json.load(open(blob(idx["digest"])))
    diff_ids = json.load(open(blob(doc["config"]["digest"])))["rootfs"]["diff_ids"]
    shutil.rmtree(store)
    shutil.rmtree(out)
    return idx["digest"], diff_ids


def podman_ids(ctx, extra):
    tool = Tool("podman")
    store = tool.storage()
    try:
        subprocess.run(tool.build_cmd(store, ctx, extra), check=True, capture_output=True)
        r = subprocess.run(["podman", "--root", f"{store}/root", "--runroot", f"{store}/run", "--storage-driver",
                            "overlay", "image", "inspect", "localhost/bench:1"], check=True, capture_output=True)
        info = json.loads(r.stdout)[0]
        return info["Digest"], info["RootFS"]["Layers"]
    finally:
        tool.cleanup(store)


try:
    results = {}
    print(f"{'case':<13} {'tool':<8} {'cold s':>8} {'warm s':>8} {'own peak RSS MiB':>17} {'tree max MiB':>13}")
    for case, ctx in CASES.items():
        for tool in TOOLS:
            cold, warm, own, tree = measure(tool, ctx)
            results[case, tool.name] = (cold, warm, own, tree)
            print(f"{case:<13} {tool.name:<8} {cold:8.2f} {warm:8.2f} {own:17.1f} {tree:13.1f}", flush=True)
    bare = bare_compile()
    print(f"bare emulated compile (gcc -O2 in a chroot under qemu-arm): {bare:.2f} s")

    def ratio(a, b):
        return a / b if b > 0 else float("inf")

    b, p = results["sensor-like", "berth"], results["sensor-like", "podman"]
    print(f"(1) sensor-like: berth/podman cold {ratio(b[0], p[0]):.2f}x (goal <= 0.5), "
          f"warm {ratio(b[1], p[1]):.2f}x (goal <= 0.3); buildah cold {ratio(b[0], results['sensor-like', 'buildah'][0]):.2f}x")
    b, p = results["compile", "berth"], results["compile", "podman"]
    print(f"(2) compile: around the compile berth {b[0] - bare:.2f} s, podman {p[0] - bare:.2f} s: "
          f"{ratio(b[0] - bare, p[0] - bare):.2f}x (goal <= 0.3); warm {ratio(b[1], p[1]):.2f}x (goal <= 0.3)")
    for case in CASES:
        b, p = results[case, "berth"][2], results[case, "podman"][2]
        print(f"peak RSS of the builder {case}: berth {b:.1f} MiB, podman {p:.1f} MiB ({ratio(b, p):.2f}x, goal < 1)")

    ctx = CASES["sensor-like"]
    d1, ids1 = berth_digests(ctx)
    time.sleep(1.1)
    d2, _ = berth_digests(ctx)
    print(f"reproducible: berth's two cold builds {'give the same digest' if d1 == d2 else 'DIFFER'} ({d1})")
    p1, _ = podman_ids(ctx, [])
    time.sleep(1.1)
    p2, _ = podman_ids(ctx, [])
    print(f"podman without --timestamp: {'the same digest' if p1 == p2 else 'different digests'}")
    p1, pl1 = podman_ids(ctx, ["--timestamp", "0"])
    p2, _ = podman_ids(ctx, ["--timestamp", "0"])
    print(f"podman --timestamp 0: {'the same digest' if p1 == p2 else 'different digests'}; "
          f"its COPY layer {'equals' if pl1[-1] == ids1[-1] else 'differs from'} berth's ({pl1[-1]} vs {ids1[-1]})")
finally:
    subprocess.run(["umount", "-R", tmp], capture_output=True)
    shutil.rmtree(tmp, ignore_errors=True)
PY

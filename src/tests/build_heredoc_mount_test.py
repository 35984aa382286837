#!/usr/bin/python3
"""`berth build` with here-documents (`RUN <<EOF`, `COPY <<EOF /path`),
`RUN --mount=type=cache` and `type=bind` as BuildKit defines them, other
mount types refused with the line, and `COPY --from=STAGE` reading the
stage through a read-only overlay (its whiteouts honoured). On a
busybox-static base made here; the image's layers are read from an OCI
layout written by --output.
Usage: build_heredoc_mount_test.py BERTH BUILD_RUN_STEP"""
import gzip
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_run_lib import Checks, Layout, Setup, busybox_files, context_dir, tar_layer  # noqa: E402

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())

t = Setup("berth-build-heredoc-")
c = Checks()
n = [0]


def context(containerfile, files=None):
    n[0] += 1
    return context_dir(t.tmp, f"ctx{n[0]}", containerfile, files)


def build(ctx, *opts, store=None):
    n[0] += 1
    out = os.path.join(t.tmp, f"out{n[0]}")
    r = subprocess.run([t.berth_bin, "build", "--store", store or os.path.join(t.tmp, "store"), "--output",
                        f"type=oci,dest={out}", *opts, ctx], capture_output=True, text=True, timeout=300)
    return r, out


def layers(out):
    """[{name: (member, bytes or None)}] of the one image in the layout `out`, and its config."""
    blob = lambda d: open(os.path.join(out, "blobs", "sha256", d.split(":")[1]), "rb").read()
    doc = json.loads(blob(json.load(open(os.path.join(out, "index.json")))["manifests"][0]["digest"]))
    res = []
    for l in doc["layers"]:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(l["digest"])))) as tf:
            res.append({m.name.rstrip("/"): (m, tf.extractfile(m).read() if m.isfile() else None) for m in tf.getmembers()})
    return res, json.loads(blob(doc["config"]["digest"]))


try:
    lay = Layout(os.path.join(t.tmp, "base"))
    desc, _ = lay.image([tar_layer(busybox_files() + [("bin/wc", ("link", "busybox")), ("bin/tr", ("link", "busybox")),
                                                      ("etc/motd", b"base motd\n")])], ARCH)
    lay.tag(desc, "1")
    base = f"oci:{lay.path}:1"

    r, out = build(context(f"""FROM {base}
ARG WHO=world
RUN <<EOF
# a comment line stays in the script
echo one >/one

echo two >/two
EOF
RUN <<EOF
#!/bin/sh
echo "ran by $0" >/shebang
EOF
RUN cat <<'EOT' >/fed && tr a-z A-Z <<EOT2 >/fed2
not $expanded
EOT
upper
EOT2
COPY <<EOF /etc/greeting
hello ${{WHO}} \\$HOME
EOF
COPY --chmod=0600 <<"EOF" <<EOF2 /etc/two/
literal $WHO
EOF
$WHO again
EOF2
"""))
    c.ok(r.returncode == 0, f"a build with here-documents succeeds: {r.stderr.strip()[-600:]}")
    if r.returncode == 0:
        ls, cfg = layers(out)
        run1, run2, run3, copy1, copy2 = ls[1:]
        c.ok(run1.get("one", (0, 0))[1] == b"one\n" and run1.get("two", (0, 0))[1] == b"two\n",
             f"RUN <<EOF runs the document as a shell script, blank and comment lines in it: {sorted(run1)}")
        c.ok(run2.get("shebang", (0, 0))[1] == b"ran by /.berth-heredoc/EOF\n" and set(run2) == {"shebang"},
             f"... with its #! line, as a file bound in that is not part of the layer: {sorted(run2)} "
             f"{run2.get('shebang', (0, 0))[1]!r}")
        c.ok(run3.get("fed", (0, 0))[1] == b"not $expanded\n" and run3.get("fed2", (0, 0))[1] == b"UPPER\n",
             f"documents fed to commands go to the shell, quoted ones unexpanded: {run3.get('fed')} {run3.get('fed2')}")
        g = copy1.get("etc/greeting", (None, None))
        c.ok(g[1] == b"hello world $HOME\n" and g[0].mode == 0o644,
             f"COPY <<EOF /path makes the file, ARGs substituted, mode 0644: {g[1]!r} {oct(g[0].mode) if g[0] else None}")
        a, b = copy2.get("etc/two/EOF", (None, None)), copy2.get("etc/two/EOF2", (None, None))
        c.ok(a[1] == b"literal $WHO\n" and b[1] == b"world again\n" and a[0].mode == 0o600,
             f"several documents into a directory, a quoted one not substituted, --chmod: {a[1]!r} {b[1]!r}")
        hist = [h.get("created_by", "") for h in cfg["history"]]
        c.ok(any("echo one" in h for h in hist), f"the history names the script: {hist[-5:]}")

    r, _ = build(context(f"FROM {base}\nRUN <<EOF\necho never closed\n"))
    c.ok(r.returncode != 0 and "Containerfile:2" in r.stderr and "not closed" in r.stderr,
         f"an unclosed here-document is an error naming its line: {r.stderr.strip()}")

    # RUN --mount=type=cache: kept between builds, never in the layer.
    cache_cf = f"""FROM {base}
RUN --mount=type=cache,target=/var/cache/app,id=app \\
    echo run >>/var/cache/app/log && wc -l </var/cache/app/log >/count
"""
    r1, out1 = build(context(cache_cf))
    r2, out2 = build(context(cache_cf), "--no-cache")
    c.ok(r1.returncode == 0 and r2.returncode == 0, f"builds with a cache mount succeed: {r1.stderr.strip()[-300:]} "
                                                    f"{r2.stderr.strip()[-300:]}")
    if r1.returncode == 0 and r2.returncode == 0:
        l1, l2 = layers(out1)[0][-1], layers(out2)[0][-1]
        c.ok(l1["count"][1].strip() == b"1" and l2["count"][1].strip() == b"2",
             f"the cache mount keeps its content from one build to the next: {l1['count'][1]!r} {l2['count'][1]!r}")
        c.ok(not any(k.startswith("var") for k in l1), f"... and is not in the layer: {sorted(l1)}")

    # RUN --mount=type=bind: the context, read-only; rw writes thrown away.
    bind_cf = f"""FROM {base}
RUN --mount=type=bind,source=data,target=/mnt/data cat /mnt/data >/seen && ! echo x 2>/dev/null >/mnt/data
RUN --mount=type=bind,target=/ctx,rw echo changed >/ctx/data && cat /ctx/data >/seen-rw
"""
    ctx = context(bind_cf, {"data": b"from the context\n"})
    r, out = build(ctx)
    c.ok(r.returncode == 0, f"builds with bind mounts succeed: {r.stderr.strip()[-400:]}")
    if r.returncode == 0:
        ls, _ = layers(out)
        c.ok(ls[1].get("seen", (0, 0))[1] == b"from the context\n" and not any(k.startswith("mnt") for k in ls[1]),
             f"a bind mount shows the context's file read-only, and is not in the layer: {sorted(ls[1])}")
        c.ok(ls[2].get("seen-rw", (0, 0))[1] == b"changed\n" and open(os.path.join(ctx, "data"), "rb").read() == b"from the context\n",
             f"rw writes to a copy: the context is unchanged: {sorted(ls[2])}")
    with open(os.path.join(ctx, "data"), "wb") as f:
        f.write(b"changed in the context\n")
    r, out = build(ctx)
    c.ok(r.returncode == 0 and "Using cache" not in r.stderr.split("STEP 2/3")[1].split("STEP 3/3")[0],
         f"a changed bound file runs the step again (its content is in the cache key): {r.stderr.strip()[-400:]}")

    for kind in ("tmpfs", "secret,id=x", "ssh"):
        r, _ = build(context(f"FROM {base}\nRUN true\nRUN --mount=type={kind},target=/x true\n"))
        c.ok(r.returncode != 0 and "Containerfile:3" in r.stderr and "not supported" in r.stderr,
             f"RUN --mount=type={kind} is refused naming its line: {r.stderr.strip()}")

    # COPY --from=STAGE through a read-only overlay of the stage's layers.
    r, out = build(context(f"""FROM {base} AS tools
RUN mkdir -p /out && echo built >/out/a && echo gone >/out/b
RUN rm /out/b && rm /etc/motd
FROM {base}
COPY --from=tools /out /copied
RUN --mount=type=bind,from=tools,source=/out,target=/t cat /t/a >/via-mount
"""))
    c.ok(r.returncode == 0, f"COPY --from a stage with deletions: {r.stderr.strip()[-400:]}")
    if r.returncode == 0:
        ls, _ = layers(out)
        c.ok(set(ls[1]) == {"copied", "copied/a"} and ls[1]["copied/a"][1] == b"built\n",
             f"... copies what the stage holds, not what it deleted: {sorted(ls[1])}")
        c.ok(ls[2].get("via-mount", (0, 0))[1] == b"built\n", f"a bind mount from the stage: {sorted(ls[2])}")
    # linux/arm/v7: the here-document's file and a cache mount reach an ARM
    # program run under qemu-arm (binfmt F).
    gcc = shutil.which("arm-linux-gnueabihf-gcc")
    misc = "/proc/sys/fs/binfmt_misc/qemu-arm"
    flags = [l for l in open(misc).read().splitlines() if l.startswith("flags:")] if os.path.exists(misc) else []
    if ARCH != "amd64" or not gcc or not flags or "F" not in flags[0]:
        print("(the arm/v7 case is skipped: needs an amd64 host, arm-linux-gnueabihf-gcc and qemu-arm registered "
              "with flag F; build_run_foreign registers it)")
    else:
        src = os.path.join(t.tmp, "append.c")
        with open(src, "w") as f:
            f.write('#include <stdio.h>\n#include <sys/utsname.h>\n'
                    '/* append DEST FILE...: the files\' text and the machine appended to DEST */\n'
                    'int main(int argc, char **argv) { struct utsname u; uname(&u);\n'
                    '  FILE *o = fopen(argv[1], "a"); if (!o) return 1; char b[256]; size_t n;\n'
                    '  for (int i = 2; i < argc; i++) { FILE *in = fopen(argv[i], "r"); if (!in) return 2;\n'
                    '    while ((n = fread(b, 1, sizeof b, in)) > 0) fwrite(b, 1, n, o); fclose(in); }\n'
                    '  fprintf(o, "%s\\n", u.machine); return fclose(o) != 0; }\n')
        subprocess.run([gcc, "-static", "-Os", "-o", src + ".arm", src], check=True)
        arm = Layout(os.path.join(t.tmp, "arm"))
        d, _ = arm.image([tar_layer([("bin", None), ("bin/append", open(src + ".arm", "rb").read())])], "arm")
        arm.tag(d, "1")
        # SHELL is the program: `RUN <<EOF` gives it /out, then the document's file.
        arm_cf = f"""FROM oci:{arm.path}:1
SHELL ["/bin/append", "/out"]
RUN <<EOF
a here-document
EOF
RUN --mount=type=cache,target=/c,id=arm ["/bin/append", "/c/log"]
RUN --mount=type=cache,target=/c,id=arm ["/bin/append", "/count", "/c/log"]
"""
        r1, _ = build(context(arm_cf), "--platform", "linux/arm/v7")
        r2, out = build(context(arm_cf), "--platform", "linux/arm/v7", "--no-cache")
        c.ok(r1.returncode == 0 and r2.returncode == 0, f"arm/v7 builds with a here-document and a cache mount: "
                                                         f"{r1.stderr.strip()[-300:]} {r2.stderr.strip()[-300:]}")
        if r2.returncode == 0:
            ls, _ = layers(out)
            got = ls[1].get("out", (0, 0))[1]
            c.ok(got == b"a here-document\narmv7l\n" and set(ls[1]) == {"out"},
                 f"an ARM program reads the here-document's file under qemu-arm: {sorted(ls[1])} {got!r}")
            count = ls[3].get("count", (0, 0))[1] or b""
            c.ok(count.count(b"armv7l") == 3 and not any(k.startswith("c") for k in ls[2]),
                 f"an ARM step's cache mount keeps what the previous build's steps wrote: {count!r} {sorted(ls[2])}")
    c.ok(not [l for l in open("/proc/self/mountinfo") if t.tmp in l], "no mount is left behind")
    c.ok(t.leftovers() == [], f"nothing is left behind: {t.leftovers()}")
finally:
    t.cleanup()
c.exit()

#!/usr/bin/python3
"""`berth build` against `podman build --format docker` (Debian's podman, with
--runtime runc) for the same Containerfiles without RUN, on a base built
here from a static busybox: the image config compared field by field (Env,
Entrypoint, Cmd, WorkingDir, User, ExposedPorts, Labels but podman's own
io.buildah.version, Healthcheck, StopSignal, Volumes) and the history of
the config-only steps (created_by, empty_layer), for this machine's platform
and a foreign one (linux/arm/v7: no RUN, so no emulation; berth's config
says arm/v7, podman 4.3's says its own architecture for FROM scratch, so
that one field is checked on berth's side only). Usage: build_podman_test.py BERTH"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_lib import *  # noqa

need("podman")
FIELDS = ["Env", "Entrypoint", "Cmd", "WorkingDir", "User", "ExposedPorts", "Labels", "Healthcheck", "StopSignal", "Volumes"]

CASES = {
    "every-config-instruction": """FROM scratch
ARG PORT=8080
ARG NAME
COPY busybox /bin/busybox
ENV APP=/srv/app GREETING="hello world"
ENV LEGACY old style value
ENV DERIVED=${APP}/bin:$PATH
WORKDIR $APP
WORKDIR sub/../data
USER 1000:1000
LABEL org.example.name="sensor ${NAME:-none}" version=1.0
LABEL "with space"=yes
EXPOSE $PORT 53/udp 9000-9001
VOLUME /data ["/logs"]
HEALTHCHECK --interval=5s --timeout=2s --start-period=1s --retries=2 CMD ["/bin/busybox", "true"]
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/busybox"]
CMD ["sh", "-c", "echo $GREETING"]
""",
    "shell-forms-and-resets": """FROM scratch AS base
COPY busybox /bin/busybox
CMD ["inherited"]
HEALTHCHECK CMD /bin/busybox true
FROM base
SHELL ["/bin/busybox", "sh", "-c"]
ENTRYPOINT exec /bin/busybox sleep 1
HEALTHCHECK NONE
""",
}

e = Env(sys.argv[1], "berth-build-podman-")
c = Checks()
# podman's state all in this test's directory: its storage, its run root,
# and libpod's tmp dir (by default shared with every other podman here).
pod = ["podman", "--root", os.path.join(e.tmp, "podroot"), "--runroot", os.path.join(e.tmp, "podrun"),
       "--tmpdir", os.path.join(e.tmp, "podtmp"), "--events-backend", "none", "--storage-driver", "vfs"]
try:
  for platform in (None, "linux/arm/v7"):
    pargs = ["--platform", platform] if platform else []
    ptag = "arm" if platform else "native"
    for case, text in CASES.items():
        name = f"{case} ({platform})" if platform else case
        ctx = e.context(case, text)
        rc, out, err = e.build(ctx, "-t", f"localhost/{case}:1", "--build-arg", "NAME=x", *pargs)
        if not c.ok(rc == 0, f"{name}: berth build"):
            print(err)
            continue
        berth_cfg = e.config(out)
        p = subprocess.run(pod + ["build", "--runtime", "runc", "--format", "docker", "--build-arg", "NAME=x", *pargs,
                                  "-t", f"localhost/{case}:{ptag}", ctx], capture_output=True, text=True)
        if not c.ok(p.returncode == 0, f"{name}: podman build"):
            print(p.stderr)
            continue
        p = subprocess.run(pod + ["image", "inspect", f"localhost/{case}:{ptag}"], capture_output=True, text=True)
        if not c.ok(p.returncode == 0, f"{name}: podman image inspect"):
            print(p.stderr)
            continue
        insp = json.loads(p.stdout)[0]
        if platform:
            c.eq((berth_cfg["architecture"], berth_cfg.get("variant")), ("arm", "v7"), f"{name}: the config's platform")
            # (podman 4.3 writes its own architecture for FROM scratch whatever --platform says; not compared)
        pc, bc = insp["Config"], berth_cfg["config"]
        for f in FIELDS:
            # podman inspect shows the Healthcheck beside the Config, not in it.
            want, got = (insp.get(f) if f == "Healthcheck" else pc.get(f)), bc.get(f)
            if f == "Labels" and want:
                want = {k: v for k, v in want.items() if k != "io.buildah.version"} or None
            if f == "Healthcheck" and want:
                want = {k: v for k, v in want.items() if v}
            c.eq(got, want, f"{name}: config {f} as podman's")
        # History: the config-only steps read the same (COPY's file hashes are each tool's own).
        ph = [(h.get("created_by"), bool(h.get("empty_layer"))) for h in insp["History"]]
        bh = [(h.get("created_by"), bool(h.get("empty_layer"))) for h in berth_cfg["history"]]
        c.eq(len(bh), len(ph), f"{name}: as many history entries as podman")
        for (bcb, bel), (pcb, pel) in zip(bh, ph):
            if "COPY" in pcb:
                c.ok(bcb.split(":")[0] == pcb.split(":")[0] and bel == pel, f"{name}: history of {pcb.split(' ')[3]}")
            else:
                c.eq((bcb, bel), (pcb, pel), f"{name}: history {pcb}")
        c.ok(all(h["created"] == "1970-01-01T00:00:00Z" for h in berth_cfg["history"]), f"{name}: history at the epoch")
        c.eq(berth_cfg["created"], "1970-01-01T00:00:00Z", f"{name}: created at the epoch")
finally:
    subprocess.run(pod + ["rmi", "-a", "-f"], capture_output=True)
    subprocess.run(["umount", "-R", os.path.join(e.tmp, "podroot")], capture_output=True)
    e.close()
c.exit()

#!/usr/bin/python3
"""ota::stage_revision against a real docker-registry on 127.0.0.1, through
the test-only stage_tool (parse_revision + stage_revision):

- a two-container revision, images pinned by digest, stages both bundles
  with the manifest's options in config.json (cwd, user, env, capabilities,
  memory, cpu, named volumes, network namespace or none);
- an image missing from the registry fails naming the container and leaves
  no bundle of that revision;
- a policy refusing the image leaves none either, nor does a device node
  the host lacks (its field named);
- remove_revision_bundles removes the bundles and keeps the volumes.

Usage: stage_registry_test.py STAGE_TOOL"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import *  # noqa

if os.geteuid() != 0:
    print("skipped: needs root (rootfs mounts)")
    sys.exit(77)
require_registry()
tool = os.path.abspath(sys.argv[1])
c = Checks()
tmp = tempfile.mkdtemp(prefix="berth-stagereg-")
os.chmod(tmp, 0o755)
reg = None
store = os.path.join(tmp, "store")
run_dir = os.path.join(tmp, "run")


def stage(manifest, *extra):
    path = os.path.join(tmp, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f)
    return subprocess.run([tool, store, path, "--run-dir", run_dir, *extra], capture_output=True, text=True,
                          timeout=120)


def bundles():
    d = os.path.join(store, "containers")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def config(id_):
    with open(os.path.join(store, "containers", id_, "config.json")) as f:
        return json.load(f)


def push(repo, marker):
    """Pushes a busybox image to `repo` on the registry; returns its pinned reference."""
    lay = Layout(os.path.join(tmp, "layout-" + repo.replace("/", "_")))
    layers = [busybox_layer(), tar_layer([("srv", None), ("srv/www", None), ("srv/www/index.html", marker.encode())])]
    _, body = lay.image(layers, "amd64", marker)
    m = json.loads(body)
    for d in [m["config"]] + m["layers"]:
        with open(os.path.join(lay.path, "blobs", "sha256", d["digest"][7:]), "rb") as f:
            reg.put_blob(repo, f.read())
    reg.put_manifest(repo, "v1", body)
    digest = reg.manifest_digest(repo, "v1")
    return f"{reg.host}/{repo}@{digest}"


def unmount_all():
    with open("/proc/self/mountinfo") as f:
        points = [l.split()[4] for l in f if f" {tmp}/" in l]
    for p in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", p], capture_output=True)


try:
    reg = Registry(tmp, "plain")
    accept = policy_file(os.path.join(tmp, "accept.json"), accept=True)
    web_image = push("app/web", "web")
    db_image = push("app/db", "db")
    manifest = {
        "version": 3,
        "name": "two containers",
        "containers": [
            {"name": "db", "image": db_image, "network": "host",
             "volumes": [{"name": "dbdata", "path": "/var/lib/db"}]},
            {"name": "web", "image": web_image, "depends_on": ["db"], "args": ["httpd", "-f"],
             "env": ["MODE=prod"], "workdir": "/srv/www", "user": "1000:1000",
             "capabilities": ["CAP_NET_ADMIN"], "resources": {"memory": "64m", "cpus": 0.5, "pids": 100},
             "volumes": [{"name": "content", "path": "/srv/www/data"},
                         {"name": "dbdata", "path": "/db", "readonly": True}],
             "health": {"kind": "ready"}},
        ],
    }

    # 1. Both bundles, with the manifest's options.
    r = stage(manifest, "--policy", accept)
    c.ok(r.returncode == 0, f"a two-container revision stages ({r.stderr.strip()})")
    c.ok(bundles() == ["db.r3", "web.r3"], f"both bundles exist ({bundles()})")
    if r.returncode == 0:
        w, d = config("web.r3"), config("db.r3")
        p = w["process"]
        c.ok(p["args"] == ["httpd", "-f"], "web: args replace Cmd")
        c.ok(p["cwd"] == "/srv/www", "web: cwd from workdir")
        c.ok(p["user"]["uid"] == 1000 and p["user"]["gid"] == 1000, "web: user 1000:1000")
        c.ok("MODE=prod" in p["env"], "web: env")
        c.ok("NOTIFY_SOCKET=/run/berth-notify/notify.sock" in p["env"], "web: NOTIFY_SOCKET for its ready check")
        c.ok(all("CAP_NET_ADMIN" in p["capabilities"][s] for s in ("bounding", "effective", "permitted")),
             "web: the extra capability in every set")
        c.ok("CAP_CHOWN" in p["capabilities"]["bounding"], "web: the default set stays")
        res = w["linux"]["resources"]
        c.ok(res.get("memory", {}).get("limit") == 64 << 20, "web: memory limit 64 MiB")
        c.ok(res.get("cpu") == {"quota": 50000, "period": 100000}, "web: cpu 0.5 -> 50 ms per 100 ms")
        c.ok(res["pids"]["limit"] == 100, "web: pids limit")
        mounts = {m["destination"]: m for m in w["mounts"]}
        vols = os.path.join(store, "volumes")
        c.ok(mounts.get("/srv/www/data", {}).get("source") == os.path.join(vols, "content"), "web: named volume mounted")
        c.ok("ro" in mounts.get("/db", {}).get("options", []), "web: a read-only named volume")
        c.ok(mounts.get("/run/berth-notify", {}).get("source") == os.path.join(run_dir, "notify", "web.r3"),
             "web: the notify directory bind-mounted")
        c.ok(os.path.isdir(os.path.join(run_dir, "notify", "web.r3")), "web: the notify directory exists")
        c.ok(any(n["type"] == "network" for n in w["linux"]["namespaces"]), "web: own network namespace")
        c.ok(not any(n["type"] == "network" for n in d["linux"]["namespaces"]), "db: host network, no netns")
        c.ok(w["annotations"].get("berth.revision") == "3" and w["annotations"].get("berth.app") == "web",
             "web: revision and app annotations")
        c.ok(w["annotations"].get("berth.image") == web_image, "web: the pinned image annotation")
        c.ok(os.path.isdir(os.path.join(vols, "content")) and os.path.isdir(os.path.join(vols, "dbdata")),
             "named volumes created")
        st = os.stat(os.path.join(vols, "content"))
        c.ok((st.st_uid, st.st_gid) == (1000, 1000), "a new volume at a path the image lacks is the user's")
        c.ok(os.path.exists(os.path.join(store, "containers", "web.r3", "rootfs", "srv", "www", "index.html")),
             "web: the rootfs holds the image's files")
        with open(os.path.join(vols, "dbdata", "keep"), "w") as f:
            f.write("precious")

    # Staging the same revision again keeps the bundles.
    r = stage(manifest, "--policy", accept)
    c.ok(r.returncode == 0 and bundles() == ["db.r3", "web.r3"], "staging again keeps the bundles")

    # 2. An image missing from the registry: the container named, no bundle of the revision.
    missing = json.loads(json.dumps(manifest))
    missing["version"] = 4
    missing["containers"][1]["image"] = f"{reg.host}/app/gone@sha256:" + "ab" * 32
    r = stage(missing, "--policy", accept)
    c.ok(r.returncode != 0 and "stage `web`" in r.stderr, f"a missing image names the container ({r.stderr.strip()})")
    c.ok(not [b for b in bundles() if b.endswith(".r4")], f"no bundle of the failed revision ({bundles()})")
    c.ok(bundles() == ["db.r3", "web.r3"], "the staged revision's bundles are untouched")
    c.ok(not os.path.exists(os.path.join(run_dir, "notify", "web.r4")), "nor its notify directory")

    # 3. A policy refusing the image: none either.
    reject = os.path.join(tmp, "reject.json")
    with open(reject, "w") as f:
        json.dump({"default": [{"type": "insecureAcceptAnything"}],
                   "transports": {"docker": {f"{reg.host}/app/web": [{"type": "reject"}]}}}, f)
    refused = json.loads(json.dumps(manifest))
    refused["version"] = 5
    r = stage(refused, "--policy", reject)
    c.ok(r.returncode != 0 and "stage `web`" in r.stderr, f"a refused image names the container ({r.stderr.strip()})")
    c.ok(not [b for b in bundles() if b.endswith(".r5")], f"no bundle of the refused revision ({bundles()})")

    # A device node the host lacks: the field named, nothing staged.
    nodev = json.loads(json.dumps(manifest))
    nodev["version"] = 6
    nodev["containers"][1]["devices"] = [{"path": "/dev/berth-no-such-device"}]
    r = stage(nodev, "--policy", accept)
    c.ok(r.returncode != 0 and "containers[1].devices[0]" in r.stderr,
         f"a missing device names its field ({r.stderr.strip()})")
    c.ok(not [b for b in bundles() if b.endswith(".r6")], f"no bundle of that revision ({bundles()})")

    # 4. Removal: bundles gone (and unmounted), volumes kept.
    r = stage(manifest, "--remove")
    c.ok(r.returncode == 0 and bundles() == [], f"remove_revision_bundles removes both ({r.stderr.strip()})")
    with open("/proc/self/mountinfo") as f:
        c.ok(os.path.join(store, "containers") not in f.read(), "no rootfs mount left")
    keep = os.path.join(store, "volumes", "dbdata", "keep")
    c.ok(os.path.exists(keep) and open(keep).read() == "precious", "the volumes stay")
finally:
    if reg:
        reg.stop()
    unmount_all()
    shutil.rmtree(tmp, ignore_errors=True)
c.exit()

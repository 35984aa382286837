"""Shared helpers of the `berth daemon` system tests (run with /usr/bin/python3).

Real components only: Debian's docker-registry on 127.0.0.1 holding a small
busybox image (pinned by digest in the manifests), `berth daemon` started
as a child subreaper with a temporary device root (--store) and run
directory (--root), and every check made from outside: the runtime's
container list, the state files, mountinfo, cgroups, the volume's files.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "image", "tests"))
from remote_lib import Layout, Registry, RunSetup, busybox_layer, tar_layer  # noqa: E402

SRC = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def poll(cond, timeout=20.0, step=0.05):
    """Polls `cond` until it returns a true value (returned) or `timeout` passes (None)."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            return None
        time.sleep(step)


def updater_failpoints():
    """The updater's failpoint names of app-only updates, from
    ota/updater.hpp's kFailpoints (the system path's, ota.system-*, need a
    board with slots: daemon_system_test.py), and staging's (ota/stage.cpp:
    they fire in the staging child)."""
    text = open(os.path.join(SRC, "ota", "updater.hpp")).read()
    m = re.search(r"kFailpoints\[\]\s*=\s*\{(.*?)\};", text, re.S)
    names = [n for n in re.findall(r'"(ota\.[a-z0-9.-]+)"', m.group(1)) if not n.startswith("ota.system-")] if m else []
    stage = open(os.path.join(SRC, "ota", "stage.cpp")).read()
    return names + [n for n in re.findall(r'failpoint\("(ota\.[a-z0-9.-]+)"\)', stage) if n not in names]


class DaemonEnv(RunSetup):
    """A registry with the test image, a device root, a run directory, and
    the daemon (start, kill, stop). Needs root and docker-registry, else
    exits 77 (RunSetup)."""

    def __init__(self, prefix):
        super().__init__(prefix)
        self.exe = self.berth_bin
        # Container names unique to the run: the cgroups checked for strays
        # are this run's only (other tests may run at the same time).
        self.db, self.web = f"db-{self.tag[:6]}", f"web-{self.tag[:6]}"
        self.run_dir = os.path.join(self.tmp, "run")
        self.runtime = os.path.join(self.run_dir, "runtime")
        os.makedirs(self.store)
        with open(os.path.join(self.store, "policy.json"), "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        self.daemon = None
        self.reg = Registry(self.tmp, "registry")
        lay = Layout(os.path.join(self.tmp, "layout"))
        app = tar_layer([("www", None), ("www/index.html", b"ok\n"), ("tmp", None), ("data", None)])
        desc, _ = lay.image([busybox_layer(), app], "amd64", self.tag)
        lay.tag(desc, "1")
        ref = f"{self.reg.host}/{self.tag}/app:1"
        r = self.berth("image", "push", "--quiet", f"oci:{lay.path}:1", ref)
        if r.returncode != 0:
            raise RuntimeError(f"push: {r.stderr}")
        self.image = f"{self.reg.host}/{self.tag}/app@{desc['digest']}"
        self.missing_image = f"{self.reg.host}/{self.tag}/missing@sha256:{'0' * 64}"

    # ---- berth
    def berth(self, *args, input=None, timeout=180, env=None):
        return subprocess.run([self.exe, "--root", self.run_dir, "--store", self.store, *args], capture_output=True,
                              text=True, input=input, timeout=timeout, env=env)

    def start_daemon(self, failpoints=None):
        env = dict(os.environ)
        env.pop("BERTH_FAILPOINTS", None)
        if failpoints:
            env["BERTH_FAILPOINTS"] = failpoints
        self.daemon = subprocess.Popen([self.exe, "--root", self.run_dir, "daemon", "--store", self.store], env=env,
                                       stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "daemon.stderr"), "a"))
        ok = poll(lambda: self.daemon.poll() is not None or self.berth("daemon", "status").returncode == 0, 30)
        return ok and self.daemon.poll() is None

    def daemon_status(self):
        r = self.berth("daemon", "status", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_idle(self, timeout=60):
        """Until the daemon answers and its updater is not busy (resume done)."""
        def idle():
            r = self.berth("update", "status", "--json")
            return r.returncode == 0 and json.loads(r.stdout).get("daemon") and not json.loads(r.stdout).get("busy")
        return poll(idle, timeout, 0.1)

    def kill_daemon(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        self.daemon = None

    def stop_daemon(self, timeout=60):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        rc = self.daemon.returncode if self.daemon else None
        self.daemon = None
        return rc

    # ---- manifests
    def manifest(self, version, containers, window="20s"):
        return json.dumps({"version": version, "name": f"test {version}", "health_window": window,
                           "containers": containers})

    def apply(self, manifest, *flags, timeout=180):
        return self.berth("update", "apply", *flags, "-", input=manifest, timeout=timeout)

    def update_status(self):
        r = self.berth("update", "status", "--json")
        return json.loads(r.stdout) if r.returncode == 0 else None

    # ---- what runs, seen from outside
    def containers(self):
        """{id: (status, pid)} of the runtime's containers in the daemon's state root."""
        r = subprocess.run([self.exe, "--root", self.runtime, "list", "--format", "json"], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.strip():
            return {}
        return {c["id"]: (c["status"], c.get("pid", 0)) for c in json.loads(r.stdout) or []}

    def running(self):
        return sorted(i for i, (s, _) in self.containers().items() if s == "running")

    def bundles(self):
        d = os.path.join(self.store, "containers")
        return sorted(n for n in os.listdir(d) if not n.startswith(".")) if os.path.isdir(d) else []

    def mounts(self):
        with open("/proc/self/mountinfo") as f:
            return [line.split()[4] for line in f if line.split()[4].startswith(self.tmp)]

    def cgroups(self, ids=None):
        """Container cgroups of this run's containers (<db or web>.r<version>)."""
        out = []
        for d in glob.glob("/sys/fs/cgroup/*/berth/*") + glob.glob("/sys/fs/cgroup/berth/*") + \
                glob.glob("/sys/fs/cgroup/unified/berth/*"):
            name = os.path.basename(d)
            if os.path.isdir(d) and re.fullmatch(rf"({self.db}|{self.web})\.r[0-9]+", name) and (ids is None or name in ids):
                out.append(d)
        return out

    def volume_file(self, volume, name):
        p = os.path.join(self.store, "volumes", volume, name)
        return open(p).read() if os.path.exists(p) else None

    def daemon_log_tail(self, n):
        p = os.path.join(self.store, "daemon.log")
        return "".join(open(p, errors="replace").readlines()[-n:]) if os.path.exists(p) else "(no daemon.log)"

    def fsck_clean(self):
        r = self.berth("image", "fsck", "--check")
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    # ---- the end
    def cleanup(self):
        try:
            self.stop_daemon(30)
        except Exception:
            self.kill_daemon()
        for cid in list(self.containers()):
            subprocess.run([self.exe, "--root", self.runtime, "delete", "-f", cid], capture_output=True)
        for m in sorted(self.mounts(), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if self.reg:
            self.reg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def service(name, image, args, **kw):
    c = {"name": name, "image": image, "args": args}
    c.update(kw)
    return c


# A shell loop that ends on SIGTERM at once (sh as a container's PID 1
# ignores signals it has no trap for).
def sh_service(name, image, script, **kw):
    return service(name, image, ["/bin/sh", "-c", f"trap 'exit 0' TERM; {script}"], **kw)


def good_revision(env, version, window="20s"):
    """db (a volume) then web (depends on db, http health on 8080)."""
    vol = [{"name": "data", "path": "/data"}]
    db = sh_service(env.db, env.image, f"echo db {version} >> /data/order; echo db up; "
                    "while :; do busybox sleep 1; done", restart="always", volumes=vol, stop_grace="2s")
    web = sh_service(env.web, env.image, f"echo web {version} >> /data/order; busybox httpd -p 127.0.0.1:8080 -h /www; "
                     "while :; do busybox sleep 1; done", restart="always", depends_on=[env.db], volumes=vol,
                     stop_grace="2s",
                     health={"kind": "http", "port": 8080, "path": "/index.html", "interval": "200ms",
                             "timeout": "1s", "retries": 2})
    return env.manifest(version, [db, web], window)


def broken_revision(env, version, window="20s"):
    """web's health check asks for a page that does not exist (404)."""
    doc = json.loads(good_revision(env, version, window))
    doc["containers"][1]["health"]["path"] = "/missing.html"
    return json.dumps(doc)


def crashloop_revision(env, version, window="60s"):
    """web exits 1 at once, restarted always."""
    doc = json.loads(good_revision(env, version, window))
    doc["containers"][1]["args"] = ["/bin/sh", "-c", "exit 1"]
    return json.dumps(doc)


def missing_image_revision(env, version):
    doc = json.loads(good_revision(env, version))
    doc["containers"][1]["image"] = env.missing_image
    return json.dumps(doc)


def start_committed(env, c, version=1):
    """Starts the daemon and has good_revision(version) committed."""
    c.ok(env.start_daemon(), "the daemon starts")
    r = env.apply(good_revision(env, version))
    c.ok(r.returncode == 0, f"revision {version} committed: {r.stderr}")


def ids_of(env, version):
    return sorted([f"{env.db}.r{version}", f"{env.web}.r{version}"])


def check_invariant(env, c, versions, what, marker=None):
    """Exactly one of `versions` (old, new) runs, fully; nothing else is
    left: no stray container, cgroup, mount or bundle; the volume's marker
    intact; the store fsck-clean. Returns the running version."""
    st = env.update_status()
    cur = st and st["current"] and st["current"]["version"]
    ok_state = st is not None and cur in versions and st["trying"] is None and st["staging"] is None
    c.ok(ok_state, f"{what}: the state says current is one of {versions}, nothing trying or staging: {st}")
    if not ok_state:
        return None
    want = ids_of(env, cur)
    # One condition, polled: the revision's containers, all running, and no
    # other container. A restart in progress is no failure (a container the
    # killed daemon had sent its stop signal is adopted, exits, and is
    # restarted: for a moment it is missing), a stray or a missing container
    # stays so for the whole bound.
    def exactly():
        now = env.containers()
        return now if set(now) == set(want) and all(s == "running" for s, _ in now.values()) else None
    now = poll(exactly, 30)
    if now is not None:
        c.ok(True, f"{what}: exactly revision {cur} runs, fully, and no other container: {sorted(now)}")
    else:  # say what the daemon thinks of them (restarts and why) and what it logged
        ps = env.berth("ps", "--json")
        c.ok(False, f"{what}: exactly revision {cur} runs, fully, and no other container: {env.containers()}; "
                    f"berth ps: {ps.stdout.strip() or ps.stderr.strip()}")
        print(f"{what}: the daemon's log, last 60 lines:\n{env.daemon_log_tail(60)}", flush=True)
    prev = st["previous"]["version"] if st["previous"] else None
    allowed = set(want) | (set(ids_of(env, prev)) if prev else set())
    c.ok(set(env.bundles()) <= allowed, f"{what}: no stray bundle: {env.bundles()} (allowed {sorted(allowed)})")
    stray_mounts = [m for m in env.mounts()
                    if not any(m.startswith(os.path.join(env.store, "containers", i)) for i in allowed)]
    c.ok(not stray_mounts, f"{what}: no stray mount: {stray_mounts}")
    stray_cg = [g for g in env.cgroups() if os.path.basename(g) not in want]
    c.ok(not stray_cg, f"{what}: no stray cgroup: {stray_cg}")
    if marker is not None:
        c.ok(env.volume_file("data", "marker") == marker, f"{what}: the volume's file is intact")
    clean, out = env.fsck_clean()
    c.ok(clean, f"{what}: berth image fsck --check is clean: {out}")
    return cur

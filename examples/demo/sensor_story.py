#!/usr/bin/python3
"""The sensor-update story (DESIGN.md's motivating scenario), end to end on
one machine: what `./run.sh demo` shows.

    examples/demo/sensor_story.py [--berth build/berth] [--armhf-berth build-armhf/berth] [--keep DIR]
    examples/demo/sensor_story.py --check      only check the pieces (the meson test demo_story_check):
                                               the scripts parse, their files exist; says what is missing

1. Build the sensor app (examples/sensor/) 1.0, 2.0 and 3.0 for linux/arm/v7
   with `berth build` (its RUN step under qemu-arm through binfmt_misc),
   push them to a local docker-registry and sign them (`--push --sign-key`).
2. The fleet controller: `berth fleet init` (a TUF repository), nginx
   serving it on 127.0.0.1, mosquitto with TLS client certificates and the
   fleet's ACL (docs/fleet-mqtt.md), `berth fleet release` of the 1.0
   manifest on the channel `stable` (docs/fleet.md), then `berth fleet
   publish` of the new timestamp (after every release).
3. The gateway: qemu-system-arm (-M virt, Debian's armmp kernel) whose
   /init (gateway_init.sh) execs the armhf `berth daemon --init` as PID 1,
   with a state disk holding the device root: a trust policy requiring the
   demo's signing key, the fleet's TUF root and the agent's configuration
   (fleet/agent.json, docs/fleet-agent.md). Its only network is QEMU's user
   network restricted to the host (restrict=on): guestfwd makes the
   registry, nginx and the broker appear at 10.0.2.100, nothing else is
   reachable, and
   a hostfwd brings the sensor's port 8080 to 127.0.0.1 here. The agent
   follows the channel and installs 1.0.
4. Release 2.0: the gateway pulls only the layers 1.0 does not have (the
   registry's access log says which blobs it served), switches, passes its
   health check and commits; the humidity reading, fetched from the device.
5. Release 3.0: its health check fails and the gateway rolls back to 2.0 by
   itself.
6. Replay 1.0: the controller refuses to release it again; a mirror that
   serves the old repository (1.0 on the channel) is refused by the device's
   TUF client; `berth update apply` of the 1.0 manifest on the device is
   refused as a downgrade.
7. `berth update history`, read on the device's console; then poweroff.

Every event is printed as it happens, with the time since the start; the
gateway's events are its agent's status reports, read from the broker and
from its outbox (through the console shell). A table of durations ends it. A piece that is missing (a command berth does not
have yet, a tool not installed) is said in one line (`NOT SHOWN: ...`), and
the story goes on with what works; nothing is simulated. Exits 1 when a
step that ran failed, 0 otherwise (the missing pieces are listed at the end).

Needs root (binfmt_misc, the builds' mounts), docker-registry, nginx,
qemu-system-arm, qemu-user-static, e2fsprogs, openssl; the armhf berth
(`meson compile -C build-armhf`), the kernel (qemu-tests/fetch-kernel.sh
armhf) and the busybox base image (cross/make-base-image.sh busybox armhf).
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
for d in ("qemu-tests", os.path.join("image", "tests"), os.path.join("ota", "tests"), os.path.join("src", "tests")):
    sys.path.insert(0, os.path.join(TOP, d))

from host_services import GUEST_HOST, FleetRepo, agent_config, device_root, signed_policy, user_netdev  # noqa: E402

VERSIONS = ["1.0", "2.0", "3.0"]
CHANNEL = "stable"
FLEET = "demo"
DEVICE = "gw-0001"
DISK_ROOT = "/mnt/disk/berth"  # the device root in the guest (gateway_init.sh)


class Failed(Exception):
    """A step that ran and did not do what it should."""


class Story:
    def __init__(self):
        self.t0 = time.monotonic()
        self.step_t0 = self.t0
        self.missing = []
        self.failed = []
        self.timings = []  # (what, seconds)

    def now(self):
        return time.monotonic() - self.t0

    def step(self, title):
        self.step_t0 = time.monotonic()
        print(f"\n== {title}  [{self.now():.1f} s]", flush=True)

    def say(self, text):
        print(f"  [{self.now():6.1f} s] {text}", flush=True)

    def took(self, what, since):
        s = time.monotonic() - since
        self.timings.append((what, s))
        return s

    def not_shown(self, what):
        self.missing.append(what)
        print(f"  NOT SHOWN: {what}", flush=True)

    def fail(self, what):
        self.failed.append(what)
        print(f"  FAILED: {what}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---------------------------------------------------------------- the pieces

class Pieces:
    """What the story needs, found or named as missing."""

    def __init__(self, args, story):
        self.story = story
        self.berth = os.path.abspath(args.berth)
        self.armhf_berth = os.path.abspath(args.armhf_berth)
        self.kernel_dir = os.path.join(TOP, ".sysroot", "armhf-kernel")
        self.sysroot = os.path.join(TOP, ".sysroot", "armhf")
        self.base = os.path.join(TOP, ".sysroot", "images", "busybox")
        self.has = {}

    def command(self, *words):
        """berth has this command (its help does not say `unknown command`)."""
        r = run([self.berth, *words, "--help"])
        return "unknown command" not in (r.stderr + r.stdout)

    def check(self):
        s = self.story
        ok = True
        for f in ("examples/sensor/Containerfile", "examples/sensor/sensor", "examples/demo/gateway_init.sh",
                  "qemu-tests/daemon_scenario.sh",
                  "qemu-tests/mkinitramfs.py", "qemu-tests/console.py", "image/tests/remote_lib.py",
                  "ota/tests/fleet_repo_lib.py"):
            if not os.path.isfile(os.path.join(TOP, f)):
                s.say(f"missing from the checkout: {f}")
                ok = False
        # The shell scripts the story runs parse (run.sh's demo, the gateway's /init).
        for shell, script in (("bash", "run.sh"), ("sh", "examples/demo/gateway_init.sh")):
            r = run([shell, "-n", os.path.join(TOP, script)])
            if r.returncode != 0:
                s.say(f"{script} does not parse: {last_line(r.stderr)}")
                ok = False
        tools = {"docker-registry": "docker-registry", "nginx": "nginx", "qemu-system-arm": "qemu-system-arm",
                 "qemu-arm-static": "qemu-user-static", "mke2fs": "e2fsprogs", "openssl": "openssl",
                 "busybox": "busybox-static"}
        for tool, pkg in tools.items():
            self.has[tool] = bool(shutil.which(tool) or os.path.exists(f"/usr/sbin/{tool}"))
            if not self.has[tool]:
                s.not_shown(f"{tool} is not installed (apt-get install {pkg})")
        self.has["berth"] = os.access(self.berth, os.X_OK)
        if not self.has["berth"]:
            s.not_shown(f"{self.berth} is not built (meson compile -C build)")
            return False
        self.has["build"] = self.command("build")
        if not self.has["build"]:
            s.not_shown("`berth build` is not in this berth (issue 13's builder)")
        self.has["fleet-repo"] = self.command("fleet", "init")
        if not self.has["fleet-repo"]:
            s.not_shown("`berth fleet init|release` is not in this berth (issue 11's controller)")
        self.has["base"] = os.path.isfile(os.path.join(self.base, "index.json"))
        if not self.has["base"]:
            s.not_shown(f"no busybox base image in {self.base} (cross/make-base-image.sh busybox armhf)")
        self.has["armhf"] = os.access(self.armhf_berth, os.X_OK)
        if not self.has["armhf"]:
            s.not_shown(f"{self.armhf_berth} is not built (run.sh builds it: meson compile -C build-armhf)")
        order = os.path.join(self.kernel_dir, "modules", "load-order")
        self.has["kernel"] = os.path.isfile(os.path.join(self.kernel_dir, "vmlinuz")) and os.path.isfile(order)
        self.has["net"] = self.has["kernel"] and "virtio_net.ko" in open(order).read().split()
        if not self.has["kernel"]:
            s.not_shown(f"no armhf kernel in {self.kernel_dir} (qemu-tests/fetch-kernel.sh armhf)")
        elif not self.has["net"]:
            s.not_shown(f"the kernel in {self.kernel_dir} has no virtio_net module (qemu-tests/fetch-kernel.sh armhf again)")
        if self.has["armhf"]:
            r = run(["qemu-arm-static", "-L", self.sysroot, self.armhf_berth, "fleet", "--help"]) \
                if self.has["qemu-arm-static"] else None
            self.has["agent"] = r is not None and "unknown command" not in (r.stdout + r.stderr)
            if not self.has["agent"]:
                s.not_shown("the armhf berth has no fleet commands: it is older than the fleet agent (rebuild build-armhf)")
        return ok

    def gateway_ready(self):
        return all(self.has.get(k) for k in ("armhf", "agent", "kernel", "net", "qemu-system-arm", "mke2fs",
                                            "busybox", "fleet-repo", "nginx"))


# ---------------------------------------------------------------- host side

def binfmt_arm(story):
    """qemu-arm registered in binfmt_misc with the F flag (berth build's RUN
    under emulation); sets it up as the build tests do when it is not.
    Returns what is wrong, or None."""
    mnt = "/proc/sys/fs/binfmt_misc"
    if not os.path.exists(os.path.join(mnt, "register")):
        r = run(["mount", "-t", "binfmt_misc", "binfmt_misc", mnt])
        if r.returncode != 0:
            return f"binfmt_misc cannot be mounted: {last_line(r.stderr)}"
        story.say("mounted binfmt_misc (it was not)")
    if not os.path.exists(os.path.join(mnt, "qemu-arm")):
        conf = "/usr/lib/binfmt.d/qemu-arm.conf"
        if not os.path.isfile(conf):
            return f"{conf} is missing (apt-get install qemu-user-static)"
        with open(conf) as f, open(os.path.join(mnt, "register"), "w") as reg:
            reg.write(f.read().strip())
        story.say(f"registered qemu-arm in binfmt_misc ({conf})")
    with open(os.path.join(mnt, "qemu-arm")) as f:
        entry = dict(line.split(" ", 1) for line in f.read().splitlines() if " " in line)
    story.say(f"RUN steps of arm images run under {entry.get('interpreter', '?')} "
              f"(binfmt_misc flags {entry.get('flags:', '?').strip()})")
    return None


def manifest_layers(registry, repo, digest):
    """(config digest, [layer digests]) of a manifest in the registry."""
    body, _ = registry.get(f"/v2/{repo}/manifests/{digest}", accept="application/vnd.oci.image.manifest.v1+json")
    m = json.loads(body)
    return m["config"]["digest"], [layer["digest"] for layer in m["layers"]]


def short(digest):
    return digest.split(":", 1)[-1][:12]


def served_blobs(log_path, offset):
    """The blob digests the registry answered a GET for with 200 since
    `offset` in its access log, in order, each once."""
    out = []
    with open(log_path, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = re.search(r'"GET /v2/[^ ]*/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 200', line)
            if m and m.group(1) not in out:
                out.append(m.group(1))
    return out


def manifest_json(version, image, number):
    """The update manifest of sensor VERSION (docs/update-manifest.md): one
    container on the device's network (so QEMU's hostfwd reaches port 8080),
    an http health check on /health."""
    return json.dumps({
        "version": number, "name": f"sensor {version}", "health_window": "90s",
        "containers": [{
            "name": "sensor", "image": image, "restart": "always", "network": "host", "stop_grace": "3s",
            "health": {"kind": "http", "port": 8080, "path": "/health", "interval": "1s", "timeout": "3s",
                       "retries": 3},
        }],
    }, indent=1) + "\n"


# ---------------------------------------------------------------- the gateway

class Gateway:
    """The emulated gateway: qemu-system-arm with the serial console on a
    pipe; the console shell (gateway_init.sh) runs one command a line."""

    def __init__(self, cmd, log_path, timeout):
        from daemon_scenario_test import Machine

        class QuietMachine(Machine):
            """The scenario test's machine, its console written to a file
            instead of the terminal."""

            def _read(self):
                with open(log_path, "w") as log:
                    for raw in self.proc.stdout:
                        line = raw.decode(errors="replace").rstrip("\r\n")
                        t = self.now()
                        log.write(f"[{t:6.1f}] {line}\n")
                        log.flush()
                        with self.cond:
                            self.lines.append((t, line))
                            self.cond.notify_all()
                with self.cond:
                    self.cond.notify_all()

        self.m = QuietMachine(cmd, timeout)

    def sh(self, command, timeout=120):
        status, out = self.m.run(command, timeout)
        if status is None:
            raise Failed(f"the gateway's console did not answer `{command}` within {timeout} s")
        return status, out

    def send(self, command):
        """Types a command without waiting for its answer (poweroff)."""
        self.m.proc.stdin.write(f"x {command}\n".encode())
        self.m.proc.stdin.flush()

    def reports(self):
        """The agent's status reports so far (its outbox: no broker)."""
        _, out = self.sh(f"cat {DISK_ROOT}/fleet/outbox 2>/dev/null", 60)
        reps = []
        for line in out:
            try:
                reps.append(json.loads(line))
            except ValueError:
                pass
        return reps


def report_words(r, names):
    """A status report in words."""
    dep = r.get("deployment") or ""
    what = names.get(dep, r.get("detail") or "")
    state = r.get("state")
    detail = r.get("detail") or ""
    return {
        "idle": f"agent up; committed revision {r.get('committed')}",
        "downloading": f"{what}: new on the channel, pulling its images",
        "staged": f"{what}: images pulled and verified, containers created",
        "trying": f"{what}: switched, running on probation (health checks)",
        "committed": f"{what}: healthy, committed",
        "rolled-back": f"{what}: rolled back ({detail})",
        "refused": f"refused: {detail}",
    }.get(state, f"{state}: {detail}")


class Watch:
    """Prints the gateway's new status reports until one matches: those the
    broker relayed (when there is one) and those still in its outbox (read
    on its console), each once."""

    def __init__(self, story, gw, names, subscriber=None):
        self.story, self.gw, self.names, self.sub = story, gw, names, subscriber
        self.seen = set()

    def mqtt_reports(self):
        reps = []
        for _, payload, _ in (self.sub.messages() if self.sub else []):
            try:
                r = json.loads(payload)
            except ValueError:
                continue
            if isinstance(r, dict) and "state" in r:  # not the will ({"online": false})
                reps.append(r)
        return reps

    def until(self, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for how, reps in (("MQTT", self.mqtt_reports()), ("its outbox", self.gw.reports())):
                for r in sorted(reps, key=lambda r: r.get("seq") or 0):
                    key = (r.get("seq"), r.get("deployment"))
                    if key in self.seen:
                        continue
                    self.seen.add(key)
                    self.story.say(f"gateway (report #{r.get('seq')} via {how}): {report_words(r, self.names)}")
                    if pred(r):
                        return r
            time.sleep(1)
        raise Failed(f"{what}: no such report from the gateway within {timeout} s")


def reading(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as resp:
            return resp.read().decode().strip()
    except OSError as e:
        return f"(no answer: {e})"


# ---------------------------------------------------------------- the story

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--berth", default=os.path.join(TOP, "build", "berth"))
    ap.add_argument("--armhf-berth", default=os.path.join(TOP, "build-armhf", "berth"))
    ap.add_argument("--keep", metavar="DIR", help="work in DIR and keep it (logs, disk image, repository)")
    ap.add_argument("--check", action="store_true", help="only check the pieces; exit 0 unless the checkout lacks a file")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the gateway is killed")
    args = ap.parse_args()
    story = Story()
    pieces = Pieces(args, story)
    if args.check:
        ok = pieces.check()
        print("sensor story: " + ("every piece is there" if ok and not story.missing else
                                  f"{len(story.missing)} piece(s) missing, the demo says so and goes on"))
        return 0 if ok else 1

    print("The sensor-update story: an ARM gateway follows its fleet channel from sensor 1.0 to 2.0, "
          "refuses a broken 3.0 and a replayed 1.0.")
    pieces.check()
    if not pieces.has.get("berth"):
        return 1
    if os.geteuid() != 0:
        story.not_shown("not root: berth build and the registry steps need root (mounts, binfmt_misc)")
        return 1

    tmp = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="berth-story.")
    os.makedirs(tmp, exist_ok=True)
    cleanups = []
    try:
        rc = tell(story, pieces, tmp, cleanups, args)
    finally:
        for c in reversed(cleanups):
            try:
                c()
            except Exception as e:  # a clean-up's failure must not hide the story's
                print(f"clean-up: {e}")
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print("\n== timings")
    for what, s in story.timings:
        print(f"  {s:7.1f} s  {what}")
    print(f"  {story.now():7.1f} s  the whole story")
    if story.missing:
        print("\nNot shown (missing pieces):")
        for m in story.missing:
            print(f"  - {m}")
    if story.failed:
        print("\nFailed:")
        for f in story.failed:
            print(f"  - {f}")
    return 1 if story.failed or rc else 0


def tell(story, pieces, tmp, cleanups, args):
    from remote_lib import Registry
    berth = pieces.berth

    # ---- 1. the images
    story.step("1. the sensor app 1.0, 2.0, 3.0 for linux/arm/v7: berth build (RUN under qemu-arm), pushed and signed")
    key = os.path.join(tmp, "sensor-key.pem")
    pub = os.path.join(tmp, "sensor-key.pub")
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key], check=True)
    subprocess.run(["openssl", "ec", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
    registry = Registry(tmp, "registry")
    cleanups.append(registry.stop)
    repo = "demo/sensor"
    story.say(f"docker-registry on {registry.host}; signing key: ECDSA P-256 ({os.path.basename(pub)})")
    digests = {}
    if not (pieces.has.get("build") and pieces.has.get("base")):
        story.not_shown("the images (berth build or the base image is missing): the rest of the story needs them")
        return 0
    problem = binfmt_arm(story)
    if problem:
        story.not_shown(f"RUN under qemu-arm: {problem}")
        return 0
    store = os.path.join(tmp, "build-store")
    layers = {}
    for v in VERSIONS:
        t = time.monotonic()
        ref = f"{registry.host}/{repo}:{v}"
        r = run([berth, "build", "--store", store, "--platform", "linux/arm/v7", "--build-arg", f"VERSION={v}",
                 "--build-arg", f"BASE=oci:{pieces.base}:latest", "-t", ref, "--push", "--sign-key", key,
                 os.path.join(TOP, "examples", "sensor")])
        secs = story.took(f"berth build sensor {v} (linux/arm/v7) + push + sign", t)
        if r.returncode != 0:
            story.fail(f"berth build of sensor {v}: {last_line(r.stderr)}")
            return 1
        digest = last_line(r.stdout)
        digests[v] = digest
        steps = [line for line in r.stderr.splitlines() if line.startswith("STEP")]
        cached = sum("Using cache" in line for line in r.stderr.splitlines())
        config, layers[v] = manifest_layers(registry, repo, digest)
        cfg = json.loads(registry.get(f"/v2/{repo}/blobs/{config}")[0])
        platform = "/".join(x for x in (cfg.get("os"), cfg.get("architecture"), cfg.get("variant")) if x)
        story.say(f"sensor {v}: {digest} ({platform}) in {secs:.1f} s ({len(steps)} steps, {cached} from the "
                  f"cache), {len(layers[v])} layers; pushed and signed as {ref}")
    for v in VERSIONS[1:]:
        shared = [x for x in layers[v] if x in layers["1.0"]]
        story.say(f"sensor {v} shares {len(shared)} of its {len(layers[v])} layers with 1.0 (the busybox base, "
                  f"the app); the RUN step's layer (the version file) is its own")
    story.say("the same Containerfile again: " + rebuild_note(story, berth, store, pieces, digests["2.0"]))

    # ---- 2. the fleet controller
    story.step("2. the fleet controller: berth fleet init, nginx serving the repository, release 1.0 on `stable`")
    if not pieces.has.get("fleet-repo") or not pieces.has.get("nginx"):
        story.not_shown("the fleet channel (berth fleet or nginx is missing): no gateway to update")
        return 0
    fleet = os.path.join(tmp, "fleet")
    t = time.monotonic()
    try:
        repo_host = FleetRepo(berth, fleet)
    except RuntimeError as e:
        story.fail(str(e))
        return 1
    cleanups.append(repo_host.close)
    nginx = repo_host.nginx
    story.say(f"berth fleet init: a TUF repository, its keys in {os.path.basename(fleet)}.keys/ (root's go offline)")
    story.say(f"nginx serves its metadata/ and targets/ on {nginx.url}")
    broker, sub = start_broker(story, pieces, tmp, cleanups)
    names = {}
    manifests = {}
    for i, v in enumerate(VERSIONS, 1):
        body = manifest_json(v, f"{GUEST_HOST}:{registry.port}/{repo}@{digests[v]}", i)
        path = os.path.join(tmp, f"sensor-{v}.manifest.json")
        with open(path, "w") as f:
            f.write(body)
        manifests[v] = path
        names["sha256:" + hashlib.sha256(body.encode()).hexdigest()] = f"sensor {v}"

    def release(v):
        ok, why = repo_host.release(manifests[v], CHANNEL)
        if not ok:
            return False, why
        story.say(f"berth fleet release: sensor {v} on channel `{CHANNEL}` (manifest version "
                  f"{VERSIONS.index(v) + 1}, its image pinned by digest), signed into the TUF repository")
        if broker:
            t = time.monotonic()
            p = run([berth, "fleet", "publish", "--fleet", FLEET, *broker.berth_args("controller"), fleet])
            if p.returncode != 0:
                story.fail(f"berth fleet publish: {last_line(p.stderr)}")
            else:
                story.say(f"berth fleet publish: the new signed timestamp pushed to the broker "
                          f"({time.monotonic() - t:.1f} s); the gateway looks at once")
        return True, ""

    ok, msg = release("1.0")
    if not ok:
        story.fail(f"berth fleet release 1.0: {msg}")
        return 1
    story.took("fleet init + release 1.0", t)
    snapshot_1 = repo_host.snapshot(os.path.join(tmp, "fleet-as-of-1.0"))

    # ---- 3. the gateway
    story.step("3. the gateway: qemu-system-arm, berth as PID 1, its agent following `stable` (host-only network)")
    if not pieces.gateway_ready():
        story.not_shown("the emulated gateway (see the missing pieces above): steps 3 to 7")
        return 0
    t = time.monotonic()
    try:
        gw, hostport = boot_gateway(story, pieces, tmp, cleanups, registry, repo_host, broker, pub, manifests, args)
    except (Failed, subprocess.CalledProcessError) as e:
        story.fail(f"the gateway: {e}" + (f": {last_line(e.stderr or '')}" if isinstance(e, subprocess.CalledProcessError)
                                          else ""))
        return 1
    watch = Watch(story, gw, names, sub)
    try:
        watch.until(lambda r: r.get("state") == "committed" and r.get("committed") == 1, 300, "sensor 1.0 committed")
        story.took("boot to sensor 1.0 committed (agent poll, pull, start, health)", t)
        story.say(f"GET / from the gateway (hostfwd 127.0.0.1:{hostport} -> its port 8080): {reading(hostport)}")

        # ---- 4. 2.0
        story.step("4. release sensor 2.0: the gateway pulls only the new layers, switches, checks health, commits")
        mark = os.path.getsize(registry_log(registry))
        t = time.monotonic()
        ok, msg = release("2.0")
        if not ok:
            raise Failed(f"berth fleet release 2.0: {msg}")
        watch.until(lambda r: r.get("state") in ("committed", "rolled-back") and r.get("deployment") in
                    [d for d, n in names.items() if n == "sensor 2.0"], 300, "sensor 2.0 committed or rolled back")
        story.took("release 2.0 to committed on the gateway", t)
        blobs = served_blobs(registry_log(registry), mark)
        config2, _ = manifest_layers(registry, repo, digests["2.0"])
        new_layers = [b for b in blobs if b in layers["2.0"]]
        shared = [b for b in layers["2.0"] if b in layers["1.0"]]
        other = [b for b in blobs if b not in layers["2.0"] and b != config2]
        story.say(f"the registry served {len(blobs)} blobs: "
                  f"{'the config, ' if config2 in blobs else ''}{len(new_layers)} layer(s) "
                  f"({', '.join(short(b) for b in new_layers) or 'none'}), {len(other)} signature blob(s); "
                  f"the {len(shared)} layer(s) 2.0 shares with 1.0 were not fetched again"
                  + ("" if not any(b in blobs for b in shared) else " -- BUT some were"))
        if any(b in blobs for b in shared):
            story.fail("the gateway fetched layers it already had")
        story.say(f"GET / from the gateway: {reading(hostport)}")

        # ---- 5. 3.0
        story.step("5. release sensor 3.0 (broken: its sensor path is wrong): health check fails, rollback to 2.0")
        t = time.monotonic()
        ok, msg = release("3.0")
        if not ok:
            raise Failed(f"berth fleet release 3.0: {msg}")
        r = watch.until(lambda r: r.get("state") in ("committed", "rolled-back") and names.get(r.get("deployment"))
                        == "sensor 3.0", 300, "sensor 3.0 rolled back")
        story.took("release 3.0 to rolled back on the gateway", t)
        if r.get("state") != "rolled-back":
            story.fail("the broken 3.0 was committed")
        story.say(f"GET / from the gateway: {reading(hostport)}")

        # ---- 6. the 1.0 replay
        story.step("6. replay the 1.0 manifest: refused as a downgrade, three ways")
        ok, msg = release("1.0")
        story.say(f"the controller: berth fleet release 1.0 -> {'RELEASED (wrong)' if ok else msg}")
        if ok:
            story.fail("the controller released a downgrade")
        t = time.monotonic()
        restore = repo_host.replay(snapshot_1)
        story.say("a mirror replays the repository as it was at 1.0 (nginx now serves that copy); "
                  "the gateway reads it at its next poll")
        try:
            watch.until(lambda r: r.get("state") == "refused", 120, "the replayed repository refused")
        finally:
            restore()
        story.took("replayed repository to refused on the gateway", t)
        story.say("the mirror serves the real repository again")
        status, out = gw.sh("berth update apply /mnt/disk/manifests/sensor-1.0.manifest.json")
        story.say(f"on the device: berth update apply sensor-1.0.manifest.json -> exit {status}: "
                  f"{' '.join(out).strip()}")
        if status == 0:
            story.fail("the device applied the 1.0 manifest")
        story.say(f"GET / from the gateway: {reading(hostport)}")

        # ---- 7. history
        story.step("7. berth update history, on the gateway's console")
        status, out = gw.sh("berth update history")
        for line in out:
            print(f"    {line}")
        status, out = gw.sh("berth update status")
        for line in out:
            print(f"    {line}")
        t = time.monotonic()
        gw.send("berth system poweroff")
        if gw.m.exited(120):
            story.say(f"berth system poweroff: QEMU exited, the gateway powered itself off, "
                      f"{story.took('poweroff', t):.1f} s after the command")
        else:
            story.fail("the gateway did not power off within 120 s")
    except Failed as e:
        story.fail(str(e))
        dump_gateway(gw)
        return 1
    return 0


def start_broker(story, pieces, tmp, cleanups):
    """mosquitto with TLS client certificates and the fleet's ACL
    (src/tests/mosquitto_lib.py, as docs/fleet-mqtt.md sets it up), its
    server certificate also naming the address the gateway knows it by;
    and a subscriber to the devices' status topics. (None, None) when
    mosquitto or `berth fleet publish` is missing: the gateway then polls
    and its reports stay in its outbox."""
    if not pieces.command("fleet", "publish"):
        story.not_shown("the MQTT push: `berth fleet publish` is not in this berth (the gateway polls instead)")
        return None, None
    from mosquitto_lib import Broker, have_mosquitto
    if not have_mosquitto():
        story.not_shown("the MQTT push: mosquitto or mosquitto-clients is not installed (the gateway polls instead)")
        return None, None

    class GatewayBroker(Broker):
        def _make_ca(self):
            host, self.host = self.host, GUEST_HOST  # the certificate's extra subjectAltName
            try:
                super()._make_ca()
            finally:
                self.host = host

    os.makedirs(os.path.join(tmp, "broker"), exist_ok=True)
    broker = GatewayBroker(fleet=FLEET, tmp=os.path.join(tmp, "broker"))
    cleanups.append(broker.close)
    sub = broker.subscribe("controller", f"berth/{FLEET}/devices/+/status")
    story.say(f"mosquitto on {broker.address} (TLS, a client certificate per device, the fleet's ACL); "
              f"the controller subscribes to berth/{FLEET}/devices/+/status")
    return broker, sub


def registry_log(registry):
    return os.path.join(registry.dir, "registry.log")


def rebuild_note(story, berth, store, pieces, digest):
    """2.0 built again with --no-cache in another store: the same digest
    (reproducible builds)."""
    t = time.monotonic()
    r = run([berth, "build", "--store", store + ".again", "--no-cache", "--platform", "linux/arm/v7",
             "--build-arg", "VERSION=2.0", "--build-arg", f"BASE=oci:{pieces.base}:latest",
             os.path.join(TOP, "examples", "sensor")])
    secs = story.took("berth build sensor 2.0 again, --no-cache, another store", t)
    shutil.rmtree(store + ".again", ignore_errors=True)
    if r.returncode != 0:
        return f"failed: {last_line(r.stderr)}"
    again = last_line(r.stdout)
    if again != digest:
        story.fail(f"sensor 2.0 built twice gave {again} and {digest}")
        return f"another digest, {again} (not reproducible)"
    return f"2.0 rebuilt with --no-cache in another store in {secs:.1f} s: the same digest (reproducible)"


def boot_gateway(story, pieces, tmp, cleanups, registry, repo_host, broker, pub, manifests, args):
    """The state disk, the initramfs, then qemu-system-arm; returns the
    Gateway once its console shell answers, and the host port of its 8080."""
    from remote_lib import free_port
    seed = os.path.join(tmp, "gateway-disk")
    root = os.path.join(seed, "berth")
    os.makedirs(os.path.join(root, "fleet"))
    os.makedirs(os.path.join(seed, "manifests"))
    guest_repo = f"{GUEST_HOST}:{registry.port}/demo"
    # The gateway reaches the registry through its own address for it; the
    # images were signed under the name the host pushed them to.
    policy = signed_policy(guest_repo, f"{DISK_ROOT}/trust/sensor-key.pub", signed_prefix=f"{registry.host}/demo")
    agent = agent_config(DEVICE, FLEET, CHANNEL, repo_host.port)
    forwards = [registry.port, repo_host.port]
    if broker:
        cert, key = broker.identity(DEVICE)
        for src, name in ((broker.ca, "broker-ca.pem"), (cert, "device.pem"), (key, "device.key")):
            shutil.copy(src, os.path.join(root, "fleet", name))
        agent["mqtt"] = {"host": GUEST_HOST, "port": broker.port, "ca_file": f"{DISK_ROOT}/fleet/broker-ca.pem",
                         "cert_file": f"{DISK_ROOT}/fleet/device.pem", "key_file": f"{DISK_ROOT}/fleet/device.key",
                         "keepalive_s": 30, "reconnect_max_ms": 5000}
        forwards.append(broker.port)
    device_root(root, repo_host.root_json, agent, policy, [("trust/sensor-key.pub", pub)])
    for path in manifests.values():
        shutil.copy(path, os.path.join(seed, "manifests"))
    disk = os.path.join(tmp, "gateway-state.img")
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "berth-state", "-d", seed, disk, "256M"], check=True)
    initrd = os.path.join(tmp, "gateway-initrd.gz")
    subprocess.run([sys.executable, os.path.join(TOP, "qemu-tests", "mkinitramfs.py"), "--berth", pieces.armhf_berth,
                    "--sysroot", pieces.sysroot, "--busybox", os.path.join(pieces.kernel_dir, "busybox"),
                    "--init", os.path.join(HERE, "gateway_init.sh"),
                    "--file", os.path.join(TOP, "qemu-tests", "daemon_scenario.sh") + ":/daemon_scenario.sh", "--modules",
                    os.path.join(pieces.kernel_dir, "modules"), "--no-bundles", "-o", initrd]
                   # What berth loads at run time (image/dynlibs.cpp, src/fleet/mqtt.cpp).
                   + [a for lib in ("libcrypto.so.3", "libarchive.so.13", "libz.so.1", "libssl.so.3",
                                    "libmosquitto.so.1")
                      for a in ("--dlopen", lib)], check=True, capture_output=True, text=True)
    story.say(f"state disk: the device root (policy: {guest_repo} signed by the demo's key; the fleet's TUF root; "
              f"fleet/agent.json: device {DEVICE}, channel `{CHANNEL}`, a poll every ~2 s (~5 s while pushes come)"
              f"{', MQTT push and reports through the broker' if broker else ''}); "
              f"initramfs {os.path.getsize(initrd) // 1024} KiB")
    hostport = free_port()
    nic = user_netdev(forwards, [(hostport, 8080)])
    cmd = ["qemu-system-arm", "-M", "virt", "-m", "512", "-smp", "1", "-display", "none", "-monitor", "none",
           "-serial", "stdio", "-no-reboot", "-kernel", os.path.join(pieces.kernel_dir, "vmlinuz"), "-initrd", initrd,
           "-append", "console=ttyAMA0 quiet panic=-1",
           "-drive", f"if=none,id=state,format=raw,file={disk}", "-device", "virtio-blk-device,drive=state",
           "-netdev", nic, "-device", "virtio-net-device,netdev=net"]
    story.say(f"network: -netdev {nic}")
    gw = Gateway(cmd, os.path.join(tmp, "gateway-console.log"), args.timeout)
    cleanups.append(gw.m.stop)
    t = time.monotonic()
    if not gw.m.wait(r"BERTH-SHELL ready", 180):
        dump_gateway(gw)
        raise Failed("the gateway did not boot to its console shell within 180 s")
    # The shell starts just before berth does: wait for its control socket.
    status, _ = gw.sh("i=0; until [ -S /run/berth/daemon.sock ]; do i=$((i + 1)); [ $i -lt 300 ] || exit 1; "
                      "sleep 0.2; done", 120)
    if status != 0:
        dump_gateway(gw)
        raise Failed("berth daemon did not open its control socket within 60 s of the boot")
    facts = [text for _, text in gw.m.lines if text.startswith("DEMO-FACT")]
    story.say(f"booted, berth daemon up as PID 1, in {story.took('gateway boot to berth daemon up', t):.1f} s; "
              + "; ".join(f[len('DEMO-FACT '):] for f in facts))
    return gw, hostport


def dump_gateway(gw):
    """The end of the daemon's log and the console, after a failure."""
    try:
        _, out = gw.sh("tail -n 30 /mnt/disk/daemon.log; dmesg | grep -i berth | tail -n 30", 60)
        print("  the gateway's daemon log (last lines):")
        for line in out:
            print(f"    {line}")
    except Failed as e:
        print(f"  ({e})")
    print("  the console's last lines:")
    for _, text in gw.m.lines[-20:]:
        print(f"    {text}")


if __name__ == "__main__":
    sys.exit(main())

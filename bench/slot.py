#!/usr/bin/python3
"""bench/slot.sh's body: see there. Prints times, peak RSS, ratios and the
fault checks.

berth and RAUC run interleaved, RUNS rounds, so load from other processes
hits them alike; the best wall time of each counts (the median is shown),
the worst peak RSS. berth's peak RSS is GNU time's (the whole process);
RAUC's is the service's VmHWM (the client only asks it over D-Bus), the
service started afresh for each install.
"""
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "image", "tests"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "tests"))
from remote_lib import Proxy, Registry, free_port, wait_port  # noqa: E402
from mosquitto_lib import terminate  # noqa: E402

berth = sys.argv[1]
RUNS = int(os.environ.get("RUNS", "3"))
SIZE = 64 << 20
KILLS = 10
tmp = tempfile.mkdtemp(prefix="berth-bench-slot-")
procs, loops = [], []


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        print(f"skipped: missing {' '.join(missing)} (apt-get install rauc nginx-light dbus-daemon squashfs-tools)")
        sys.exit(77)


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} failed ({r.returncode}): {r.stderr[-3000:]} {r.stdout[-2000:]}")
    return r


def timed(argv, env=None):
    """(seconds, peak RSS KiB) of argv via GNU time."""
    r = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {r.stderr[-2000:]}")
    e, m = r.stderr.strip().splitlines()[-1].split()
    return float(e), int(m)


def slot_device(name):
    """A loop device over an 80 MiB file (the slot), else the file."""
    path = os.path.join(tmp, f"{name}.img")
    with open(path, "wb") as f:
        f.truncate(80 << 20)
    r = subprocess.run(["losetup", "--find", "--show", path], capture_output=True, text=True)
    if r.returncode == 0:
        loops.append(r.stdout.strip())
        return r.stdout.strip()
    return path


def wipe(dev):
    with open(dev, "r+b") as f:
        f.write(b"\0" * (1 << 20))
        os.fsync(f.fileno())


def read_slot(dev, n=SIZE):
    with open(dev, "rb") as f:
        return f.read(n)


def hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def memory_breakdown(argv):
    """Runs argv, sampling /proc: (peak RssAnon KiB, peak RssFile KiB, the
    largest mappings by Rss [(KiB resident, KiB mapped, name)] at the peak)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    anon = file_ = best = 0
    top = []
    while p.poll() is None:
        try:
            st = {ln.split(":")[0]: int(ln.split()[1]) for ln in open(f"/proc/{p.pid}/status") if ln.startswith("Rss")}
            if st.get("RssAnon", 0) + st.get("RssFile", 0) > best:
                best = st["RssAnon"] + st["RssFile"]
                rows, name, size = {}, None, 0
                for line in open(f"/proc/{p.pid}/smaps"):
                    f = line.split()
                    if len(f) >= 5 and "-" in f[0] and not f[0].endswith(":"):
                        lo, hi = (int(x, 16) for x in f[0].split("-"))
                        name, size = (f[5] if len(f) > 5 else "[anon]"), (hi - lo) >> 10
                        rows.setdefault(name, [0, 0])[1] += size
                    elif f and f[0] == "Rss:":
                        rows[name][0] += int(f[1])
                top = sorted(((v[0], v[1], os.path.basename(k)) for k, v in rows.items()), reverse=True)[:6]
            anon, file_ = max(anon, st.get("RssAnon", 0)), max(file_, st.get("RssFile", 0))
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    return anon, file_, top


# ---------------------------------------------------------------- berth

class Berth:
    def __init__(self, image_digest):
        self.a, self.b = slot_device("berth-a"), slot_device("berth-b")
        kind = "device" if self.a.startswith("/dev/") else "file"
        self.board = os.path.join(tmp, "board.json")
        with open(self.board, "w") as f:
            json.dump({"name": "bench", "slots": [{"name": "A", kind: self.a}, {"name": "B", kind: self.b}],
                       "bootloader": {"kind": "file", "env": "boot.env", "attempts": 3}}, f)
        self.store = os.path.join(tmp, "berth-store")
        self.digest = image_digest
        run([berth, "slot", "mark-good", "--board", self.board, "--booted", "A", "A"])

    def argv(self, host):
        return [berth, "slot", "install", "--board", self.board, "--booted", "A", "--store", self.store,
                "--size", str(SIZE), f"{host}/bench/os@{self.digest}"]

    def status(self):
        return json.loads(run([berth, "slot", "status", "--json", "--board", self.board, "--booted", "A"]).stdout)

    def state_of(self, slot):
        return next(s["state"] for s in self.status()["slots"] if s["name"] == slot)


# ---------------------------------------------------------------- RAUC

CUSTOM_BACKEND = """#!/bin/sh
# RAUC's custom bootloader backend over a state directory (bench only).
d=$(dirname "$0")/boot
mkdir -p "$d"
case "$1" in
get-primary) cat "$d/primary" 2>/dev/null || echo A ;;
set-primary) echo "$2" > "$d/primary" ;;
get-state) cat "$d/state.$2" 2>/dev/null || echo good ;;
set-state) echo "$3" > "$d/state.$2" ;;
get-current) echo A ;;
*) exit 1 ;;
esac
"""

DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="de.pengutronix.rauc"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""


class Rauc:
    def __init__(self, image_path):
        self.dir = os.path.join(tmp, "rauc")
        os.makedirs(os.path.join(self.dir, "bundle"))
        self.a, self.b = slot_device("rauc-a"), slot_device("rauc-b")
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/key.pem", "-out",
             f"{d}/cert.pem", "-subj", "/CN=berth bench", "-days", "1"])
        os.link(image_path, f"{d}/bundle/rootfs.img")
        with open(f"{d}/bundle/manifest.raucm", "w") as f:
            f.write("[update]\ncompatible=berth-bench\nversion=1\n\n[bundle]\nformat=plain\n\n"
                    "[image.rootfs]\nfilename=rootfs.img\n")
        self.www = os.path.join(d, "www")
        os.makedirs(self.www)
        self.bundle = os.path.join(self.www, "update.raucb")
        run(["rauc", "bundle", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem", f"{d}/bundle", self.bundle])
        os.unlink(f"{d}/bundle/rootfs.img")
        with open(f"{d}/backend.sh", "w") as f:
            f.write(CUSTOM_BACKEND)
        os.chmod(f"{d}/backend.sh", 0o755)
        self.conf(install_same=True)
        bus = os.path.join(d, "bus")
        with open(f"{d}/dbus.conf", "w") as f:
            f.write(DBUS_CONF.format(path=bus))
        self.dbus = subprocess.Popen(["dbus-daemon", "--config-file", f"{d}/dbus.conf", "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(self.dbus)
        deadline = time.monotonic() + 10
        while not os.path.exists(bus) and time.monotonic() < deadline:
            time.sleep(0.05)
        # RAUC downloads into $TMPDIR: here, so the clean-up finds what a killed service left.
        os.makedirs(f"{d}/tmpdir")
        self.env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=f"unix:path={bus}", TMPDIR=f"{d}/tmpdir")
        self.port = free_port()
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(f"""daemon off; user root; worker_processes 1; pid {d}/nginx.pid; error_log {d}/nginx.err;
events {{ worker_connections 64; }}
http {{ access_log {d}/access.log; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{ listen 127.0.0.1:{self.port}; root {self.www}; }} }}
""")
        procs.append(subprocess.Popen(["nginx", "-c", f"{d}/nginx.conf", "-p", d], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        wait_port(self.port)
        self.url = f"http://127.0.0.1:{self.port}/update.raucb"
        self.service = None

    def make_bundle(self, data, name):
        d = self.dir
        with open(f"{d}/bundle/rootfs.img", "wb") as f:
            f.write(data)
        path = os.path.join(self.www, name)
        run(["rauc", "bundle", "--cert", f"{d}/cert.pem", "--key", f"{d}/key.pem", f"{d}/bundle", path])
        os.unlink(f"{d}/bundle/rootfs.img")
        return path

    def conf(self, install_same):
        d = self.dir
        with open(f"{d}/system.conf", "w") as f:
            f.write(f"""[system]
compatible=berth-bench
bootloader=custom
data-directory={d}/data
max-bundle-download-size={SIZE * 2}

[handlers]
bootloader-custom-backend={d}/backend.sh

[keyring]
path={d}/cert.pem

[slot.rootfs.0]
device={self.a}
type=raw
bootname=A
{"" if install_same else "install-same=false"}

[slot.rootfs.1]
device={self.b}
type=raw
bootname=B
{"" if install_same else "install-same=false"}
""")

    def start(self):
        self.stop()
        self.service = subprocess.Popen(["rauc", "service", "--conf", f"{self.dir}/system.conf",
                                         "--override-boot-slot=A", "--mount", f"{self.dir}/mnt"], env=self.env,
                                        stdout=open(f"{self.dir}/service.log", "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if subprocess.run(["rauc", "status"], env=self.env, capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit(f"rauc service did not come up: {open(f'{self.dir}/service.log').read()[-2000:]}")

    def stop(self):
        if self.service and self.service.poll() is None:
            self.service.kill()
            self.service.wait()
        self.service = None

    def install(self, source):
        """(seconds, service peak RSS KiB) of `rauc install source`, a fresh service."""
        self.start()
        t0 = time.monotonic()
        r = subprocess.run(["rauc", "install", source], env=self.env, capture_output=True, text=True)
        t = time.monotonic() - t0
        if r.returncode != 0:
            raise SystemExit(f"rauc install failed: {r.stderr[-2000:]} {r.stdout[-2000:]}")
        return t, hwm_kib(self.service.pid)

    def bundle_bytes_served(self, name="update.raucb"):
        total = 0
        for line in open(f"{self.dir}/access.log"):
            parts = line.split('"')
            if len(parts) > 2 and f"/{name} " in parts[1]:
                total += int(parts[2].split()[1])
        return total


# ---------------------------------------------------------------- the bench

def fmt(label, best, median, rss_kib):
    return f"  {label:<34} {best:6.2f} s (median {median:5.2f})  peak RSS {rss_kib / 1024:6.1f} MiB"


try:
    if os.geteuid() != 0:
        print("skipped: needs root")
        sys.exit(77)
    need("docker-registry", "rauc", "nginx", "dbus-daemon", "mksquashfs", "openssl")
    image = os.path.join(tmp, "rootfs.img")
    data = os.urandom(SIZE)
    with open(image, "wb") as f:
        f.write(data)
    reg = Registry(tmp, "reg")
    digest = reg.put_blob("bench/os", data)
    b = Berth(digest)
    r = Rauc(image)
    print(f"image: {SIZE >> 20} MiB of random bytes; slots: {b.b} (berth), {r.b} (RAUC)")

    results = {"berth": [], "rauc-http": [], "rauc-local": []}
    for i in range(RUNS):
        wipe(b.b)
        results["berth"].append(timed(b.argv(reg.host)))
        assert read_slot(b.b) == data, "berth's slot does not hold the image"
        wipe(r.b)
        results["rauc-http"].append(r.install(r.url))
        assert read_slot(r.b) == data, "RAUC's slot does not hold the image"
        wipe(r.b)
        results["rauc-local"].append(r.install(r.bundle))
    r.stop()
    summary = {k: (min(x[0] for x in v), statistics.median(x[0] for x in v), max(x[1] for x in v))
               for k, v in results.items()}
    print(f"install of {SIZE >> 20} MiB into a slot, best of {RUNS}:")
    print(fmt("berth slot install (registry)", *summary["berth"]))
    print(fmt("rauc install (HTTP, nginx)", *summary["rauc-http"]))
    print(fmt("rauc install (local bundle)", *summary["rauc-local"]))
    tb, th = summary["berth"][0], summary["rauc-http"][0]
    mb = summary["berth"][2] / 1024
    print(f"  berth / RAUC HTTP time: {tb / th:.2f}x (goal <= 1.0: {'met' if tb <= th else 'MISSED'}); "
          f"berth / RAUC service peak RSS: {summary['berth'][2] / summary['rauc-http'][2]:.2f}x; "
          f"berth peak RSS {mb:.1f} MiB (goal <= 8: {'met' if mb <= 8 else 'MISSED'})")

    wipe(b.b)
    anon, file_, top = memory_breakdown(b.argv(reg.host))
    print(f"  berth's peak RSS, split: private (anon) {anon / 1024:.1f} MiB, shared library and executable file "
          f"pages {file_ / 1024:.1f} MiB; largest at the peak (resident of mapped):")
    print("    " + ", ".join(f"{n} {r / 1024:.1f} of {m / 1024:.1f} MiB" for r, m, n in top))

    # ---- faults: berth SIGKILLed KILLS times, through a counting proxy.
    print(f"\nberth install SIGKILLed {KILLS} times (a proxy paces the registry at 32 MiB/s and counts bytes):")
    proxy = Proxy(reg.port, rate=32 << 20)
    wipe(b.b)
    run([berth, "slot", "mark-good", "--board", b.board, "--booted", "A", "A"])
    rng = random.Random(1)
    kills, bootable_after_kill = 0, 0
    argv = b.argv(f"127.0.0.1:{proxy.port}")
    per_attempt = []  # bytes served to each attempt
    while kills < KILLS:
        # Killed after a random 1-5 MiB of this attempt's transfer, so
        # every kill lands in the middle of the download and the write.
        start = proxy.served.get(digest, 0)
        at = start + rng.randint(1 << 20, 5 << 20)
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while p.poll() is None and proxy.served.get(digest, 0) < at:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))  # a random instant, not right after the proxy's write
        if p.poll() is not None:
            break
        p.kill()
        p.wait()
        per_attempt.append(proxy.served.get(digest, 0) - start)
        kills += 1
        if b.state_of("B") != "bad":
            bootable_after_kill += 1
    t0 = time.monotonic()
    final = subprocess.run(argv, capture_output=True, text=True)
    served = proxy.served.get(digest, 0)
    starts = [int(rg.split("=")[1].split("-")[0]) if rg else 0 for d_, rg in proxy.ranges if d_ == digest]
    lost = [per_attempt[i] - (starts[i + 1] - starts[i]) for i in range(min(len(per_attempt), len(starts) - 1))]
    print(f"  resumed at (MiB): {', '.join(f'{x / (1 << 20):.2f}' for x in starts[1:])}")
    print(f"  served but not kept, per kill (KiB): {', '.join(str(x >> 10) for x in lost)}")
    ok_bytes = served <= SIZE + KILLS * (64 << 10)
    print(f"  killed {kills} times, then finished: {final.stdout.strip() or final.stderr.strip()}")
    print(f"  bytes served for the image: {served} = image + {served - SIZE} "
          f"(limit image + {KILLS} x 64 KiB = {SIZE + KILLS * (64 << 10)}: {'met' if ok_bytes else 'MISSED'})")
    print(f"  slot B bootable after a kill: {bootable_after_kill} of {kills} times (must be 0); "
          f"after the finished install: {b.state_of('B')}; holds the image: {read_slot(b.b) == data}")
    proxy.shutdown()

    # ---- RAUC, for contrast.
    print("\nRAUC, for contrast (install-same=false):")
    r.conf(install_same=False)
    wipe(r.b)
    r.install(r.url)  # B holds image 1; RAUC records its checksum
    data2 = os.urandom(SIZE)
    r.make_bundle(data2, "update2.raucb")
    before = r.bundle_bytes_served("update2.raucb")
    r.start()
    p = subprocess.Popen(["rauc", "install", f"http://127.0.0.1:{r.port}/update2.raucb"], env=r.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Killed once it is writing image 2 into B: B's first MiB is image 2's.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and read_slot(r.b, 1 << 20) != data2[:1 << 20]:
        time.sleep(0.005)
    r.service.send_signal(signal.SIGKILL)
    r.service.wait()
    p.wait()
    killed_served = r.bundle_bytes_served("update2.raucb") - before
    half = read_slot(r.b)
    written = next((i for i in range(0, SIZE, 1 << 20) if half[i:i + (1 << 20)] != data2[i:i + (1 << 20)]), SIZE)
    print(f"  install of image 2 killed while writing slot B ({written >> 20} of {SIZE >> 20} MiB written; "
          f"{killed_served} bytes of the bundle fetched, all of it before writing: no streaming)")
    r.install(r.url)  # image 1 again
    state_b = open(f"{r.dir}/boot/state.B").read().strip() if os.path.exists(f"{r.dir}/boot/state.B") else "?"
    primary = open(f"{r.dir}/boot/primary").read().strip() if os.path.exists(f"{r.dir}/boot/primary") else "?"
    holds = read_slot(r.b) == data
    print(f"  installing image 1 again: RAUC skips the write (its recorded checksum matches) and makes B primary "
          f"('{primary}', state '{state_b}'); B holds image 1: {holds}"
          f"{' -> a half-written slot marked bootable' if not holds and primary == 'B' else ''}")
    r.conf(install_same=True)
    t0 = time.monotonic()
    before = r.bundle_bytes_served()
    r.start()
    p = subprocess.Popen(["rauc", "install", r.url], env=r.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.monotonic() - t0 < 30 and r.bundle_bytes_served() - before < 1:
        time.sleep(0.01)
    r.service.send_signal(signal.SIGKILL)
    r.service.wait()
    p.wait()
    first = r.bundle_bytes_served() - before
    r.install(r.url)
    print(f"  a killed HTTP install ({first} bytes fetched) is followed by one that fetches the whole bundle "
          f"again: {r.bundle_bytes_served() - before - first} bytes (RAUC 1.8 plain bundles: no resume)")
finally:
    for p in procs:
        terminate(p)
    try:
        r.stop()
    except NameError:
        pass
    # A killed RAUC service leaves its bundle mounted (on a loop device of its own).
    for line in reversed(open("/proc/mounts").read().splitlines()):
        dev, mnt = line.split()[:2]
        if mnt.startswith(tmp + "/"):
            subprocess.run(["umount", mnt])
            if dev.startswith("/dev/loop"):
                subprocess.run(["losetup", "-d", dev], stderr=subprocess.DEVNULL)
    for dev in loops:
        subprocess.run(["losetup", "-d", dev])
    try:
        reg.stop()
    except NameError:
        pass
    shutil.rmtree(tmp, ignore_errors=True)

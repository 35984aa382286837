"""The herd benchmark's driver (bench/fleet.sh runs it with /usr/bin/python3;
the options and what is measured are described there).

Layout on the machine, all made here and removed on every exit path:
  bridge  bh<tag> with HOST (10.K.0.1/16, K the first of 200..249 not in use
          here), the servers' only address
  netns   berth-herd-<tag>-<i>, each with eth0 (a veth whose peer bh<tag>i<i>
          is a bridge port) holding 10.K.x.y/16 and nothing else but lo
  servers nginx (the TUF repository made by `berth fleet init|release`),
          docker-registry (the updates' images), mosquitto (TLS, per-device
          certificates and ACLs, mosquitto_lib.Broker), all on HOST
  devices `ip netns exec NS berth fleet device --root ROOT --insecure-http`
"""
import argparse
import json
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "image", "tests"))
from mosquitto_lib import Broker, have_mosquitto, terminate  # noqa: E402
from remote_lib import Layout, Registry, free_port, tar_layer, wait_port  # noqa: E402

FLEET = "herd"


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def free_net():
    """The first 10.K (K in 200..249) no address of this machine is in: the herd's /16."""
    used = sh("ip", "-4", "addr", "show").stdout
    for k in range(200, 250):
        if f" 10.{k}." not in used:
            return f"10.{k}"
    raise RuntimeError("no free 10.K.0.0/16 (K in 200..249) for the herd's bridge")


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def sh(*args, check=True, input=None):
    r = subprocess.run(args, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


class Herd:
    def __init__(self, opts, berth):
        self.o = opts
        self.berth = berth
        self.n = opts.devices
        self.tag = secrets.token_hex(2)
        self.bridge = f"bh{self.tag}"
        self.tmp = tempfile.mkdtemp(prefix="berth-herd-", dir="/var/tmp")
        os.chmod(self.tmp, 0o755)
        self.namespaces = []
        self.devices = {}  # i -> Popen
        self.procs = []
        self.broker = None
        self.reg = None
        self.sysctl_saved = {}

    # ------------------------------------------------------------ network

    def ns(self, i):
        return f"berth-herd-{self.tag}-{i}"

    def veth(self, i):
        return f"{self.bridge}i{i}"

    def make_network(self):
        self.net = free_net()
        self.host = f"{self.net}.0.1"
        # N neighbours on the bridge: keep the host's ARP table above them.
        for k, v in (("gc_thresh1", 4 * self.n), ("gc_thresh2", 8 * self.n), ("gc_thresh3", 16 * self.n)):
            p = f"/proc/sys/net/ipv4/neigh/default/{k}"
            old = int(open(p).read())
            if old < v:
                self.sysctl_saved[p] = old
                open(p, "w").write(str(v))
        sh("ip", "-batch", "-", input=f"link add {self.bridge} type bridge\naddr add {self.host}/16 dev {self.bridge}\n"
                                      f"link set {self.bridge} up\n")
        self.ipv6_off(self.bridge)
        self.namespaces = [self.ns(i) for i in range(self.n)]
        sh("ip", "-batch", "-", input="".join(f"netns add {ns}\n" for ns in self.namespaces))
        # No address but the one given: no IPv6 link-local ones (their
        # neighbour discovery would count as the devices' idle traffic).
        for ns in self.namespaces:
            sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1",
               "net.ipv6.conf.default.disable_ipv6=1")
        batch = []
        for i in range(self.n):
            batch += [f"link add {self.veth(i)} type veth peer name eth0 netns {self.ns(i)}",
                      f"link set {self.veth(i)} master {self.bridge}"]
        sh("ip", "-batch", "-", input="\n".join(batch) + "\n")
        for i in range(self.n):
            self.ipv6_off(self.veth(i))
        sh("ip", "-batch", "-", input="".join(f"link set {self.veth(i)} up\n" for i in range(self.n)))
        for i in range(self.n):
            inside = ["link set lo up", f"addr add {self.ip(i)}/16 dev eth0", "link set eth0 up"]
            sh("ip", "-n", self.ns(i), "-batch", "-", input="\n".join(inside) + "\n")
        log(f"network: bridge {self.bridge} {self.host}/16, {self.n} namespaces")

    @staticmethod
    def ipv6_off(dev):
        with open(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6", "w") as f:
            f.write("1")

    def ip(self, i):
        n = i + 2  # .0.1 is the host
        return f"{self.net}.{n // 250}.{n % 250 + 1}"

    def veth_bytes(self):
        out = {}
        for i in range(self.n):
            d = f"/sys/class/net/{self.veth(i)}/statistics"
            out[i] = int(open(f"{d}/rx_bytes").read()) + int(open(f"{d}/tx_bytes").read())
        return out

    # ------------------------------------------------------------ servers

    def start_registry(self):
        self.reg = Registry(self.tmp, "registry", addr=self.host)
        self.reg_port = self.reg.port
        self.reg_log = os.path.join(self.reg.dir, "registry.log")

    def registry_bytes(self, since):
        """Body bytes of the registry's GET answers after log offset `since`: (bytes, requests, offset)."""
        total = reqs = 0
        with open(self.reg_log, "rb") as f:
            f.seek(since)
            data = f.read()
        for line in data.decode(errors="replace").splitlines():
            if "response completed" not in line or "http.request.method=GET" not in line:
                continue
            m = re.search(r"http\.response\.written=(\d+)", line)
            if m:
                total += int(m.group(1))
                reqs += 1
        return total, reqs, since + len(data)

    def push_image(self, name):
        """An image of one layer of incompressible bytes (--layer-kib), unique to `name`; (reference, update bytes)."""
        lay = Layout(os.path.join(self.tmp, f"layout-{name}"))
        blob = tar_layer([("data", None), ("data/blob", os.urandom(self.o.layer_kib * 1024))])
        desc, body = lay.image([blob], "amd64", f"{self.tag}-{name}")
        lay.tag(desc, "1")
        ref = f"{self.host}:{self.reg_port}/herd/{name}:1"
        sh(self.berth, "image", "push", "--quiet", "--insecure-http", f"oci:{lay.path}:1", ref)
        m = json.loads(body)
        size = len(body) + m["config"]["size"] + sum(layer["size"] for layer in m["layers"])
        return f"{self.host}:{self.reg_port}/herd/{name}@{desc['digest']}", size

    def start_nginx(self):
        d = os.path.join(self.tmp, "nginx")
        os.makedirs(d)
        self.nginx_port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 16384; }}
http {{
    log_format herd '$msec $status $request_uri $bytes_sent $connection';
    access_log {d}/access.log herd;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    server {{
        listen {self.host}:{self.nginx_port};
        location /metadata/ {{ root {self.repo}; add_header Cache-Control "no-cache"; }}
        location /targets/ {{ root {self.repo}; }}
        location / {{ return 404; }}
    }}
}}
""")
        self.nginx_log = os.path.join(d, "access.log")
        self.procs.append(subprocess.Popen(["/usr/sbin/nginx", "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(self.nginx_port, host=self.host)

    def nginx_lines(self, since):
        with open(self.nginx_log, "rb") as f:
            f.seek(since)
            data = f.read()
        return [line.split() for line in data.decode(errors="replace").splitlines()], since + len(data)

    def start_broker(self):
        os.makedirs(os.path.join(self.tmp, "mqtt"))
        self.broker = Broker(fleet=FLEET, persistence=True, host=self.host, tmp=os.path.join(self.tmp, "mqtt"),
                             extra="max_queued_messages 1000\n")
        t = time.monotonic()
        self.ids = self.broker.identities([self.dev_id(i) for i in range(self.n)] + ["controller"],
                                          workers=os.cpu_count() or 2)
        log(f"mosquitto on {self.broker.address}: {self.n + 1} client certificates in {time.monotonic() - t:.1f} s")

    # ------------------------------------------------------------ repository

    def init_repo(self):
        self.repo = os.path.join(self.tmp, "repo")
        sh(self.berth, "fleet", "init", self.repo)
        meta = os.path.join(self.repo, "metadata")
        roots = sorted((f for f in os.listdir(meta) if f.endswith(".root.json")), key=lambda f: int(f.split(".")[0]))
        self.root_json = os.path.join(meta, roots[0])

    def release(self, version, image):
        doc = {"version": version, "name": f"herd {version}", "health_window": "1m",
               "containers": [{"name": "app", "image": image, "args": ["/bin/true"]}]}
        path = os.path.join(self.tmp, f"manifest-{version}.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        sh(self.berth, "fleet", "release", self.repo, "--channel", "stable", path)

    def publish(self):
        sh(self.berth, "fleet", "publish", *self.broker.berth_args("controller"), "--fleet", FLEET, self.repo)

    # ------------------------------------------------------------ devices

    def dev_id(self, i):
        return f"dev-{i:05d}"

    def root(self, i):
        return os.path.join(self.tmp, "dev", str(i))

    def write_device(self, i, mqtt, poll_ms):
        r = self.root(i)
        os.makedirs(os.path.join(r, "trust", "tuf"), exist_ok=True)
        os.makedirs(os.path.join(r, "fleet"), exist_ok=True)
        shutil.copy(self.root_json, os.path.join(r, "trust", "tuf", "root.json"))
        with open(os.path.join(r, "policy.json"), "w") as f:
            json.dump({"default": [{"type": "insecureAcceptAnything"}]}, f)
        base = f"http://{self.host}:{self.nginx_port}"
        cfg = {"device_id": self.dev_id(i), "fleet": FLEET, "channel": "stable", "board": "herd",
               "metadata_url": base + "/metadata", "targets_url": base + "/targets", "poll_interval_ms": poll_ms}
        if mqtt:
            cert, key = self.ids[i]
            cfg["mqtt"] = {"host": self.host, "port": self.broker.port, "ca_file": self.broker.ca, "cert_file": cert,
                           "key_file": key, "keepalive_s": self.o.keepalive_s}
        with open(os.path.join(r, "fleet", "agent.json"), "w") as f:
            json.dump(cfg, f)

    def start_devices(self):
        t = time.monotonic()
        for i in range(self.n):
            err = open(os.path.join(self.root(i), "stderr.log"), "a")
            self.devices[i] = subprocess.Popen(["ip", "netns", "exec", self.ns(i), self.berth, "fleet", "device", "--root",
                                                self.root(i), "--insecure-http"],
                                               stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
            err.close()
        log(f"{self.n} devices started in {time.monotonic() - t:.1f} s")

    def stop_devices(self):
        for p in self.devices.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + 30
        for p in self.devices.values():
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        self.devices = {}

    def dead(self):
        return [i for i, p in self.devices.items() if p.poll() is not None]

    def current(self, i):
        try:
            with open(os.path.join(self.root(i), "revisions", "state.json")) as f:
                return json.load(f).get("current")
        except (OSError, ValueError):
            return None

    def wait_committed(self, version, t0, timeout):
        """Until every device's revisions/state.json says current == version. {i: seconds after t0} (mtime of
        the state file, checked against when it was seen)."""
        done = {}
        end = time.monotonic() + timeout
        while len(done) < self.n and time.monotonic() < end:
            for i in range(self.n):
                if i in done:
                    continue
                if self.current(i) == version:
                    seen = time.time()
                    mt = os.stat(os.path.join(self.root(i), "revisions", "state.json")).st_mtime
                    done[i] = min(mt, seen) - t0
            time.sleep(0.1)
        return done

    def rss_kib(self):
        out = []
        for p in self.devices.values():
            try:
                for line in open(f"/proc/{p.pid}/status"):
                    if line.startswith("VmRSS:"):
                        out.append(int(line.split()[1]))
            except OSError:
                pass
        return out

    @staticmethod
    def cpu_s(pid, children=True):
        """CPU seconds of `pid` (user + system), and of its reaped children with `children`."""
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if children else 0)
        return ticks / os.sysconf("SC_CLK_TCK")

    def cpu(self):
        """(CPU seconds of the devices with their refresh and staging children, of the servers)."""
        dev = sum(self.cpu_s(p.pid) for p in self.devices.values())
        servers = [p.pid for p in self.procs] + [s.proc.pid for s in (self.reg, self.broker) if s and s.proc]
        return dev, sum(self.cpu_s(pid, False) for pid in servers)

    def broker_connects(self, since):
        """(unix second, client id) of each `New client connected` after log offset `since`."""
        with open(os.path.join(self.broker.dir, "mosquitto.log"), "rb") as f:
            f.seek(since)
            data = f.read().decode(errors="replace")
        out = []
        for line in data.splitlines():
            m = re.match(r"(\d+): New client connected from \S+ as (\S+)", line)
            if m:
                out.append((int(m.group(1)), m.group(2)))
        return out

    def broker_log_size(self):
        return os.path.getsize(os.path.join(self.broker.dir, "mosquitto.log"))

    # ------------------------------------------------------------ clean-up

    def cleanup(self):
        for p in self.devices.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.devices.values():
            p.wait()
        if self.broker:
            self.broker.stop()
        if self.reg:
            self.reg.stop()
        for p in self.procs:
            terminate(p)
        if self.namespaces:
            sh("ip", "-force", "-batch", "-", check=False,
               input="".join(f"netns del {ns}\n" for ns in self.namespaces))
        sh("ip", "link", "del", self.bridge, check=False)
        for p, v in self.sysctl_saved.items():
            open(p, "w").write(str(v))
        if not self.o.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")


def latency_line(name, lat, n):
    v = list(lat.values())
    if not v:
        return f"{name}: no device committed"
    return (f"{name}: {len(v)}/{n} committed; publish-to-committed p50 {pct(v, 50):.2f} s, p99 {pct(v, 99):.2f} s, "
            f"max {max(v):.2f} s")


def run(h):
    o = h.o
    n = h.n
    results = {}
    h.make_network()
    h.start_registry()
    h.init_repo()
    h.start_nginx()
    h.start_broker()
    images = {v: h.push_image(f"app{v}") for v in (1, 2, 3)}
    log("images: " + ", ".join(f"v{v} {s} bytes" for v, (_, s) in images.items()))

    # v1: the devices' first revision, applied as they come up (not measured).
    h.release(1, images[1][0])
    h.publish()
    for i in range(n):
        h.write_device(i, mqtt=True, poll_ms=o.push_poll_ms)
    t0 = time.time()
    h.start_devices()
    lat = h.wait_committed(1, t0, o.timeout_s + n)
    log(latency_line("start-up (v1 applied as the devices come up)", lat, n))
    if len(lat) < n:
        raise RuntimeError(f"{n - len(lat)} devices did not commit v1; dead: {h.dead()[:10]}")
    time.sleep(3)

    # Push: release v2, publish, every device committed.
    off = h.registry_bytes(0)[2]
    h.release(2, images[2][0])
    cpu0 = h.cpu()
    perf = subprocess.Popen(["perf", "record", "-q", "-a", "-g", "-F", "1999", "-o", o.perf_push],
                            stdout=subprocess.DEVNULL) if o.perf_push else None
    t0 = time.time()
    h.publish()
    lat = h.wait_committed(2, t0, o.timeout_s)
    cpu1 = h.cpu()
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
        log(f"perf profile of the push (all CPUs): {o.perf_push}")
    results["push"] = lat
    log(latency_line("push", lat, n))
    dev_cpu, srv_cpu = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
    results["cpu"] = (dev_cpu, srv_cpu)
    log(f"CPU for the update: devices {dev_cpu:.1f} s ({1000 * dev_cpu / n:.0f} ms each, refresh and staging "
        f"children included), servers {srv_cpu:.1f} s ({1000 * srv_cpu / n:.1f} ms a device); "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    served, reqs, off = h.registry_bytes(off)
    expect = n * images[2][1]
    results["bytes"] = (served, reqs, expect)
    log(f"registry: {served} bytes in {reqs} GETs for v2; N x update = {n} x {images[2][1]} = {expect}; "
        f"{100 * (served - expect) / expect:+.3f} %")

    # Idle: RSS and the bytes on the veths over --idle-s (MQTT keepalive pings only; polls are hours apart).
    time.sleep(5)
    rss = h.rss_kib()
    results["rss"] = rss
    log(f"idle RSS of {len(rss)} devices: median {statistics.median(rss) / 1024:.2f} MiB, max {max(rss) / 1024:.2f} MiB")
    b0 = h.veth_bytes()
    nl_off = h.nginx_lines(0)[1]
    time.sleep(o.idle_s)
    b1 = h.veth_bytes()
    lines, nl_off = h.nginx_lines(nl_off)
    idle = [b1[i] - b0[i] for i in range(n)]
    per_h = [b * 3600 / o.idle_s for b in idle]
    results["idle_push"] = (idle, len(lines))
    pings = o.idle_s / o.keepalive_s
    log(f"idle with MQTT (keepalive {o.keepalive_s} s, poll {o.push_poll_ms // 1000} s) over {o.idle_s} s: "
        f"{statistics.mean(idle):.0f} bytes/device (median {statistics.median(idle)}, max {max(idle)}), "
        f"{len(lines)} HTTP requests in all; = {statistics.mean(per_h) / 1024:.2f} KiB/h/device; "
        f"~{pings:.1f} keepalive exchanges each -> {statistics.mean(idle) / pings if pings else 0:.0f} bytes each")

    # Broker restart: stopped for --down-s, started again; the devices' reconnects per second.
    h.broker.stop()
    time.sleep(o.down_s)
    log_off = h.broker_log_size()
    t_up = time.time()
    h.broker.start()
    want = {h.dev_id(i) for i in range(n)}
    seen = {}
    end = time.monotonic() + o.timeout_s
    while len(seen) < n and time.monotonic() < end:
        for t, cid in h.broker_connects(log_off):
            if cid in want and cid not in seen:
                seen[cid] = t
        time.sleep(0.5)
    hist = {}
    for t in seen.values():
        s = int(t - int(t_up))
        hist[s] = hist.get(s, 0) + 1
    results["reconnect"] = (len(seen), hist)
    log(f"broker restart after {o.down_s} s down: {len(seen)}/{n} devices reconnected; connects per second "
        f"after the restart: " + " ".join(f"{s}s:{c}" for s, c in sorted(hist.items())))

    # Polling only: no broker, poll interval --poll-ms; release v3 and wait.
    h.stop_devices()
    h.broker.stop()
    for i in range(n):
        h.write_device(i, mqtt=False, poll_ms=o.poll_ms)
    h.start_devices()
    time.sleep(min(30, o.poll_ms / 1000) + 5)  # their first polls (uniform below the interval, at most 30 s) are done
    off = h.registry_bytes(0)[2]
    h.release(3, images[3][0])
    t0 = time.time()
    lat = h.wait_committed(3, t0, o.timeout_s + 3 * o.poll_ms / 1000)
    results["poll"] = lat
    log(latency_line(f"polling only (interval {o.poll_ms / 1000:.0f} s, no broker)", lat, n))
    served3, reqs3, off = h.registry_bytes(off)
    log(f"registry: {served3} bytes for v3; N x update = {n * images[3][1]}; "
        f"{100 * (served3 - n * images[3][1]) / (n * images[3][1]):+.3f} %")

    # A poll's cost: the veth bytes over 2 intervals / the timestamp requests nginx saw.
    time.sleep(5)
    b0 = h.veth_bytes()
    nl_off = h.nginx_lines(0)[1]
    w = 2 * o.poll_ms / 1000
    time.sleep(w)
    b1 = h.veth_bytes()
    lines, _ = h.nginx_lines(nl_off)
    polls = sum(1 for f in lines if len(f) >= 3 and f[2].endswith("timestamp.json"))
    not_modified = sum(1 for f in lines if len(f) >= 3 and f[2].endswith("timestamp.json") and f[1] == "304")
    connections = len({f[4] for f in lines if len(f) >= 5})
    total = sum(b1[i] - b0[i] for i in range(n))
    per_poll = total / polls if polls else float("nan")
    results["poll_cost"] = per_poll
    results["poll_shape"] = (polls, not_modified, len(lines), connections)
    log(f"idle polling over {w:.0f} s: {polls} timestamp polls ({not_modified} answered 304), {len(lines)} requests "
        f"on {connections} connections, {total} bytes on the veths: {per_poll:.0f} bytes a poll")

    stuck = [i for i in range(n) if h.current(i) != 3]
    dead = h.dead()
    log(f"stuck (not on v3): {len(stuck)}; device processes exited: {len(dead)}")

    # The summary.
    ping = statistics.mean(results["idle_push"][0]) / pings if pings else float("nan")
    print()
    print(f"== herd of {n} devices ({os.cpu_count()} cores) ==")
    print(latency_line("push  ", results["push"], n))
    print(latency_line(f"poll {o.poll_ms // 1000}s", results["poll"], n))
    s, r, e = results["bytes"]
    print(f"CPU per device-update: device {1000 * results['cpu'][0] / n:.0f} ms, servers {1000 * results['cpu'][1] / n:.1f} ms")
    print(f"registry bytes (v2): {s} served, N x update {e}: {100 * (s - e) / e:+.3f} %")
    print(f"broker restart: {results['reconnect'][0]}/{n} reconnected; per second: "
          + " ".join(f"{k}s:{c}" for k, c in sorted(results["reconnect"][1].items())))
    print(f"stuck: {len(stuck)}")
    print(f"idle RSS: median {statistics.median(rss) / 1024:.2f} MiB, max {max(rss) / 1024:.2f} MiB")
    print(f"idle bytes: measured {statistics.mean(per_h) / 1024:.2f} KiB/h/device at keepalive {o.keepalive_s} s; "
          f"one keepalive exchange {ping:.0f} B, one poll {per_poll:.0f} B")
    p, nm, reqs, conns = results["poll_shape"]
    print(f"  idle polls: {p} ({nm} answered 304), {reqs} requests on {conns} connections")
    for ka, poll_h in ((300, 900), (300, 3600), (300, 6 * 3600)):
        est = 3600 / ka * ping + 3600 / poll_h * per_poll
        print(f"  keepalive {ka} s + poll every {poll_h // 60} min: {est / 1024:.2f} KiB/h/device")
    return 0 if not stuck and not dead else 1


def skip(why):
    print(f"skipped: fleet.sh {why}")
    return 77


def main():
    ap = argparse.ArgumentParser(description="the fleet herd benchmark (bench/fleet.sh)")
    ap.add_argument("--devices", type=int, default=500)
    ap.add_argument("--berth", required=True)
    ap.add_argument("--layer-kib", type=int, default=512, help="the update's image layer (incompressible)")
    ap.add_argument("--keepalive-s", type=int, default=60,
                    help="the devices' MQTT keepalive; the idle window holds a whole number of exchanges, "
                         "whose cost is then scaled to the agent's default of 300 s")
    ap.add_argument("--push-poll-ms", type=int, default=3600000, help="poll interval with MQTT")
    ap.add_argument("--poll-ms", type=int, default=30000, help="poll interval of the polling-only run")
    ap.add_argument("--idle-s", type=int, default=120, help="the idle window")
    ap.add_argument("--down-s", type=int, default=10, help="how long the broker is down")
    ap.add_argument("--timeout-s", type=int, default=600, help="the longest wait for every device to commit")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--perf-push", metavar="FILE",
                    help="record a system-wide perf profile (perf record -a -g) of the push into FILE")
    o = ap.parse_args()
    # What is missing: skipped (77), as the slow suite's tests do.
    if os.geteuid() != 0:
        return skip("needs root (network namespaces, a bridge)")
    for exe in ("/usr/sbin/nginx", shutil.which("docker-registry")):
        if not exe or not os.access(exe, os.X_OK):
            return skip("needs nginx and docker-registry")
    if not have_mosquitto():
        return skip("needs mosquitto, mosquitto-clients and openssl")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    h = Herd(o, os.path.abspath(o.berth))

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return run(h)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        h.cleanup()


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""TLS session resumption across processes (HttpOptions::tls_session_dir)
against Debian's nginx with TLS on 127.0.0.1: each http_probe run is a new
process, as the fleet agent's refresh children are. The first run makes a
full handshake and keeps the session (a 0600 file named after the host and
port); the next run offers it and nginx resumes it ($ssl_session_reused
"r" in its log), with fewer bytes on the wire (counted by a relay in
front of nginx). An expired kept session, or one kept for another port, is
not offered.

    http_tls_resume_test.py HTTP_PROBE

Exit 77 when nginx or openssl is missing.
"""
import glob
import os
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

PROBE = shlex.split(os.environ.get("MESON_EXE_WRAPPER", "")) + [sys.argv[1]]
NGINX = "/usr/sbin/nginx"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """127.0.0.1:port -> target, counting the bytes of each connection both ways."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.counts = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            count = [0]
            self.counts.append(count)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pipe, args=(a, b, count), daemon=True).start()

    @staticmethod
    def pipe(a, b, count):
        while True:
            try:
                data = a.recv(65536)
            except OSError:
                data = b""
            if not data:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            count[0] += len(data)
            b.sendall(data)


def main():
    if not os.access(NGINX, os.X_OK) or not shutil.which("openssl"):
        print("SKIP: needs nginx and openssl")
        return 77
    work = tempfile.mkdtemp(prefix="berth-tls-resume-")
    os.chmod(work, 0o755)
    nginx = None
    try:
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        www = os.path.join(work, "www")
        os.makedirs(www)
        with open(os.path.join(www, "timestamp.json"), "w") as f:
            f.write('{"signed": {}}\n')
        port = free_port()
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 64; }}
http {{
    log_format resume "$ssl_session_reused $ssl_protocol $status";
    access_log {work}/access.log resume;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_session_tickets on;
        ssl_session_timeout 10m;
        root {www};
    }}
}}
""")
        nginx = subprocess.Popen([NGINX, "-p", work, "-c", conf, "-e", os.path.join(work, "error.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.time() > end or nginx.poll() is not None:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)
        relay = Relay(port)
        sessions = os.path.join(work, "sessions")
        os.makedirs(sessions, mode=0o700)

        def probe(p=relay.port):
            r = subprocess.run(PROBE + ["--ca", cert, "--tls-session-dir", sessions, f"https://127.0.0.1:{p}/timestamp.json"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and r.stdout.startswith("status 200"), (r.stdout, r.stderr)

        def log():
            with open(os.path.join(work, "access.log")) as f:
                return [line.split()[0] for line in f]

        probe()
        files = glob.glob(os.path.join(sessions, "tls-session-*"))
        assert len(files) == 1 and files[0].endswith(f"tls-session-127.0.0.1-{relay.port}"), files
        assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600, oct(os.stat(files[0]).st_mode)
        probe()
        assert log() == [".", "r"], log()
        full, resumed = relay.counts[0][0], relay.counts[1][0]
        assert resumed < full, (full, resumed)
        print(f"ok a new process resumes the kept session: {full} bytes on the wire with a full handshake, "
              f"{resumed} resumed (-{100 * (full - resumed) / full:.0f} %)")

        with open(files[0], "rb") as f:
            kept = f.read()
        with open(files[0], "wb") as f:
            f.write(b"1000" + kept[kept.index(b"\n"):])  # expired in 1970
        probe()
        assert log()[-1] == ".", log()
        print("ok an expired kept session is not offered")

        # The session kept for the relay's port is not offered to nginx's own port.
        probe(port)
        assert log()[-1] == ".", log()
        print("ok a session is offered only to the host and port it came from")
        return 0
    finally:
        if nginx and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

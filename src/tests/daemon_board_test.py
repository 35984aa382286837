#!/usr/bin/python3
"""Where `berth daemon` finds its board profile (docs/board.md): --board,
else `berth.board=` on the kernel command line, else /etc/berth/board.json.
The daemon runs as a subreaper with a temporary device root; the kernel
command line is a file the test writes ($BERTH_CMDLINE, test builds only:
skipped otherwise). /etc/berth/board.json itself is not touched (the unit
test ota-board covers the default path with a path of its own); each case
checks `berth daemon status --json` and the daemon's log.

Usage: daemon_board_test.py BERTH"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

exe = os.path.abspath(sys.argv[1])
if "test-hooks" not in subprocess.run([exe, "version"], capture_output=True, text=True).stdout:
    print("SKIP: needs a test build (-Dtest_hooks=true) for BERTH_CMDLINE")
    sys.exit(77)
if os.geteuid() != 0:
    print("SKIP: the daemon needs root")
    sys.exit(77)


def poll(cond, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return None


class Daemon:
    def __init__(self, tmp, name, args, cmdline):
        self.store = os.path.join(tmp, name, "store")
        self.run = os.path.join(tmp, name, "run")
        os.makedirs(self.store)
        cmdfile = os.path.join(tmp, name, "cmdline")
        with open(cmdfile, "w") as f:
            f.write(cmdline + "\n")
        env = dict(os.environ, BERTH_CMDLINE=cmdfile)
        env.pop("BERTH_FAILPOINTS", None)
        self.stderr = os.path.join(tmp, name, "daemon.stderr")
        self.proc = subprocess.Popen([exe, "--root", self.run, "daemon", "--store", self.store, *args], env=env,
                                     stdout=subprocess.DEVNULL, stderr=open(self.stderr, "w"))

    def status(self):
        r = subprocess.run([exe, "--root", self.run, "daemon", "status", "--json"], capture_output=True, text=True)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_up(self):
        return poll(lambda: self.proc.poll() is not None or self.status())

    def log(self):
        path = os.path.join(self.store, "daemon.log")
        return open(path).read() if os.path.exists(path) else ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def board_file(tmp, name):
    path = os.path.join(tmp, f"{name}.json")
    with open(path, "w") as f:
        json.dump({"name": name, "apps": {"devices": ["/dev/ttyUSB*"]}}, f)
    return path


failures = []


def case(name, fn):
    try:
        fn()
        print(f"ok - {name}")
    except AssertionError as e:
        failures.append(name)
        print(f"not ok - {name}: {e}")


tmp = tempfile.mkdtemp(prefix="berth-daemon-board-")
daemons = []


def run(name, args, cmdline):
    d = Daemon(tmp, name, args, cmdline)
    daemons.append(d)
    st = d.wait_up()
    return d, st


def kernel_command_line_names_the_board():
    cmd = board_file(tmp, "from-cmdline")
    d, st = run("cmdline", [], f"console=ttyAMA0 berth.board={cmd} quiet")
    assert st and st.get("board"), f"daemon status has no board: {st}, {open(d.stderr).read()[-300:]}"
    assert st["board"] == {"path": cmd, "from": "berth.board= on the kernel command line"}, st["board"]
    assert f"board profile `{cmd}` (berth.board= on the kernel command line)" in d.log(), d.log()[-500:]
    d.stop()


def flag_wins_over_the_kernel_command_line():
    cmd, flag = board_file(tmp, "cmdline-loses"), board_file(tmp, "flag-wins")
    d, st = run("flag", ["--board", flag], f"berth.board={cmd}")
    assert st and st.get("board") == {"path": flag, "from": "--board"}, st
    d.stop()


def a_missing_board_named_on_the_command_line_stops_the_daemon():
    absent = os.path.join(tmp, "absent.json")
    d = Daemon(tmp, "absent", [], f"berth.board={absent}")
    daemons.append(d)
    rc = d.proc.wait(30)
    err = open(d.stderr).read()
    assert rc != 0 and absent in err, f"exit {rc}: {err[-300:]}"


def no_board_anywhere_runs_without_one():
    if os.path.exists("/etc/berth/board.json"):
        print("  (this machine has /etc/berth/board.json: the no-board case does not apply)")
        return
    d, st = run("none", [], "console=ttyS0 quiet")
    assert st and "board" in st and st["board"] is None, st
    r = subprocess.run([exe, "--root", d.run, "daemon", "status"], capture_output=True, text=True)
    assert "board none" in r.stdout, r.stdout
    d.stop()


try:
    case("the kernel command line names the board", kernel_command_line_names_the_board)
    case("--board wins over the kernel command line", flag_wins_over_the_kernel_command_line)
    case("a board named on the command line but missing stops the daemon",
         a_missing_board_named_on_the_command_line_stops_the_daemon)
    case("without a board anywhere the daemon runs without one", no_board_anywhere_runs_without_one)
finally:
    for d in daemons:
        d.stop()
    shutil.rmtree(tmp, ignore_errors=True)
print(f"{4 - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)

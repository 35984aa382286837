#!/usr/bin/python3
"""Runs the qemu-virt-armhf board (or, with board="qemu-virt-arm64", the
arm64 one): Debian's u-boot-qemu (qemu_arm, qemu_arm64) as the firmware, one
virtio disk made by qemu-tests/ab_image.py, and nothing else the guest could
reach.

    qemu-tests/ab_qemu.py disk.img [--board qemu-virt-arm64] [--log console.log] [--timeout S]

As a library (the A/B tests and the power-cut campaign): Machine(disk).start()
boots it, wait(regex) follows the serial console, kill() is a power cut
(SIGKILL: no shutdown, no flush beyond what the guest already wrote), and
start() again boots the same disk. Resets inside the guest (U-Boot's
`reset`, a kernel panic with panic=-1, the watchdog) restart the machine in
the same QEMU process, as on a board.

The machine: `qemu-system-arm -M virt` (arm64: `qemu-system-aarch64 -M virt
-cpu cortex-a53`, 512 MiB: U-Boot decompresses the 32 MiB Image above the
initrd), 1 vCPU, 256 MiB, `-bios` the board's u-boot.bin, the disk
as virtio-blk-device (virtio-mmio: the bus the armmp kernel's virtio_mmio
module drives and U-Boot scans), QEMU's watchdog device i6300esb on the PCI
bus (arm64's kernel drives it, and its slots use it; the armmp kernel has
no driver for it: armhf's watchdog is the softdog module), no network
(`-nic none`), the serial console on stdout, read line by line, each line
also appended to the log file with the time since the first start.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from console import ConsoleLines

# Each board's QEMU, its CPU (None: the machine's default), memory in MiB
# and U-Boot build.
BOARDS = {
    "qemu-virt-armhf": {"qemu": "qemu-system-arm", "cpu": None, "memory": 256,
                        "uboot": "/usr/lib/u-boot/qemu_arm/u-boot.bin"},
    "qemu-virt-arm64": {"qemu": "qemu-system-aarch64", "cpu": "cortex-a53", "memory": 512,
                        "uboot": "/usr/lib/u-boot/qemu_arm64/u-boot.bin"},
}
UBOOT = BOARDS["qemu-virt-armhf"]["uboot"]


def missing(board="qemu-virt-armhf"):
    """Why the board cannot run here, or None."""
    b = BOARDS[board]
    if not shutil.which(b["qemu"]):
        return f"{b['qemu']} is not installed (apt-get install qemu-system-arm)"
    if not os.path.isfile(b["uboot"]):
        return f"{b['uboot']} is missing (apt-get install u-boot-qemu)"
    return None


class Machine(ConsoleLines):
    def __init__(self, disk, log=None, smp=1, memory=None, echo=True, board="qemu-virt-armhf"):
        self.disk = os.path.abspath(disk)
        self.log = log
        self.board = BOARDS[board]
        self.smp, self.memory, self.echo = smp, memory or self.board["memory"], echo
        self.lines = []  # (seconds since the first start, text), every boot
        self.proc = None
        self.t0 = None
        self.cond = threading.Condition()
        self.reader = None

    def command(self):
        b = self.board
        return [b["qemu"], "-M", "virt"] + (["-cpu", b["cpu"]] if b["cpu"] else []) + [
                "-m", str(self.memory), "-smp", str(self.smp),
                "-nographic", "-monitor", "none", "-nic", "none", "-bios", b["uboot"],
                "-drive", f"if=none,id=disk,format=raw,file={self.disk}",
                "-device", "virtio-blk-device,drive=disk", "-device", "i6300esb"]

    def start(self):
        """Powers the machine on (again); returns the index of its first console line."""
        assert self.proc is None, "the machine is running"
        if self.t0 is None:
            self.t0 = time.monotonic()
        first = len(self.lines)
        self._note(f"== power on: {' '.join(self.command())}")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self.reader.start()
        return first

    def _note(self, text):
        t = time.monotonic() - self.t0
        with self.cond:
            self.lines.append((t, text))
            self.cond.notify_all()
        if self.echo:
            print(f"[{t:6.1f}] {text}", flush=True)
        if self.log:
            with open(self.log, "a") as f:
                f.write(f"[{t:6.1f}] {text}\n")

    def _read(self, proc):
        for raw in proc.stdout:
            self._note(raw.decode(errors="replace").rstrip("\r\n"))
        proc.wait()
        with self.cond:
            self.cond.notify_all()

    def console_open(self):
        return self.proc is not None and (self.proc.poll() is None or self.reader.is_alive())

    def text(self, since=0):
        with self.cond:
            return [line for _, line in self.lines[since:]]

    def kill(self):
        """A power cut: SIGKILL, then wait for the process and its console."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(10)
        self.proc = None
        self._note("== power cut (SIGKILL)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("disk")
    ap.add_argument("--log", help="append the console to this file")
    ap.add_argument("--timeout", type=float, default=300, help="seconds before the power is cut")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--board", choices=sorted(BOARDS), default="qemu-virt-armhf")
    args = ap.parse_args()
    why = missing(args.board)
    if why:
        sys.exit(why)
    m = Machine(args.disk, log=args.log, smp=args.smp, board=args.board)
    m.start()
    try:
        m.wait(r"(?!)", args.timeout)
    finally:
        m.kill()


if __name__ == "__main__":
    main()

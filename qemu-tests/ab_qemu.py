#!/usr/bin/python3
"""Runs the qemu-virt-armhf board: Debian's u-boot-qemu (qemu_arm) as the
firmware, one virtio disk made by qemu-tests/ab_image.py, and nothing else
the guest could reach.

    qemu-tests/ab_qemu.py disk.img [--log console.log] [--timeout S]

As a library (the A/B tests and the power-cut campaign): Machine(disk).start()
boots it, wait(regex) follows the serial console, kill() is a power cut
(SIGKILL: no shutdown, no flush beyond what the guest already wrote), and
start() again boots the same disk. Resets inside the guest (U-Boot's
`reset`, a kernel panic with panic=-1, the watchdog) restart the machine in
the same QEMU process, as on a board.

The machine: `-M virt`, 1 vCPU, 256 MiB, `-bios` the u-boot.bin, the disk
as virtio-blk-device (virtio-mmio: the bus the armmp kernel's virtio_mmio
module drives and U-Boot scans), QEMU's watchdog device i6300esb on the PCI
bus (the armmp kernel has no driver for it: the guest's watchdog is the
softdog module; the device is there for kernels that have one), no network
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

UBOOT = "/usr/lib/u-boot/qemu_arm/u-boot.bin"


def missing():
    """Why the board cannot run here, or None."""
    if not shutil.which("qemu-system-arm"):
        return "qemu-system-arm is not installed (apt-get install qemu-system-arm)"
    if not os.path.isfile(UBOOT):
        return f"{UBOOT} is missing (apt-get install u-boot-qemu)"
    return None


class Machine(ConsoleLines):
    def __init__(self, disk, log=None, smp=1, memory=256, echo=True):
        self.disk = os.path.abspath(disk)
        self.log = log
        self.smp, self.memory, self.echo = smp, memory, echo
        self.lines = []  # (seconds since the first start, text), every boot
        self.proc = None
        self.t0 = None
        self.cond = threading.Condition()
        self.reader = None

    def command(self):
        return ["qemu-system-arm", "-M", "virt", "-m", str(self.memory), "-smp", str(self.smp),
                "-nographic", "-monitor", "none", "-nic", "none", "-bios", UBOOT,
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
    args = ap.parse_args()
    why = missing()
    if why:
        sys.exit(why)
    m = Machine(args.disk, log=args.log, smp=args.smp)
    m.start()
    try:
        m.wait(r"(?!)", args.timeout)
    finally:
        m.kill()


if __name__ == "__main__":
    main()

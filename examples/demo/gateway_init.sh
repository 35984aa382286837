#!/bin/busybox sh
# shellcheck shell=dash
# The /init of the demo's emulated gateway (examples/demo/sensor_story.py):
# the work a board's init does before berth takes over as PID 1. Mounts
# /proc, /sys and /dev, loads the modules (virtio disk and network, ext4,
# overlay), brings up eth0 on QEMU's user network (10.0.2.15; the host's
# services appear at 10.0.2.100 through QEMU's guestfwd, nothing else is
# reachable), mounts the state disk (the device root: the trust policy and
# key, the fleet's TUF root, the agent's configuration), starts a shell on
# the serial console for the demo, then `exec berth daemon --init`.
#
# The console shell is qemu-tests/daemon_scenario.sh's (in the initramfs as
# /daemon_scenario.sh): it reads `ID COMMAND...` lines and answers
# `BERTH-BEGIN ID`, what the command printed, `BERTH-END ID STATUS`.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
DISK=/mnt/disk
STORE=$DISK/berth

uptime_s() { cut -d' ' -f1 /proc/uptime; }

boot() {
    /bin/busybox mount -t proc proc /proc
    /bin/busybox mount -t sysfs sysfs /sys
    /bin/busybox mount -t devtmpfs devtmpfs /dev
    /bin/busybox --install -s /bin
    # Kernel messages would cut the shell's lines in two.
    echo "3 4 1 7" >/proc/sys/kernel/printk
    while read -r m; do
        insmod "/modules/$m" 2>/dev/null || echo "DEMO-FACT insmod-failed $m"
    done </modules/load-order
    ip link set lo up
    if ip link set eth0 up 2>/dev/null; then
        ip addr add 10.0.2.15/24 dev eth0
        ip route add default via 10.0.2.2
        echo "DEMO-FACT network eth0 10.0.2.15"
    else
        echo "DEMO-FACT no-network"
    fi
    mkdir -p $DISK
    if ! mount -t ext4 /dev/vda $DISK; then
        echo "DEMO-FACT no-state-disk"
        exec sh
    fi
    echo "DEMO-FACT boot uptime $(uptime_s)"
    # The console shell of the daemon scenario test (its protocol, above).
    setsid /bin/busybox sh /daemon_scenario.sh console </dev/ttyAMA0 >/dev/ttyAMA0 2>&1 &
    # As PID 1 berth logs to the kernel's log (dmesg); anything else it
    # prints goes to the disk (the console is the demo's shell).
    exec /usr/bin/berth daemon --init --store $STORE --insecure-http >>$DISK/daemon.log 2>&1
}

boot

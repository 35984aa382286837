#!/bin/busybox sh
# shellcheck shell=dash
# The guest's check script of the daemon test (qemu-tests/daemon_test.py),
# run by the PID 1 under test (berth-pid1-probe) after its bring-up:
#   daemon_init.sh check    print the facts the test judges, mount the state
#                           disk, count the boot; exit 10 on the first boot
#                           (the probe then hangs its watchdog), 20 on the
#                           second (it disarms it and powers off), 0 after
#   daemon_init.sh final    the last facts before the power-down
# Facts are single lines `BERTH-FACT KEY VALUE...` on the console, read
# straight from the kernel (mountinfo, /sys, dmesg, the disk), never from
# berth: the test trusts only these.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin

fact() { echo "BERTH-FACT $*"; }

check() {
    # busybox links its applets to the binary /proc/self/exe names.
    /bin/busybox --install -s /bin
    # Kernel messages would cut fact lines in two.
    echo "1 4 1 7" >/proc/sys/kernel/printk
    fact pid1 "$(cat /proc/1/comm)"
    fact hostname "$(hostname)"
    fact lo-flags "$(cat /sys/class/net/lo/flags)"
    if grep -q 'berth\.cgroups=hybrid' /proc/cmdline; then
        # The v1 layout: the mount table shows it; then power off.
        fact v1-controllers "$(awk '!/^#/ && $4 == 1 { print $1 }' /proc/cgroups | tr '\n' ' ')"
        awk '{ for (i = 7; $i != "-"; i++); print "BERTH-FACT mount", $5, $(i + 1), $6, $(i + 3) }' /proc/self/mountinfo
        return 0
    fi
    fact cgroup-controllers "$(cat /sys/fs/cgroup/cgroup.controllers)"
    fact cgroup-subtree "$(cat /sys/fs/cgroup/cgroup.subtree_control)"
    if [ -L /dev/ptmx ]; then fact ptmx "link $(readlink /dev/ptmx)"; elif [ -c /dev/ptmx ]; then fact ptmx chardev; else fact ptmx missing; fi
    dmesg | grep 'berth: ' | sed 's/^\[[ 0-9.]*\] /BERTH-FACT kmsg /'
    # The mount table as the probe's two bring-ups left it: mount point,
    # type, options, superblock options.
    awk '{ for (i = 7; $i != "-"; i++); print "BERTH-FACT mount", $5, $(i + 1), $6, $(i + 3) }' /proc/self/mountinfo

    while read -r m; do
        insmod "/modules/$m" || fact insmod-failed "$m"
    done </modules/load-order
    # The state disk: an ext4 image the host made, kept across reboots.
    mkdir -p /data
    if ! mount -t ext4 /dev/vda /data; then
        fact boot unknown
        return 0
    fi
    boots=$(cat /data/boots 2>/dev/null || echo 0)
    boots=$((boots + 1))
    echo "$boots" >/data/boots
    sync
    fact boot "$boots"
    fact disk-files "$(cd /data && echo *)"
    if [ "$boots" = 1 ]; then
        # The store the host filled: the image runs from it (unpacked here).
        # shellcheck disable=SC2016 # $(hostname) is the container's
        out=$(timeout 120 berth run --store /data --rm -q --hostname app localhost/app:1 \
            /bin/sh -c 'echo "hello from $(hostname)"' 2>&1)
        fact image-run "$(echo "$out" | tr '\n' ' ')"
    fi
    case $boots in
        1)
            # The softdog's "Initiating system reboot" (KERN_CRIT) on the
            # console: the kernel's word that the reset is the watchdog's.
            echo "3 4 1 7" >/proc/sys/kernel/printk
            return 10 ;;
        2) return 20 ;;
        *) return 0 ;;
    esac
}

final() {
    set -- /proc/[0-9]*
    fact final-pids "$#"
    fact final-data "$(cat /data/boots)"
}

case $1 in
    check) check ;;
    final) final ;;
    *) echo "daemon_init.sh: unknown phase \`$1\`"; exit 2 ;;
esac

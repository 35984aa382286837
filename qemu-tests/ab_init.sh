#!/bin/sh
# shellcheck shell=dash
# /sbin/init of the A/B test slots (qemu-tests/ab_image.py puts it in each
# root filesystem): says which slot booted, as the kernel command line
# names it (`rauc.slot=`), mounts the data partition where the board
# profile (/etc/berth/board.json) says, counts the boot there, and becomes
# `berth daemon --init` with its state root on the data partition and the
# board's watchdog device (softdog, or QEMU's i6300esb) as its watchdog.
# A slot built with /etc/berth-ab-broken is a broken system: its init
# fails at once, PID 1 exits and the kernel panics (and resets,
# panic=-1), as a bad update would. One built with /etc/berth-ab-hang
# hangs instead: it counts its boot, starts the watchdog with a 5 s
# timeout, feeds it once and never again, and berth never starts; only
# the watchdog resets the machine.
#
# Console lines the tests read (qemu-tests/ab_boot_test.py):
#   BERTH-AB boot slot=S root=DEV boots=N   this slot's Nth boot on this data partition
#   BERTH-AB broken slot=S                  the broken init, about to exit
#   BERTH-AB hang slot=S                    the hanging init, the watchdog started
#   BERTH-AB up slot=S pid1=berth           berth is PID 1 and its control socket is there
#   BERTH-AB slot-status: LINE              what `berth slot status` says (a berth
#                                           without that command says so)
#   BERTH-AB system slot=S version=V        the slot's /etc/berth-system-version
#   [ SECONDS] berth: TEXT                  one of berth's log lines (below)
#
# The A/B update tests (qemu-tests/ab_update_test.py, ab_campaign.py) set
# up more through the data partition, as a device's configuration would:
# ab/daemon-args, more arguments for `berth daemon` (one line: the board
# profile, plain http to the test's registry); ab/log-console, berth's log
# lines (PID 1 logs to the kernel's log) printed on the console too.
# With a network card (QEMU's user network), eth0 gets
# QEMU's usual guest address.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
slot=none
root=none
# shellcheck disable=SC2013 # the words of the command line
for arg in $(cat /proc/cmdline); do
    case $arg in
        rauc.slot=*) slot=${arg#rauc.slot=} ;;
        berth.slot=*) slot=${arg#berth.slot=} ;;
        root=*) root=${arg#root=} ;;
    esac
done
if [ -f /etc/berth-ab-broken ]; then
    echo "BERTH-AB broken slot=$slot"
    exit 1
fi
DATA=/var/lib/berth
mount -t ext4 /dev/vda4 $DATA || { echo "BERTH-AB no-data slot=$slot"; exit 1; }
mkdir -p $DATA/ab
echo "$slot" >>$DATA/ab/boots
sync
boots=$(grep -c "^$slot\$" $DATA/ab/boots)
echo "BERTH-AB boot slot=$slot root=$root boots=$boots"
if [ -f /etc/berth-ab-hang ]; then
    echo "BERTH-AB hang slot=$slot"
    exec watchdog -F -T 5 -t 3600 /dev/watchdog
fi
if [ -f /etc/berth-system-version ]; then
    echo "BERTH-AB system slot=$slot version=$(cat /etc/berth-system-version)"
fi
if [ -e /sys/class/net/eth0 ]; then
    ip link set lo up
    ip link set eth0 up
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
fi
extra=
[ -f $DATA/ab/daemon-args ] && extra=$(cat $DATA/ab/daemon-args)
if [ -f $DATA/ab/log-console ]; then
    # berth, PID 1, logs to the kernel's log at level info; the console
    # prints up to warnings (`quiet`): up to info from now on. The kernel
    # prints each line as it is written, nothing is late; and nothing is
    # lost: berth turns /dev/kmsg's rate limit (10 lines in 5 s) off
    # itself (printk_devkmsg), as it must on a device whose command line
    # the vendor wrote.
    echo 7 >/proc/sys/kernel/printk
fi
# berth does not print on the console once it is up: a watcher tells the
# test, from the kernel's view (PID 1's name, the control socket).
(
    n=0
    while [ $n -lt 600 ]; do
        if [ "$(cat /proc/1/comm)" = berth ] && [ -S /run/berth/daemon.sock ]; then
            echo "BERTH-AB up slot=$slot pid1=berth"
            /usr/bin/berth slot status 2>&1 | while read -r line; do echo "BERTH-AB slot-status: $line"; done
            exit 0
        fi
        sleep 0.2
        n=$((n + 1))
    done
    echo "BERTH-AB not-up slot=$slot pid1=$(cat /proc/1/comm)"
) &
# shellcheck disable=SC2086 # $extra is words
exec /usr/bin/berth daemon --init --store $DATA --watchdog /dev/watchdog --watchdog-timeout 10 $extra

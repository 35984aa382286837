#!/bin/busybox sh
# shellcheck shell=dash
# The /init of each A/B slot's initramfs (/boot/initrd.img in the slot,
# written by qemu-tests/ab_image.py). The armmp kernel builds the virtio
# disk and ext4 as modules, so a slot's root filesystem cannot be mounted
# without this: load the modules, mount `root=` (the slot partition the
# boot script names) read-only, move /proc, /sys and /dev over, and hand
# PID 1 to the slot's /sbin/init. Any failure ends PID 1, so the kernel
# panics and (panic=-1) resets: the boot counter then decides what boots.
export PATH=/bin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox --install -s /bin
while read -r m; do
    insmod "/modules/$m" || echo "berth-ab-initrd: insmod $m failed"
done </modules/load-order
root=
# shellcheck disable=SC2013 # the words of the command line
for arg in $(cat /proc/cmdline); do
    case $arg in root=*) root=${arg#root=} ;; esac
done
[ -n "$root" ] || { echo "berth-ab-initrd: no root= on the command line"; exit 1; }
# rootwait: the disk appears when virtio_blk has probed it.
n=0
while [ ! -b "$root" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
mkdir -p /root
mount -t ext4 -o ro "$root" /root || { echo "berth-ab-initrd: cannot mount $root"; exit 1; }
for d in dev proc sys; do mount --move "/$d" "/root/$d"; done
exec switch_root /root /sbin/init

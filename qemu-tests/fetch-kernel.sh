#!/usr/bin/env bash
# Fetches the Debian 12 kernel and busybox that the qemu-system tests boot:
#   qemu-tests/fetch-kernel.sh armhf [DIR]        (DIR defaults to .sysroot/armhf-kernel)
#
# The packages are extracted exactly as the cross sysroot is (cross/build-sysroot.sh):
# `mmdebstrap --variant=extract` from the bookworm suite of the host's own apt
# sources (cross/debian-extract.sh), nothing installed on the host. armhf gets
# linux-image-armmp, whose kernel boots on `qemu-system-arm -M virt` with full
# cgroup v2 (cpuset cpu io memory pids, the device eBPF hook, cgroup.freeze);
# busybox-static is the initramfs' shell and the containers' userland.
#
# Only what the tests use is kept: DIR/vmlinuz (a copy of boot/vmlinuz-*),
# DIR/busybox, DIR/config (the kernel's .config, to tell a missing feature
# from a berth bug) and DIR/release. Cached: does nothing when DIR's stamp
# file matches (it is written last, so an interrupted fetch is redone).
set -euo pipefail

arch=${1:?usage: fetch-kernel.sh armhf [DIR]}
case $arch in
    armhf) kernel_pkg=linux-image-armmp ;;
    *) echo "fetch-kernel.sh: no kernel package known for \`$arch\`" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
dir=${2:-$top/.sysroot/$arch-kernel}
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
suite=bookworm
packages=("$kernel_pkg" busybox-static)
stamp=$dir/.berth-kernel
want="$suite ${packages[*]}"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "kernel $arch: up to date in $dir"
    exit 0
fi

rm -rf "$dir" "$dir.tmp"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
SUITE=$suite "$top/cross/debian-extract.sh" "$arch" "$tmp/root" "${packages[@]}"

mkdir -p "$dir.tmp"
vmlinuz=$(find "$tmp/root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -n 1)
[ -n "$vmlinuz" ] || { echo "fetch-kernel.sh: $kernel_pkg has no /boot/vmlinuz-*" >&2; exit 1; }
cp "$vmlinuz" "$dir.tmp/vmlinuz"
cp "$tmp/root/boot/config-${vmlinuz##*/vmlinuz-}" "$dir.tmp/config"
busybox=$tmp/root/bin/busybox
[ -f "$busybox" ] || busybox=$tmp/root/usr/bin/busybox
cp "$busybox" "$dir.tmp/busybox"
echo "${vmlinuz##*/vmlinuz-}" >"$dir.tmp/release"

mv "$dir.tmp" "$dir"
echo "$want" >"$stamp"
echo "kernel $arch: $(cat "$dir/release") in $dir"

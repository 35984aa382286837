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
# from a berth bug), DIR/release, and DIR/modules/: the modules the daemon
# test loads with busybox insmod (the virtio disk, ext4 for the state root,
# overlayfs for the containers' root filesystems,
# the softdog watchdog, virtio-net for the demo's gateway (run.sh demo);
# armmp builds them as modules), with every module
# they depend on, uncompressed, and DIR/modules/load-order naming them
# dependencies first. Cached: does nothing when DIR's stamp file matches (it
# is written last, so an interrupted fetch is redone).
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
# What the daemon test's initramfs loads (qemu-tests/daemon_test.py), and the
# demo gateway's network card (examples/demo/).
modules=(virtio_mmio virtio_blk crc32c_generic ext4 overlay softdog virtio_net)
stamp=$dir/.berth-kernel
want="$suite ${packages[*]} modules: ${modules[*]}"

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

# The modules and their dependencies, in load order. The package ships no
# modules.dep (depmod runs at install), so each module's own `depends=`
# (its .modinfo section, read with the cross objcopy) is followed.
moddir=$tmp/root/lib/modules/${vmlinuz##*/vmlinuz-}
[ -d "$moddir" ] || moddir=$tmp/root/usr/lib/modules/${vmlinuz##*/vmlinuz-}
objcopy=arm-linux-gnueabihf-objcopy
mkdir -p "$dir.tmp/modules"
: >"$dir.tmp/modules/load-order"
add_module() {  # add_module NAME (file names use - or _ alike)
    local name=$1 file deps dep
    grep -qx "$name.ko" "$dir.tmp/modules/load-order" && return
    file=$(find "$moddir" -name "${name}.ko*" -o -name "${name//_/-}.ko*" | head -n 1)
    [ -n "$file" ] || { echo "fetch-kernel.sh: module $name is not in $kernel_pkg (built in?)" >&2; exit 1; }
    case $file in
        *.ko) cp "$file" "$tmp/m.ko" ;;
        *.ko.xz) xz -dc "$file" >"$tmp/m.ko" ;;
        *.ko.zst) zstd -qdc "$file" >"$tmp/m.ko" ;;
        *.ko.gz) gzip -dc "$file" >"$tmp/m.ko" ;;
    esac
    "$objcopy" -O binary --only-section=.modinfo "$tmp/m.ko" "$tmp/modinfo"
    deps=$(tr '\0' '\n' <"$tmp/modinfo" | sed -n 's/^depends=//p')
    mv "$tmp/m.ko" "$dir.tmp/modules/$name.ko.part"
    for dep in ${deps//,/ }; do add_module "$dep"; done
    mv "$dir.tmp/modules/$name.ko.part" "$dir.tmp/modules/$name.ko"
    echo "$name.ko" >>"$dir.tmp/modules/load-order"
}
for m in "${modules[@]}"; do add_module "$m"; done

mv "$dir.tmp" "$dir"
echo "$want" >"$stamp"
echo "kernel $arch: $(cat "$dir/release") in $dir"

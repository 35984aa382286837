#!/usr/bin/env bash
# Fetches the Debian kernels and busybox that the qemu-system tests boot:
#   qemu-tests/fetch-kernel.sh KERNEL [DIR]       (DIR defaults to .sysroot/KERNEL-kernel)
#
#   KERNEL      package                     suite      boots on
#   armhf       linux-image-armmp (6.1)     bookworm   qemu-system-arm -M virt
#   arm64       linux-image-arm64 (6.1)     bookworm   qemu-system-aarch64 -M virt
#   armhf-5.10  linux-image-armmp (5.10)    bullseye   qemu-system-arm -M virt (an older gateway's kernel)
#
# The packages are extracted exactly as the cross sysroot is (cross/build-sysroot.sh):
# `mmdebstrap --variant=extract` from the host's own apt sources
# (cross/debian-extract.sh), nothing installed on the host. bullseye is not
# among the host's suites: it is read from the archive the host's bookworm
# entries point at (ARCHIVE_SUITE). armmp's kernel boots with full cgroup v2
# (cpuset cpu io memory pids, the device eBPF hook, cgroup.freeze);
# busybox-static (always bookworm's, of the kernel's architecture) is the
# initramfs' shell and the containers' userland.
#
# Only what the tests use is kept: DIR/vmlinuz (a copy of boot/vmlinuz-*:
# armhf's zImage, arm64's uncompressed Image), DIR/busybox, DIR/config (the
# kernel's .config, to tell a missing feature from a berth bug), DIR/release,
# and DIR/modules/: the modules the tests load with busybox insmod (the
# virtio disk, ext4 for the state root, overlayfs for the containers' root
# filesystems, the softdog watchdog (arm64: also i6300esb, QEMU's watchdog
# device), virtio-net for the demo's gateway (run.sh demo); these kernels
# build them as modules), with every module they depend
# on, uncompressed, and DIR/modules/load-order naming them dependencies first
# (a module the kernel has built in, per its modules.builtin, is left out).
# Cached: does nothing when DIR's stamp file matches (it is written last, so
# an interrupted fetch is redone).
set -euo pipefail

kernel=${1:?usage: fetch-kernel.sh armhf|arm64|armhf-5.10 [DIR]}
case $kernel in
    armhf) arch=armhf suite=bookworm kernel_pkg=linux-image-armmp triple=arm-linux-gnueabihf ;;
    arm64) arch=arm64 suite=bookworm kernel_pkg=linux-image-arm64 triple=aarch64-linux-gnu ;;
    armhf-5.10) arch=armhf suite=bullseye kernel_pkg=linux-image-armmp triple=arm-linux-gnueabihf ;;
    *) echo "fetch-kernel.sh: no kernel known as \`$kernel\` (armhf, arm64, armhf-5.10)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
dir=${2:-$top/.sysroot/$kernel-kernel}
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
busybox_suite=bookworm
# What the daemon test's initramfs loads (qemu-tests/daemon_test.py), and the
# demo gateway's network card (examples/demo/).
modules=(virtio_mmio virtio_blk crc32c_generic ext4 overlay softdog virtio_net)
# Debian's arm64 kernel also drives QEMU's watchdog device (i6300esb on the
# virt machine's PCI bus; armmp has no driver for it): the arm64 A/B slots
# use it instead of softdog (qemu-tests/ab_image.py).
[ "$kernel" != arm64 ] || modules+=(i6300esb)
stamp=$dir/.berth-kernel
want="$suite $kernel_pkg busybox-static modules: ${modules[*]}"
[ "$suite" = "$busybox_suite" ] || want+=" (busybox-static of $busybox_suite)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "kernel $kernel: up to date in $dir"
    exit 0
fi

rm -rf "$dir" "$dir.tmp"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$suite" = "$busybox_suite" ]; then
    SUITE=$suite "$top/cross/debian-extract.sh" "$arch" "$tmp/root" "$kernel_pkg" busybox-static
else
    SUITE=$suite ARCHIVE_SUITE=$busybox_suite "$top/cross/debian-extract.sh" "$arch" "$tmp/root" "$kernel_pkg"
    SUITE=$busybox_suite "$top/cross/debian-extract.sh" "$arch" "$tmp/busybox" busybox-static
    mkdir -p "$tmp/root/bin"
    cp "$(ls "$tmp"/busybox/{,usr/}bin/busybox 2>/dev/null | head -n 1)" "$tmp/root/bin/busybox"
fi

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
objcopy=$triple-objcopy
builtin=$moddir/modules.builtin
mkdir -p "$dir.tmp/modules"
: >"$dir.tmp/modules/load-order"
add_module() {  # add_module NAME (file names use - or _ alike)
    local name=$1 file deps dep
    grep -qx "$name.ko" "$dir.tmp/modules/load-order" && return
    if [ -f "$builtin" ] && grep -Eq "/(${name}|${name//_/-})\.ko\$" "$builtin"; then
        return
    fi
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
echo "kernel $kernel: $(cat "$dir/release") in $dir"

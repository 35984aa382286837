#!/usr/bin/env bash
# Builds small base images from Debian packages as OCI image layouts, for
# `berth build` (FROM oci:DIR), its tests, the sensor example and
# bench/build.sh, so that none of them needs an outside registry:
#
#   cross/make-base-image.sh [--include PKG,...] [--out DIR] debian|busybox ARCH...
#
#   debian    mmdebstrap --variant=minbase of bookworm, plus --include's
#             packages (gcc, say); docs, man pages and locales left out
#             (the copyright files stay)
#   busybox   busybox-static's .deb alone: /bin/busybox and its applets as
#             symlinks, /etc/passwd and group (root, nobody), /tmp
#   ARCH      armhf (linux/arm/v7), arm64 (linux/arm64/v8), amd64
#
# The layout (default .sysroot/images/NAME, NAME being busybox, debian or
# debian-PKG+PKG) holds one image index tagged `latest` with one manifest
# per architecture built so far; each run adds or replaces the ones it
# names. An architecture whose image was already made from the same
# inputs is not made again (a stamp per architecture, written last).
#
# Packages come from the host's own apt configuration, the bookworm suite
# only (cross/debian-extract.sh: no mirror's name is written anywhere).
# Foreign architectures' maintainer scripts (debian) run under qemu-user:
# binfmt_misc must have qemu-<arch> registered (the script says how when
# not).
#
# Reproducible: the same packages give the same digests. Every file's time
# is SOURCE_DATE_EPOCH (default 0), the tar is sorted with numeric owners
# and no atime/ctime or pid in its headers, gzip writes no name or time,
# the config's dates are the same epoch, and the logs and caches that
# record when or where the image was made are removed.
set -euo pipefail
umask 022

usage() { echo "usage: make-base-image.sh [--include PKG,...] [--out DIR] debian|busybox armhf|arm64|amd64..." >&2; exit 2; }
include="" out=""
while [ $# -gt 0 ]; do
    case $1 in
        --include) include=${2:?}; shift 2 ;;
        --include=*) include=${1#*=}; shift ;;
        --out) out=${2:?}; shift 2 ;;
        --out=*) out=${1#*=}; shift ;;
        -h|--help) usage ;;
        -*) echo "make-base-image.sh: unknown option \`$1\`" >&2; usage ;;
        *) break ;;
    esac
done
kind=${1:-}; shift || true
case $kind in debian|busybox) ;; *) usage ;; esac
[ $# -gt 0 ] || usage
[ "$kind" = debian ] || [ -z "$include" ] || { echo "make-base-image.sh: --include is for debian images" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
name=$kind
[ -z "$include" ] || name="$kind-$(echo "$include" | tr ',' '+')"
layout=${out:-$(dirname "$here")/.sysroot/images/$name}
arches_dir=$layout.arches
epoch=${SOURCE_DATE_EPOCH:-0}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
host_arch=$(dpkg --print-architecture)

# ARCH -> "architecture variant qemu-name"
platform_of() {
    case $1 in
        armhf) echo "arm v7 arm" ;;
        arm64) echo "arm64 v8 aarch64" ;;
        amd64) echo "amd64 - x86_64" ;;
        *) echo "make-base-image.sh: unknown architecture \`$1\` (armhf, arm64, amd64)" >&2; exit 2 ;;
    esac
}

# A foreign architecture's programs run here only through binfmt_misc.
check_binfmt() {
    local arch=$1 qemu=$2
    [ "$arch" != "$host_arch" ] || return 0
    local misc=/proc/sys/fs/binfmt_misc
    if [ ! -e "$misc/register" ]; then
        echo "make-base-image.sh: $arch programs cannot run here: binfmt_misc is not mounted:" \
            "run \`mount -t binfmt_misc binfmt_misc $misc\`, then \`cat /usr/lib/binfmt.d/qemu-$qemu.conf > $misc/register\`" >&2
        exit 1
    fi
    if [ ! -e "$misc/qemu-$qemu" ]; then
        echo "make-base-image.sh: $arch programs cannot run here: qemu-$qemu is not registered:" \
            "install qemu-user-static, then run \`cat /usr/lib/binfmt.d/qemu-$qemu.conf > $misc/register\`" >&2
        exit 1
    fi
}

# Moves FILE into the layout's blobs; prints its sha256 (hex).
put_blob() {
    local h
    h=$(sha256sum "$1" | cut -d' ' -f1)
    mv "$1" "$layout/blobs/sha256/$h"
    echo "$h"
}

# Writes TEXT (no trailing newline) as a blob; prints its sha256 (hex).
put_json() {
    local f
    f=$(mktemp "$layout/blobs/.tmp.XXXXXX")
    printf '%s' "$1" >"$f"
    put_blob "$f"
}

# The tar layer of the tree DIR, sorted, every time the epoch, numeric owners.
tar_layer() {
    local dir=$1 tarfile=$2
    LC_ALL=C tar --create --file="$tarfile" --directory="$dir" \
        --sort=name --format=posix --numeric-owner --mtime="@$epoch" \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        --no-recursion --files-from=<(cd "$dir" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)
}

# The root filesystem of a minbase Debian with $include, in DIR.
debian_root() {
    local arch=$1 root=$2
    local -a pkgs=()
    [ -z "$include" ] || IFS=, read -ra pkgs <<<"$include"
    VARIANT=minbase SOURCE_DATE_EPOCH=$epoch \
    MMDEBSTRAP_ARGS="--dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/locale/* --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright --aptopt=Acquire::Languages=none" \
        "$here/debian-extract.sh" "$arch" "$root" "${pkgs[@]}"
    # What records when or where it was made; the device nodes (the runtime makes /dev).
    rm -rf "${root:?}"/var/log/* "$root"/var/cache/ldconfig/aux-cache "$root"/var/lib/apt/lists/* \
        "$root"/var/cache/apt/*.bin "$root"/var/lib/dpkg/*-old "$root"/var/cache/debconf/*-old \
        "$root"/etc/resolv.conf "$root"/etc/hostname "$root"/dev/*
    [ ! -e "$root/etc/machine-id" ] || : >"$root/etc/machine-id"
}

# busybox-static's /bin/busybox and its applets, in DIR.
busybox_root() {
    local arch=$1 root=$2 qemu=$3 deb
    deb=$(mktemp -d)
    "$here/debian-extract.sh" "$arch" "$deb/x" busybox-static
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/usr/share/doc/busybox-static"
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    cp "$deb/x/bin/busybox" "$root/bin/busybox"
    cp "$deb/x/usr/share/doc/busybox-static/copyright" "$root/usr/share/doc/busybox-static/"
    rm -rf "$deb"
    local run=()
    [ "$arch" = "$host_arch" ] || run=("qemu-$qemu-static")
    local applet
    for applet in $("${run[@]}" "$root/bin/busybox" --list-full); do
        [ "$applet" != bin/busybox ] || continue
        mkdir -p "$root/$(dirname "$applet")"
        ln -sf /bin/busybox "$root/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

mkdir -p "$layout/blobs/sha256" "$arches_dir"
[ -e "$layout/oci-layout" ] || printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"

for arch in "$@"; do
    read -r architecture variant qemu <<<"$(platform_of "$arch")"
    want="$kind suite=bookworm include=$include epoch=$epoch"
    if [ -f "$arches_dir/$arch.stamp" ] && [ "$(cat "$arches_dir/$arch.stamp")" = "$want" ] && [ -f "$arches_dir/$arch.json" ]; then
        echo "$name $arch: up to date in $layout"
        continue
    fi
    rm -f "$arches_dir/$arch.stamp"
    [ "$kind" != debian ] || check_binfmt "$arch" "$qemu"  # maintainer scripts run under emulation
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    if [ "$kind" = debian ]; then
        debian_root "$arch" "$work/root"
    else
        busybox_root "$arch" "$work/root" "$qemu"
    fi
    tar_layer "$work/root" "$work/layer.tar"
    diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
    gzip -n -6 "$work/layer.tar"
    layer_size=$(stat -c %s "$work/layer.tar.gz")
    layer=$(put_blob "$work/layer.tar.gz")

    variant_json=""
    [ "$variant" = - ] || variant_json=",\"variant\":\"$variant\""
    config="{\"architecture\":\"$architecture\"$variant_json,\"os\":\"linux\",\"created\":\"$created\",\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\"Cmd\":[\"/bin/sh\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\"history\":[{\"created\":\"$created\",\"created_by\":\"cross/make-base-image.sh $name $arch\"}]}"
    config_digest=$(put_json "$config")
    manifest="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$config_digest\",\"size\":${#config}},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer\",\"size\":$layer_size}]}"
    manifest_digest=$(put_json "$manifest")
    printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"platform":{"architecture":"%s","os":"linux"%s}}' \
        "$manifest_digest" "${#manifest}" "$architecture" "$variant_json" >"$arches_dir/$arch.json"
    echo "$want" >"$arches_dir/$arch.stamp"
    rm -rf "$work"
    trap - EXIT
    echo "$name $arch: $(numfmt --to=iec "$layer_size") compressed, manifest sha256:$manifest_digest"
done

# The index of every architecture made so far (sorted), tagged `latest`.
manifests=$(for f in "$arches_dir"/*.json; do cat "$f"; echo; done | LC_ALL=C sort | paste -sd, -)
index="{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[$manifests]}"
index_digest=$(put_json "$index")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$index_digest" "${#index}" >"$layout/index.json.tmp"
mv "$layout/index.json.tmp" "$layout/index.json"
echo "$name: $layout (oci:$layout:latest)"

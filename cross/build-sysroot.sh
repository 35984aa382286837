#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) sysroot for cross-compiling berth:
#   cross/build-sysroot.sh armhf|arm64 [DIR]      (DIR defaults to .sysroot/<arch>)
# and writes DIR.ini, the machine file to pass before cross/<arch>.ini.
#
# Why a sysroot and not multiarch: installing libssl-dev:armhf next to the host's
# libssl-dev needs the exact same version of every -dev package for both
# architectures, and the archive's -security/-updates suites are often out of step
# between architectures, so apt refuses. A sysroot extracted by mmdebstrap from the
# bookworm suite alone is self-consistent, touches nothing on the host and is what
# the cross files (cross/armhf.ini, cross/arm64.ini) point --sysroot, pkg-config
# and qemu -L at.
#
# The archive comes from the host's own apt configuration (deb822
# /etc/apt/sources.list.d/*.sources or one-line sources.list): cross/debian-extract.sh
# keeps the URIs of the entries that carry the bookworm suite, and only that suite
# is used.
#
# Cached: does nothing when DIR already holds a complete sysroot (the stamp file is
# written last, so an interrupted build is redone).
set -euo pipefail

arch=${1:?usage: build-sysroot.sh armhf|arm64 [DIR]}
case $arch in armhf|arm64) ;; *) echo "build-sysroot.sh: unknown architecture \`$arch\`" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
dir=${2:-$(dirname "$here")/.sysroot/$arch}
mkdir -p "$(dirname "$dir")"
dir=$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")
suite=bookworm
# The -dev packages berth links against, the C/C++ runtime, and Catch2 for the
# unit tests (header-only, its pkg-config file is looked up in the sysroot).
packages=(
    libc6-dev libstdc++-12-dev
    libseccomp-dev libcap-dev libssl-dev libarchive-dev zlib1g-dev
    nlohmann-json3-dev libmosquitto-dev libubootenv-dev catch2
)
stamp=$dir/.berth-sysroot
want="$suite ${packages[*]}"

# The machine file that gives cross/$arch.ini the sysroot's absolute path
# (meson 1.0 has no @DIRNAME@). Rewritten every time: cheap, and right after
# the checkout moves.
printf "# written by cross/build-sysroot.sh; pass before cross/%s.ini\n[constants]\nsysroot = '%s'\n" \
    "$arch" "$dir" >"$dir.ini"

# qemu-user run with `-L DIR` looks every path up in DIR first and uses
# DIR's copy when it exists: a test opening /tmp (to write a file there
# through a directory fd) would write into DIR/tmp instead and then read the
# host's /tmp. The host's runtime directories must win, so the sysroot has
# none (also done to a cached sysroot).
prune_runtime_dirs() {
    local d
    for d in tmp var/tmp run dev proc sys; do
        rm -rf "${1:?}/$d"
    done
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    prune_runtime_dirs "$dir"
    echo "sysroot $arch: up to date in $dir"
    exit 0
fi

rm -rf "$dir" "$dir.tmp"
SUITE=$suite "$here/debian-extract.sh" "$arch" "$dir.tmp" "${packages[@]}"

# The linker follows symlinks inside --sysroot without rebasing them: turn every
# absolute symlink into a relative one so nothing points at the host's files.
find "$dir.tmp" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dir.tmp$target")" "$link"
done
# Nothing else of a root filesystem is needed; drop the docs to keep it small.
rm -rf "$dir.tmp/usr/share/doc" "$dir.tmp/usr/share/man" "$dir.tmp/usr/share/locale" \
    "$dir.tmp/var/cache/apt/archives/"*.deb
prune_runtime_dirs "$dir.tmp"

mv "$dir.tmp" "$dir"
echo "$want" >"$stamp"
echo "sysroot $arch: done"

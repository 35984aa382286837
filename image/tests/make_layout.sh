#!/bin/sh
# Builds an OCI image layout with umoci: busybox, /etc/passwd and /etc/group,
# and optional extra layers (SIZE_MB of random data, then text).
# usage: make_layout.sh DIR [RANDOM_MB TEXT_MB]
set -eu
dir=$1 rnd=${2:-0} txt=${3:-0}
work=$(mktemp -d /tmp/berth-layout-XXXXXX)
trap 'rm -rf "$work"' EXIT
umoci init --layout "$dir" >/dev/null
umoci new --image "$dir:latest" >/dev/null
umoci unpack --image "$dir:latest" "$work/b" >/dev/null
r=$work/b/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/data"
cp /bin/busybox "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n' >"$r/etc/passwd"
printf 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n' >"$r/etc/group"
umoci repack --image "$dir:latest" "$work/b" >/dev/null
if [ "$rnd" -gt 0 ]; then
  umoci unpack --image "$dir:latest" "$work/c" >/dev/null
  head -c $((rnd * 1024 * 1024)) /dev/urandom >"$work/c/rootfs/data/random.bin"
  umoci repack --image "$dir:latest" "$work/c" >/dev/null
fi
if [ "$txt" -gt 0 ]; then
  umoci unpack --image "$dir:latest" "$work/d" >/dev/null
  mkdir -p "$work/d/rootfs/usr/share/doc"
  i=0
  while [ $i -lt "$txt" ]; do
    seq 1 140000 | sed 's/^/line of text number /' >"$work/d/rootfs/usr/share/doc/text$i.txt"
    i=$((i + 1))
  done
  umoci repack --image "$dir:latest" "$work/d" >/dev/null
fi
umoci config --image "$dir:latest" --config.cmd /bin/sh --config.user app --config.volume /data >/dev/null
umoci gc --layout "$dir"

#!/bin/sh
# `berth image import|ls|inspect|export|rm|gc|fsck` against a layout made by
# umoci: directory and tar, re-import of an export, gc frees everything.
set -eu
B=${BERTH:?BERTH must name the berth binary}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
command -v umoci >/dev/null || { echo "skipped: umoci missing"; exit 77; }
t=$(mktemp -d /tmp/berth-import-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$here/make_layout.sh" "$t/lay" 1 1
root=$t/root
out=$("$B" --root "$root" image import "$t/lay" localhost/bb:1)
echo "$out" | grep -q '^localhost/bb:1 sha256:' || fail "import output: $out"
"$B" --root "$root" image ls | grep -q 'localhost/bb:1' || fail "ls"
"$B" --root "$root" image inspect localhost/bb:1 >"$t/inspect.json"
grep -q '"User": "app"' "$t/inspect.json" || fail "inspect user"
[ "$(grep -c '"unpacked": true' "$t/inspect.json")" = 3 ] || fail "3 layers unpacked"
ls "$root"/layers/*/rootfs/bin/busybox >/dev/null || fail "busybox layer"
"$B" --root "$root" image fsck --check || fail "fsck after import"
# A short name without a registry is refused.
if "$B" --root "$root" image import "$t/lay" bb:1 2>/dev/null; then fail "short name accepted"; fi
# Import from a tar of the layout, and the export of the store re-imported.
tar -C "$t/lay" -cf "$t/lay.tar" .
"$B" --root "$t/root2" image import "$t/lay.tar" localhost/bb:tar >/dev/null
"$B" --root "$root" image export localhost/bb:1 "$t/exported"
"$B" --root "$t/root3" image import "$t/exported" localhost/bb:exp >/dev/null
[ "$("$B" --root "$t/root2" image ls --json | grep -o 'sha256:[0-9a-f]*')" = \
  "$("$B" --root "$t/root3" image ls --json | grep -o 'sha256:[0-9a-f]*')" ] || fail "digests differ"
ls "$t/root2/ingest" | grep -q import && fail "import temporaries left"
# Corrupt a blob: fsck finds and removes it.
blob=$(ls "$root/blobs/sha256" | head -1)
printf 'x' | dd of="$root/blobs/sha256/$blob" bs=1 seek=5 conv=notrunc 2>/dev/null
if "$B" --root "$root" image fsck --check >/dev/null; then fail "fsck missed corruption"; fi
"$B" --root "$root" image fsck | grep -q "corrupted blob sha256:$blob" || fail "fsck report"
"$B" --root "$root" image fsck --check >/dev/null || fail "fsck not clean after repair"
# rm + gc free everything.
"$B" --root "$t/root2" image rm localhost/bb:tar
"$B" --root "$t/root2" image gc
[ -z "$(ls "$t/root2/blobs/sha256")" ] || fail "gc left blobs"
[ -z "$(ls "$t/root2/layers")" ] || fail "gc left layers"
echo ok

#!/bin/sh
# The store has one spelling, --store, on every command that uses it
# (docs/cli.md, "The store"); --root stays an alias for the image commands.
# Each spelling must name the same directory, and a command's own --store
# wins over the global one.
set -eu
B=${BERTH:?BERTH must name the berth binary}
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
command -v umoci >/dev/null || { echo "skipped: umoci missing"; exit 77; }
t=$(mktemp -d /tmp/berth-store-flag-XXXXXX)
trap 'rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$here/make_layout.sh" "$t/lay" 1 1
"$B" image import --store "$t/a" --no-unpack "$t/lay" localhost/flag:1 >/dev/null || fail "import --store"
[ -d "$t/a/blobs/sha256" ] || fail "import --store did not use the directory"
for how in "image ls --store $t/a" "--store $t/a image ls" "--root $t/a image ls" "--store $t/b image ls --store $t/a"; do
  # shellcheck disable=SC2086
  "$B" $how | grep -q localhost/flag:1 || fail "berth $how does not see the image"
  echo "ok: berth $how"
done
"$B" image ls --store "$t/b" | grep -q localhost/flag:1 && fail "another store sees the image"
"$B" image pull --help | grep -q -- '--store DIR' || fail "pull --help has no --store"
"$B" image pull --help | grep -q -- '--root DIR' || fail "pull --help lost the --root alias"
"$B" run --help | grep -q -- '--store DIR' || fail "run --help has no --store"
echo "ok: --store and --root name the same store"

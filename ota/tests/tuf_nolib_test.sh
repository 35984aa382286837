#!/bin/sh
# A TUF check on a machine without OpenSSL's libcrypto (a slot built
# without it) says the library could not be loaded, not that the
# signatures do not verify: `berth tuf init` of a good root, in a private
# mount namespace where an empty file is bind-mounted over libcrypto.so.3.
# Native builds as root only (unshare -m, mount --bind); skipped otherwise.
set -eu
berth=$1
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (unshare -m)"; exit 77; }
[ -z "${MESON_EXE_WRAPPER:-}" ] || { echo "SKIP: a cross build's libraries are the sysroot's"; exit 77; }
lib=$(ldconfig -p | sed -n 's/^[[:space:]]*libcrypto\.so\.3 (.*) => \(.*\)$/\1/p' | head -1)
[ -n "$lib" ] && [ -f "$lib" ] || { echo "SKIP: no libcrypto.so.3 on this machine"; exit 77; }
tmp=$(mktemp -d /tmp/berth-tuf-nolib-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/empty"
set +e
unshare -m sh -c 'mount --bind "$1" "$2" && exec "$3" tuf --metadata-dir "$4/meta" init "$5"' sh \
    "$tmp/empty" "$lib" "$berth" "$tmp" "$here/tuf_vectors/consistent-snapshot/root.json" 2>"$tmp/err"
rc=$?
set -e
echo "berth tuf init without libcrypto: exit $rc: $(cat "$tmp/err")"
[ "$rc" -ne 0 ] || { echo "FAIL: the root was trusted without libcrypto"; exit 1; }
grep -q 'cannot load .*libcrypto' "$tmp/err" || { echo "FAIL: the error does not say libcrypto could not be loaded"; exit 1; }
if grep -q 'signatures verify' "$tmp/err"; then echo "FAIL: blamed on the signatures"; exit 1; fi
echo "ok"

#!/bin/sh
# `berth tuf`, the conformance client protocol, end to end over HTTP: a
# repository of tuf_vectors/ served by Python's http.server on 127.0.0.1,
# init / refresh / download with exit 0, a refused repository with exit 1
# and one line, metadata stored unversioned, and a second download served
# from the target directory (the repository's copy is gone by then).
set -eu
# In cross builds meson names the emulator in MESON_EXE_WRAPPER ($berth is
# used unquoted, so the wrapper's words split).
berth="${MESON_EXE_WRAPPER:+$MESON_EXE_WRAPPER }$1"
here=$(cd "$(dirname "$0")" && pwd)
vectors=$here/tuf_vectors
py=/usr/bin/python3
[ -x $py ] || { echo "SKIP: $py is missing"; exit 77; }
tmp=$(mktemp -d /tmp/berth-tuf-cli-XXXXXX)
server=
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

cp -r "$vectors/consistent-snapshot" "$vectors/expired-timestamp" "$vectors/timestamp-oversize" "$tmp/"
$py -u -m http.server --bind 127.0.0.1 --directory "$tmp" 0 >"$tmp/server.log" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$tmp/server.log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || fail "http.server did not start: $(cat "$tmp/server.log")"
url=http://127.0.0.1:$port/consistent-snapshot/step1

# init, refresh, download: exit 0, metadata unversioned.
$berth tuf --metadata-dir "$tmp/meta" init "$vectors/consistent-snapshot/root.json" || fail "init"
$berth tuf --metadata-url "$url/metadata" --metadata-dir "$tmp/meta" refresh || fail "refresh"
for f in root.json timestamp.json snapshot.json targets.json; do
    [ -f "$tmp/meta/$f" ] || fail "refresh did not store $f"
done
cmp -s "$tmp/meta/targets.json" "$tmp/consistent-snapshot/step1/metadata/2.targets.json" || fail "targets.json is not the bytes served"
$berth tuf --metadata-url "$url/metadata" --metadata-dir "$tmp/meta" --target-name channels/stable/manifest.json \
    --target-dir "$tmp/targets" --target-base-url "$url/targets" download || fail "download"
grep -q '"channel": "stable"' "$tmp/targets/channels%2Fstable%2Fmanifest.json" || fail "the target's content"

# A second download uses the cached target: the repository no longer has it.
rm -r "$tmp/consistent-snapshot/step1/targets/channels"
$berth tuf --metadata-url "$url/metadata" --metadata-dir "$tmp/meta" --target-name channels/stable/manifest.json \
    --target-dir "$tmp/targets" --target-base-url "$url/targets" download || fail "cached download"

# A target the repository does not list: exit 1, one line.
if $berth tuf --metadata-url "$url/metadata" --metadata-dir "$tmp/meta" --target-name nothing/here \
    --target-dir "$tmp/targets" --target-base-url "$url/targets" download 2>"$tmp/err"; then fail "unknown target downloaded"; fi
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "not one line: $(cat "$tmp/err")"
grep -q 'target `nothing/here`: not found in the repository' "$tmp/err" || fail "error: $(cat "$tmp/err")"

# An expired timestamp: exit 1 with the reason.
$berth tuf --metadata-dir "$tmp/meta2" init "$vectors/expired-timestamp/root.json" || fail "init 2"
set +e
$berth tuf --metadata-url "http://127.0.0.1:$port/expired-timestamp/step1/metadata" --metadata-dir "$tmp/meta2" refresh 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "expired timestamp: exit $rc"
grep -q 'timestamp version 1 expired at 2001-01-01T00:00:00Z' "$tmp/err" || fail "error: $(cat "$tmp/err")"
[ ! -f "$tmp/meta2/timestamp.json" ] || fail "an expired timestamp was stored"

# A timestamp over its cap over HTTP: the transfer is cut, exit 1.
$berth tuf --metadata-dir "$tmp/meta3" init "$vectors/timestamp-oversize/root.json" || fail "init 3"
if $berth tuf --metadata-url "http://127.0.0.1:$port/timestamp-oversize/step1/metadata" --metadata-dir "$tmp/meta3" \
    refresh 2>"$tmp/err"; then fail "oversized timestamp accepted"; fi
grep -q 'more than 16384 bytes' "$tmp/err" || fail "error: $(cat "$tmp/err")"

# A server that is not there: exit 1.
kill "$server"; wait "$server" 2>/dev/null || true; server=
if $berth tuf --metadata-url "$url/metadata" --metadata-dir "$tmp/meta" refresh 2>"$tmp/err"; then fail "refresh without a server"; fi
echo ok

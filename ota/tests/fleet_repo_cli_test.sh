#!/bin/sh
# `berth fleet` on the command line: a refused command exits 1 with one
# line naming what was wrong and leaves the repository byte for byte as it
# was (bad channel names, a downgrade, a malformed manifest, a missing or
# foreign key, bad option values); a usage error exits 2.
set -eu
# In cross builds meson names the emulator in MESON_EXE_WRAPPER.
berth="${MESON_EXE_WRAPPER:+$MESON_EXE_WRAPPER }$1"
tmp=$(mktemp -d /tmp/berth-fleet-cli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
repo=$tmp/repo
image="localhost:5000/app@sha256:$(printf '%064d' 0 | tr 0 a)"
manifest() { printf '{"version": %s, "name": "app", "containers": [{"name": "app", "image": "%s"}]}\n' "$1" "$image" >"$tmp/m$1.json"; }
state() { (cd "$tmp" && find repo repo.keys -type f -print0 | sort -z | xargs -0 sha256sum); }

# refused WHAT EXPECTED-TEXT ARGS...: exit 1, one line containing the text, nothing changed.
refused() {
    what=$1 text=$2
    shift 2
    before=$(state)
    set +e
    $berth fleet "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    set -e
    [ $rc -eq 1 ] || fail "$what: exit $rc ($(cat "$tmp/err"))"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$what: not one line: $(cat "$tmp/err")"
    grep -qF -- "$text" "$tmp/err" || fail "$what: $(cat "$tmp/err")"
    [ "$(state)" = "$before" ] || fail "$what: the repository changed"
    echo "ok $what"
}

$berth fleet init "$repo" >/dev/null
manifest 1; manifest 2; manifest 3
$berth fleet release "$repo" --channel stable "$tmp/m2.json" >/dev/null
$berth fleet keygen "$tmp/team.pem" >/dev/null
$berth fleet keygen "$tmp/other.pem" >/dev/null
$berth fleet delegate "$repo" --role team --paths 'channels/team-*/*' --key "$tmp/team.pem.pub" >/dev/null
printf '{"version": 4, "containers": [' >"$tmp/bad.json"

refused "a downgrade" 'channel `stable` is at version 2: manifest version 1 is not above it' \
    release "$repo" --channel stable "$tmp/m1.json"
refused "a malformed manifest" 'manifest' release "$repo" --channel stable "$tmp/bad.json"
refused "a missing manifest" 'manifest: open' release "$repo" --channel stable "$tmp/none.json"
refused "a channel with a slash" 'channel name `a/b` is not one segment' release "$repo" --channel a/b "$tmp/m3.json"
refused "a channel .." 'channel name `..` is not one segment' release "$repo" --channel .. "$tmp/m3.json"
refused "a delegated channel without its key" "give that role's key with --key" \
    release "$repo" --channel team-x "$tmp/m3.json"
refused "a delegated channel with a foreign key" 'is not a key of role `team`' \
    release "$repo" --channel team-x --key "$tmp/other.pem" "$tmp/m3.json"
refused "a team key outside the team's paths" 'is not delegated' \
    release "$repo" --channel stable --key "$tmp/team.pem" "$tmp/m3.json"
refused "a missing key file" '--key: open' release "$repo" --channel team-x --key "$tmp/none.pem" "$tmp/m3.json"
refused "a public key as a private one" 'not an unencrypted PEM private key' \
    release "$repo" --channel team-x --key "$tmp/team.pem.pub" "$tmp/m3.json"
mv "$repo.keys/targets" "$tmp/targets-keys"
refused "the targets key missing" 'signing targets with the keys in' release "$repo" --channel stable "$tmp/m3.json"
mv "$tmp/targets-keys" "$repo.keys/targets"
refused "rotate an unknown role" 'unknown role `bogus`' rotate "$repo" --role bogus
refused "rotate without the root keys" 'rotating needs 1 of the root keys, 0 found' \
    rotate "$repo" --role targets --root-key-dir "$tmp/nowhere"
refused "delegate a top-level role's name" 'role name `snapshot` is not one segment' \
    delegate "$repo" --role snapshot --paths 'channels/*/*' --key "$tmp/other.pem.pub"
refused "delegate with a private key file" 'not a PEM public key' \
    delegate "$repo" --role t2 --paths 'channels/t2/*' --key "$tmp/other.pem"
refused "refresh with a bad duration" 'duration `soon` is not' refresh "$repo" --within soon
refused "a poll interval out of bounds" '--poll-interval: 5s is not between 10s and 24h' \
    release "$repo" --channel stable --poll-interval 5s "$tmp/m3.json"
refused "an empty board name" '--board: empty board name' release "$repo" --channel stable --board '' "$tmp/m3.json"
refused "init over a repository" 'already holds a repository' init "$repo"
refused "init with a bad threshold" '`root` is not ROLE=VALUE' init "$tmp/new" --threshold root
[ ! -e "$tmp/new" ] || fail "a refused init left $tmp/new"

set +e
$berth fleet release "$repo" --channel stable --bogus "$tmp/m3.json" 2>"$tmp/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "an unknown option: exit $rc"
echo "ok an unknown option is a usage error"

# And the repository still takes a good release.
$berth fleet release "$repo" --channel stable "$tmp/m3.json" | grep -q 'channels/stable/manifest.json: released' || fail "release"
echo "ok a good release after the refusals"

# --board and --poll-interval become the target's signed custom field, which
# the device's agent reads (docs/fleet-agent.md).
manifest 5
$berth fleet release "$repo" --channel stable --board qemu-armhf --board rpi4 --poll-interval 2m "$tmp/m5.json" >/dev/null
targets=$(ls "$repo"/metadata/*.targets.json | sort -t/ -k1 -V | tail -n 1)
/usr/bin/python3 - "$targets" <<'PY' || fail "custom field"
import json, sys
t = json.load(open(sys.argv[1]))["signed"]["targets"]["channels/stable/manifest.json"]
assert t["custom"] == {"boards": ["qemu-armhf", "rpi4"], "poll_interval_s": 120}, t
PY
echo "ok --board and --poll-interval are signed into the target's custom field"

# Releases on four channels and refreshes at once: the repository lock makes
# them take turns, so every release is in the final metadata.
pids=
for c in c1 c2 c3 c4; do
    $berth fleet release "$repo" --channel $c "$tmp/m1.json" >/dev/null 2>"$tmp/err-$c" &
    pids="$pids $!"
    $berth fleet refresh "$repo" --within 3650d >/dev/null 2>&1 &
    pids="$pids $!"
done
for p in $pids; do wait "$p" || fail "a concurrent command failed: $(cat "$tmp"/err-*)"; done
$berth tuf --metadata-dir "$tmp/meta" init "$repo/metadata/1.root.json"
for c in stable c1 c2 c3 c4; do
    $berth tuf --metadata-dir "$tmp/meta" --metadata-url "file://$repo/metadata" --target-name "channels/$c/manifest.json" \
        --target-dir "$tmp/targets" --target-base-url "file://$repo/targets" download || fail "channel $c after the concurrent releases"
done
echo "ok concurrent releases and refreshes all land"

#!/bin/sh
# `berth run IMAGE` without a registry (docs/cli.md, "run: two modes"): an OCI
# layout built here with umoci from busybox-static, imported, then run:
# output, exit codes, CMD/env override, --rm leaving nothing, a kept container
# removed by `berth delete`, refusals by the trust policy (nothing unpacked,
# nothing left), bad input, and the runc mode (`run --bundle DIR ID`) beside it.
# Needs root; exits 77 (skipped) without it or without umoci/busybox-static.
# usage: run_image_test.sh BERTH
set -u
BERTH=${1:?usage: $0 BERTH}
command -v openssl >/dev/null || { echo "SKIP: needs openssl"; exit 77; }
TEST_NAME=runimg
. "$(dirname "$0")/run_image_lib.sh"
IMG=localhost/$R:1

# ---- the image: busybox with its applets, Cmd and Env set, a volume
work=$TMP/work
umoci init --layout "$TMP/layout" >/dev/null
umoci new --image "$TMP/layout:1" >/dev/null
umoci unpack --image "$TMP/layout:1" "$work" >/dev/null
busybox_rootfs "$work/rootfs"
umoci repack --image "$TMP/layout:1" "$work" >/dev/null
umoci config --image "$TMP/layout:1" --config.cmd /bin/sh --config.cmd -c --config.cmd 'echo default-cmd $FOO' \
    --config.env FOO=bar --config.volume /data >/dev/null
umoci gc --layout "$TMP/layout"
rm -rf "$work"

ACCEPT=$TMP/accept.json
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$ACCEPT"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/key.pem" 2>/dev/null
openssl ec -in "$TMP/key.pem" -pubout -out "$TMP/key.pub" 2>/dev/null
SIGNED=$TMP/signed.json
echo "{\"default\": [{\"type\": \"sigstoreSigned\", \"keyPath\": \"$TMP/key.pub\"}]}" >"$SIGNED"

"$BERTH" --root "$STORE" image import "$TMP/layout" "$IMG" >/dev/null || bad "import of the layout"
run() { b run --store "$STORE" --policy "$ACCEPT" -q "$@"; }

# What a container may leave: state dirs, bundles, mounts under $TMP, cgroups
# named after this test, volumes.
traces() {
    ls "$STATE" 2>/dev/null
    ls "$STORE/containers" 2>/dev/null
    find "$STORE/volumes" -mindepth 1 -not -path "$STORE/volumes/.image" 2>/dev/null
    grep -o " $TMP/[^ ]*" /proc/self/mountinfo
    find /sys/fs/cgroup -type d -name "*$R*" 2>/dev/null
}
clean_before=$(traces)
same_traces() { # description
    now=$(traces)
    [ "$now" = "$clean_before" ] && ok "$1 left nothing" || bad "$1 left: $(echo "$now" | tr '\n' ' ')"
}

# ---- output, exit codes, CMD, env
out=$(run --rm "$IMG" echo hi 2>"$TMP/err"); rc=$?
[ "$out" = hi ] && [ $rc = 0 ] && ok "run --rm IMAGE echo hi prints hi, exits 0" || bad "echo hi: rc=$rc out=$out $(cat "$TMP/err")"
same_traces "run --rm"
out=$(run --rm "$IMG" 2>"$TMP/err"); rc=$?
[ "$out" = "default-cmd bar" ] && [ $rc = 0 ] && ok "no CMD: the image's Cmd and Env" || bad "default cmd: rc=$rc out=$out $(cat "$TMP/err")"
out=$(run --rm -e FOO=baz "$IMG" sh -c 'echo $FOO; exit 7' 2>"$TMP/err"); rc=$?
[ "$out" = baz ] && [ $rc = 7 ] && ok "CMD and --env override; exit code 7 passes through" || bad "exit 7: rc=$rc out=$out"
run --rm "$IMG" false; rc=$?
[ $rc = 1 ] && ok "exit code 1 of the container is berth's" || bad "false: rc=$rc"
same_traces "three more --rm runs"

# Killed by a signal: 128 + N.
run --rm --name "$R-sig" "$IMG" sleep 60 >/dev/null 2>&1 &
bg=$!
i=0
while [ "$(b state "$R-sig" 2>/dev/null | grep -c '"running"')" = 0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
b kill "$R-sig" KILL
wait $bg; rc=$?
[ $rc = 137 ] && ok "killed by SIGKILL: exit 137" || bad "SIGKILL: rc=$rc"
# A named container's volumes outlive it, --rm or not (anonymous ones do not: see above).
[ -d "$STORE/volumes/.image/$R-sig/data" ] && ok "--rm --name keeps the named volume" || bad "named volume removed"
rm -rf "$STORE/volumes/.image/$R-sig"
same_traces "a killed --rm container"

# ---- kept: listed, then removed by `berth delete`
out=$(run --name "$R-kept" "$IMG" sh -c 'echo data >/data/f; hostname' 2>"$TMP/err"); rc=$?
[ "$out" = "$R-kept" ] && [ $rc = 0 ] && ok "--name: the id and hostname" || bad "kept run: rc=$rc out=$out $(cat "$TMP/err")"
b list | grep -q "^$R-kept .*stopped .*$STORE/containers/$R-kept" && ok "without --rm the container stays listed, stopped" || bad "not listed: $(b list)"
[ -f "$STORE/containers/$R-kept/config.json" ] && ok "its bundle stays" || bad "bundle gone"
run --name "$R-kept" "$IMG" true 2>"$TMP/err"; rc=$?
[ $rc = 1 ] && grep -q "already exists" "$TMP/err" && [ "$(wc -l <"$TMP/err")" = 1 ] \
    && [ -f "$STORE/containers/$R-kept/config.json" ] && ok "a taken name: one-line error, the first container untouched" \
    || bad "taken name: rc=$rc $(cat "$TMP/err")"
b delete "$R-kept" && ok "berth delete of an image container" || bad "delete failed"
[ -e "$STORE/containers/$R-kept" ] && bad "delete left the bundle" || ok "delete removed the bundle"
grep -q " $STORE/containers/$R-kept/rootfs " /proc/self/mountinfo && bad "delete left the rootfs mounted" || ok "delete unmounted the rootfs"
[ "$(cat "$STORE/volumes/.image/$R-kept/data/f" 2>/dev/null)" = data ] && ok "the named volume keeps its data" || bad "volume lost"
rm -rf "$STORE/volumes/.image/$R-kept"
same_traces "delete"

# ---- refusals and bad input: one line, exit 1, nothing left, nothing unpacked
"$BERTH" --root "$STORE" image import --no-unpack "$TMP/layout" "localhost/$R-packed:1" >/dev/null || bad "import --no-unpack"
layers_before=$(ls "$STORE/layers")
refused() { # description, grep pattern, berth run arguments...
    desc=$1 pat=$2; shift 2
    b run --store "$STORE" -q --retries 1 --retry-delay-ms 1 "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
    if [ $rc = 1 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "$pat" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "$desc: $(cat "$TMP/err")"
    else
        bad "$desc: rc=$rc, stderr: $(cat "$TMP/err")"
    fi
    same_traces "$desc"
}
refused "unsigned image, policy requiring a signature" "no stored signature verifies" \
    --rm --policy "$SIGNED" "localhost/$R-packed:1" echo hi
refused "device default policy (no policy, no keys)" "rejected" --rm "localhost/$R-packed:1" echo hi
echo '{"default": [{"type": "reject"}]}' >"$TMP/reject.json"
refused "a policy that rejects" "rejected" --rm --policy "$TMP/reject.json" "localhost/$R-packed:1"
[ "$(ls "$STORE/layers")" = "$layers_before" ] && ok "a refused image is not unpacked" || bad "layers were unpacked"
refused "unknown image (no registry there)" "pull" --rm --policy "$ACCEPT" "127.0.0.1:9/$R/none:1"
refused "bad reference" "invalid" --rm --policy "$ACCEPT" "localhost/$R/UPPER:1"
refused "bad --name" "invalid container id" --rm --name "a/b" --policy "$ACCEPT" "$IMG"
refused "image without the command" "no/such/program" --rm --policy "$ACCEPT" "$IMG" /no/such/program

usage() { # description, berth run arguments...
    desc=$1; shift
    b run "$@" >/dev/null 2>"$TMP/err"; rc=$?
    [ $rc = 2 ] && [ "$(wc -l <"$TMP/err")" = 1 ] && ok "$desc: usage error: $(cat "$TMP/err")" || bad "$desc: rc=$rc $(cat "$TMP/err")"
}
usage "--detach with an IMAGE" --detach "$IMG"
usage "--bundle-only option with an IMAGE" --console-socket /x "$IMG"
usage "--rm with a container id" --rm "$R-id"
usage "--env without =" --store "$STORE" -e FOO "$IMG"

# ---- the runc mode beside it: what podman and containerd call
mkdir -p "$TMP/bundle"
(cd "$TMP/bundle" && "$BERTH" spec) || bad "berth spec"
/usr/bin/python3 - "$TMP/bundle/config.json" <<'PY' || bad "edit config.json"
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/sh", "-c", "echo from-bundle; exit 5"]
c["root"]["path"] = "rootfs"
json.dump(c, open(sys.argv[1], "w"))
PY
mkdir -p "$TMP/bundle/rootfs/bin"
cp "$BUSYBOX" "$TMP/bundle/rootfs/bin/busybox"
ln -s busybox "$TMP/bundle/rootfs/bin/sh"
out=$(b run --bundle "$TMP/bundle" "$R-bundle" 2>"$TMP/err"); rc=$?
[ "$out" = from-bundle ] && [ $rc = 5 ] && ok "runc mode: run --bundle DIR ID, exit code 5" || bad "runc mode: rc=$rc out=$out $(cat "$TMP/err")"
out=$(cd "$TMP/bundle" && b run "$R-cwd" 2>"$TMP/err"); rc=$?
[ "$out" = from-bundle ] && [ $rc = 5 ] && ok "runc mode: run ID in the bundle directory" || bad "runc cwd: rc=$rc $(cat "$TMP/err")"
out=$(b run "$R-after" --bundle "$TMP/bundle" --keep 2>"$TMP/err"); rc=$?
[ "$out" = from-bundle ] && [ $rc = 5 ] && ok "runc mode: options after the ID still parsed" || bad "runc options after id: rc=$rc $(cat "$TMP/err")"
b delete "$R-after" || bad "delete of a runc-mode container"
[ -f "$TMP/bundle/config.json" ] && ok "delete of a runc-mode container leaves its bundle alone" || bad "runc bundle removed"
same_traces "runc mode"

[ $fail = 0 ] && echo "all passed"
exit $fail

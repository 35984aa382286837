#!/bin/sh
# Bad input: each case fails with one line naming the cause, a non-zero exit,
# and leaves no mount, no cgroup and no state behind (mountinfo and the
# cgroup tree are compared before and after).
. "$(dirname "$0")/lib.sh"

id=$RUN_ID-bad
snapshot "$TMP/before"

# expect_fail NAME PATTERN: create must fail with one line matching PATTERN.
expect_fail() {
    name=$1 pat=$2 bundle=$3
    b --log "$TMP/log.json" --log-format json create --bundle "$bundle" "$id" >"$TMP/out" 2>"$TMP/err"; rc=$?
    lines=$(wc -l <"$TMP/err")
    if [ $rc = 0 ]; then bad "$name: create succeeded"; b delete -f "$id"; return; fi
    [ "$lines" = 1 ] || bad "$name: $lines lines on stderr: $(cat $TMP/err)"
    grep -q -- "$pat" "$TMP/err" && ok "$name: $(cat $TMP/err)" || bad "$name: message $(cat $TMP/err) lacks $pat"
    tail -1 "$TMP/log.json" | $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["level"]=="error" and d["msg"]' \
        || bad "$name: no JSON error line in --log"
    [ -e "$ROOT/$id" ] && bad "$name: state dir left behind"
    snapshot "$TMP/after"
    cmp -s "$TMP/before" "$TMP/after" || bad "$name: mounts/cgroups changed: $(diff $TMP/before $TMP/after | head -5)"
}

mkdir -p "$TMP/malformed"; ln -s "$ROOTFS" "$TMP/malformed/rootfs"
printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"},\n "process": {' >"$TMP/malformed/config.json"
expect_fail "malformed config.json" "config.json: line" "$TMP/malformed"

make_bundle "$TMP/wrongtype" 'c["process"]["args"] = "sh"' /bin/true
expect_fail "wrong type" '`process.args`' "$TMP/wrongtype"
make_bundle "$TMP/wrongtype2" 'c["linux"]["namespaces"][0]["type"] = "pidd"' /bin/true
expect_fail "unknown namespace" '`linux.namespaces\[0\].type`' "$TMP/wrongtype2"
make_bundle "$TMP/wrongtype3" 'c["mounts"][0]["options"] = [1]' /bin/true
expect_fail "wrong mount option type" '`mounts\[0\].options' "$TMP/wrongtype3"

make_bundle "$TMP/norootfs" 'c["root"]["path"] = "nonexistent"' /bin/true
expect_fail "missing rootfs" "rootfs .*nonexistent" "$TMP/norootfs"

make_bundle "$TMP/noexe" "" /bin/no-such-program
expect_fail "missing executable" "no-such-program" "$TMP/noexe"

make_bundle "$TMP/badbind" 'c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]})' /bin/true
expect_fail "missing bind source" "nonexistent-src" "$TMP/badbind"

make_bundle "$TMP/nspath" 'c["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/self/ns/ipc"}' /bin/true
expect_fail "namespace path of another type" "not a net namespace" "$TMP/nspath"
make_bundle "$TMP/nspath2" 'c["linux"]["namespaces"][1] = {"type": "network", "path": "/etc/hostname"}' /bin/true
expect_fail "namespace path that is no namespace" "not a net namespace" "$TMP/nspath2"

# A hostile /dev symlink pointing at a host directory.
mkdir -p "$TMP/evil/rootfs/bin" "$TMP/hostdev"
cp "$ROOTFS/bin/busybox" "$TMP/evil/rootfs/bin/"; ln -s busybox "$TMP/evil/rootfs/bin/true"
ln -s "$TMP/hostdev" "$TMP/evil/rootfs/dev"
make_bundle "$TMP/evil" "" /bin/true
expect_fail "hostile /dev symlink" "/dev. in the rootfs is a symlink" "$TMP/evil"
[ -z "$(ls -A $TMP/hostdev)" ] && ok "nothing created in the host dir" || bad "host dir got: $(ls $TMP/hostdev)"

# Duplicate id.
make_bundle "$TMP/good" "" /bin/sleep 100
b create --bundle "$TMP/good" "$id" || bad "create good"
snapshot "$TMP/before2"
b create --bundle "$TMP/good" "$id" 2>"$TMP/err" && bad "duplicate id accepted"
[ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "already exists" "$TMP/err" && ok "duplicate id: $(cat $TMP/err)" || bad "duplicate: $(cat $TMP/err)"
b state "$id" | grep -q created && ok "the first container is untouched" || bad "first container state"
b delete "$id"

# A stale state dir from a crashed run: the init is gone.
sh -c 'exit 0' & dead=$!; wait $dead
mkdir -p "$ROOT/$id"
printf '{"id":"%s","pid":%d,"pidStartTime":1,"bundle":"%s","status":"created"}' "$id" "$dead" "$TMP/good" >"$ROOT/$id/state.json"
b create --bundle "$TMP/good" "$id" 2>"$TMP/err" && bad "create over a stale state dir succeeded"
grep -q "already exists" "$TMP/err" && ok "stale state: create says it exists" || bad "stale create: $(cat $TMP/err)"
b state "$id" | grep -q '"status": "stopped"' && ok "stale state: stopped" || bad "stale state: $(b state $id)"
b delete "$id" && [ ! -e "$ROOT/$id" ] && ok "stale state: delete cleans it" || bad "stale delete"
# A state dir without state.json (crash before the first save).
mkdir -p "$ROOT/$id"
b delete "$id" && [ ! -e "$ROOT/$id" ] && ok "bare state dir: delete cleans it" || bad "bare state dir delete"

# A create that crashed (SIGKILL, as a power cut) after making the cgroup,
# and after cloning the init: the init dies with it (parent-death signal),
# state says stopped, `delete` removes the cgroup and the state.
for fp in runtime.create.cgroup runtime.create.cloned; do
    BERTH_FAILPOINTS="$fp=crash" b create --bundle "$TMP/good" "$id" 2>/dev/null && bad "$fp: create survived its crash"
    [ -d /sys/fs/cgroup/pids/berth/"$id" ] && ok "$fp: the crash left a cgroup" || bad "$fp: no cgroup after crash"
    sleep 0.1
    b state "$id" | grep -q '"status": "stopped"\|"status": "creating"' && ok "$fp: state after crash" || bad "$fp: state: $(b state $id 2>&1)"
    b create --bundle "$TMP/good" "$id" 2>/dev/null && bad "$fp: create over the crashed one succeeded"
    b delete "$id" && ok "$fp: delete cleans up" || bad "$fp: delete"
    [ -d /sys/fs/cgroup/pids/berth/"$id" ] && bad "$fp: cgroup left after delete"
    [ -e "$ROOT/$id" ] && bad "$fp: state left after delete"
done

snapshot "$TMP/after"
cmp -s "$TMP/before" "$TMP/after" && ok "no mount or cgroup left overall" || bad "left: $(diff $TMP/before $TMP/after | head)"
b state nosuch 2>"$TMP/err" && bad "state of a missing container"
grep -q "does not exist" "$TMP/err" && ok "state of a missing container: $(cat $TMP/err)" || bad "state missing: $(cat $TMP/err)"
b create --bundle "$TMP/good" "../x" 2>/dev/null && bad "id with a slash accepted" || ok "id with a slash refused"
finish

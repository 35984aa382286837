#!/bin/sh
# Bad input: each case fails with one line naming the cause, a non-zero exit,
# and leaves no mount, no cgroup and no state behind (mountinfo and the
# cgroup tree are compared before and after). One behaviour per case (lib.sh).
. "$(dirname "$0")/lib.sh"

# expect_fail PATTERN BUNDLE: create must fail with one line matching PATTERN.
expect_fail() {
    id=$RUN_ID-bad
    pat=$1 bundle=$2
    snapshot "$TMP/before"
    b --log "$TMP/log.json" --log-format json create --bundle "$bundle" "$id" >"$TMP/out" 2>"$TMP/err"; rc=$?
    lines=$(wc -l <"$TMP/err")
    if [ $rc = 0 ]; then bad "create succeeded"; b delete -f "$id"; return; fi
    [ "$lines" = 1 ] || bad "$lines lines on stderr: $(cat $TMP/err)"
    grep -q -- "$pat" "$TMP/err" && ok "$(cat $TMP/err)" || bad "message $(cat $TMP/err) lacks $pat"
    tail -1 "$TMP/log.json" | $PY -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["level"]=="error" and d["msg"]' \
        || bad "no JSON error line in --log"
    [ -e "$ROOT/$id" ] && bad "state dir left behind"
    snapshot "$TMP/after"
    cmp -s "$TMP/before" "$TMP/after" || bad "mounts/cgroups changed: $(diff $TMP/before $TMP/after | head -5)"
}

t_malformed_config() {
    mkdir -p "$TMP/malformed"; ln -s "$ROOTFS" "$TMP/malformed/rootfs"
    printf '{"ociVersion": "1.0.2", "root": {"path": "rootfs"},\n "process": {' >"$TMP/malformed/config.json"
    expect_fail "config.json: line" "$TMP/malformed"
}
t_wrong_type() { make_bundle "$TMP/x" 'c["process"]["args"] = "sh"' /bin/true; expect_fail '`process.args`' "$TMP/x"; }
t_unknown_namespace() {
    make_bundle "$TMP/x" 'c["linux"]["namespaces"][0]["type"] = "pidd"' /bin/true
    expect_fail '`linux.namespaces\[0\].type`' "$TMP/x"
}
t_wrong_mount_option_type() { make_bundle "$TMP/x" 'c["mounts"][0]["options"] = [1]' /bin/true; expect_fail '`mounts\[0\].options' "$TMP/x"; }
t_missing_rootfs() { make_bundle "$TMP/x" 'c["root"]["path"] = "nonexistent"' /bin/true; expect_fail "rootfs .*nonexistent" "$TMP/x"; }
t_missing_executable() { make_bundle "$TMP/x" "" /bin/no-such-program; expect_fail "no-such-program" "$TMP/x"; }
t_missing_bind_source() {
    private_rootfs
    make_bundle "$TMP/x" 'c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src", "options": ["bind"]})' /bin/true
    expect_fail "nonexistent-src" "$TMP/x"
}
t_namespace_path_of_another_type() {
    make_bundle "$TMP/x" 'c["linux"]["namespaces"][1] = {"type": "network", "path": "/proc/self/ns/ipc"}' /bin/true
    expect_fail "not a net namespace" "$TMP/x"
}
t_namespace_path_that_is_no_namespace() {
    make_bundle "$TMP/x" 'c["linux"]["namespaces"][1] = {"type": "network", "path": "/etc/hostname"}' /bin/true
    expect_fail "not a net namespace" "$TMP/x"
}

# A hostile /dev symlink pointing at a host directory.
t_hostile_dev_symlink() {
    mkdir -p "$TMP/evil/rootfs/bin" "$TMP/hostdev"
    cp "$ROOTFS/bin/busybox" "$TMP/evil/rootfs/bin/"; ln -s busybox "$TMP/evil/rootfs/bin/true"
    ln -s "$TMP/hostdev" "$TMP/evil/rootfs/dev"
    make_bundle "$TMP/evil" "" /bin/true
    expect_fail "/dev. in the rootfs is a symlink" "$TMP/evil"
    [ -z "$(ls -A $TMP/hostdev)" ] && ok "nothing created in the host dir" || bad "host dir got: $(ls $TMP/hostdev)"
}

good() { id=$RUN_ID-bad; make_bundle "$TMP/good" "" /bin/sleep 100; }

t_duplicate_id() {
    good
    b create --bundle "$TMP/good" "$id" || bad "create good"
    b create --bundle "$TMP/good" "$id" 2>"$TMP/err" && bad "duplicate id accepted"
    [ "$(wc -l <"$TMP/err")" = 1 ] && grep -q "already exists" "$TMP/err" && ok "duplicate id: $(cat $TMP/err)" || bad "duplicate: $(cat $TMP/err)"
    b state "$id" | grep -q created && ok "the first container is untouched" || bad "first container state"
}

# A stale state dir from a crashed run: the init is gone.
t_stale_state_dir() {
    good
    sh -c 'exit 0' & dead=$!; wait $dead
    mkdir -p "$ROOT/$id"
    printf '{"id":"%s","pid":%d,"pidStartTime":1,"bundle":"%s","status":"created"}' "$id" "$dead" "$TMP/good" >"$ROOT/$id/state.json"
    b create --bundle "$TMP/good" "$id" 2>"$TMP/err" && bad "create over a stale state dir succeeded"
    grep -q "already exists" "$TMP/err" && ok "stale state: create says it exists" || bad "stale create: $(cat $TMP/err)"
    b state "$id" | grep -q '"status": "stopped"' && ok "stale state: stopped" || bad "stale state: $(b state $id)"
    b delete "$id" && [ ! -e "$ROOT/$id" ] && ok "stale state: delete cleans it" || bad "stale delete"
}

# A state dir without state.json (crash before the first save).
t_bare_state_dir() {
    id=$RUN_ID-bad
    mkdir -p "$ROOT/$id"
    b delete "$id" && [ ! -e "$ROOT/$id" ] && ok "bare state dir: delete cleans it" || bad "bare state dir delete"
}

# A create that crashed (SIGKILL, as a power cut) after making the cgroup,
# and after cloning the init: the init dies with it (parent-death signal),
# state says stopped, `delete` removes the cgroup and the state.
crashed_create() {
    fp=$1
    "$BERTH" version --json | grep -q '"test-hooks"' || skip "berth was built without test hooks (-Dtest_hooks=true)"
    good
    snapshot "$TMP/before"
    BERTH_FAILPOINTS="$fp=crash" b create --bundle "$TMP/good" "$id" 2>/dev/null && bad "$fp: create survived its crash"
    [ -d /sys/fs/cgroup/pids/berth/"$id" ] && ok "$fp: the crash left a cgroup" || bad "$fp: no cgroup after crash"
    wait_for 5 eval 'b state "$id" | grep -q "\"status\": \"stopped\"\|\"status\": \"creating\""' \
        && ok "$fp: state after crash" || bad "$fp: state: $(b state $id 2>&1)"
    b create --bundle "$TMP/good" "$id" 2>/dev/null && bad "$fp: create over the crashed one succeeded"
    b delete "$id" && ok "$fp: delete cleans up" || bad "$fp: delete"
    [ -d /sys/fs/cgroup/pids/berth/"$id" ] && bad "$fp: cgroup left after delete"
    [ -e "$ROOT/$id" ] && bad "$fp: state left after delete"
    snapshot "$TMP/after"
    cmp -s "$TMP/before" "$TMP/after" && ok "no mount or cgroup left" || bad "left: $(diff $TMP/before $TMP/after | head)"
}
t_create_crashed_after_cgroup() { crashed_create runtime.create.cgroup; }
t_create_crashed_after_clone() { crashed_create runtime.create.cloned; }

t_state_of_a_missing_container() {
    b state nosuch 2>"$TMP/err" && bad "state of a missing container"
    grep -q "does not exist" "$TMP/err" && ok "state of a missing container: $(cat $TMP/err)" || bad "state missing: $(cat $TMP/err)"
}
t_id_with_a_slash_refused() {
    good
    b create --bundle "$TMP/good" "../x" 2>/dev/null && bad "id with a slash accepted" || ok "id with a slash refused"
}

run_cases

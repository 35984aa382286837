#!/bin/sh
# exec, ps, pause/resume, update, features, spec and hooks against the real
# binary (runc's CLI): exit codes pass through exec, --process files, --user,
# --cap, --no-new-privs, --tty (our own proxy and a console socket receiving
# the pty master over SCM_RIGHTS), --detach/--pid-file (in the container's
# cgroup and pid namespace), --preserve-fds; ps table and JSON; the freezer;
# limits written by update and merged into the saved resources; hooks with the
# state on stdin, a failing prestart hook failing create without leftovers.
# One behaviour per case (lib.sh).
. "$(dirname "$0")/lib.sh"

cg=/sys/fs/cgroup

# ---- features, spec ---------------------------------------------------------
t_features_json() {
    b features >"$TMP/features" && $PY - "$TMP/features" <<'PY' && ok "features: JSON per features.md" || bad "features: $(head -c 300 "$TMP/features")"
import json, sys
f = json.load(open(sys.argv[1]))
assert f["ociVersionMin"] == "1.0.0" and f["ociVersionMax"].startswith("1.")
assert set(f["hooks"]) == {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}
assert "rbind" in f["mountOptions"] and "ro" in f["mountOptions"]
l = f["linux"]
assert {"user", "pid", "mount", "network", "cgroup"} <= set(l["namespaces"])
assert "CAP_SYS_ADMIN" in l["capabilities"]
assert l["cgroup"]["v1"] is True and l["cgroup"]["v2"] is True
assert isinstance(l["seccomp"], dict)
PY
}

spec() { mkdir -p "$TMP/spec" && b spec --bundle "$TMP/spec"; }
t_spec_writes_default_config() {
    spec && $PY -c "import json; c=json.load(open('$TMP/spec/config.json')); assert c['process']['args']==['sh'] and c['root']['path']=='rootfs'" \
        && ok "spec writes runc's default config.json" || bad "spec"
}
t_spec_refuses_to_overwrite() {
    spec || bad "spec"
    b spec --bundle "$TMP/spec" 2>"$TMP/err" && bad "spec overwrote config.json" || { grep -q "exists" "$TMP/err" && ok "spec refuses to overwrite" || bad "spec overwrite message: $(cat "$TMP/err")"; }
}
t_spec_rootless() {
    mkdir -p "$TMP/rl"
    b spec --rootless --bundle "$TMP/rl" && $PY -c "
import json; c=json.load(open('$TMP/rl/config.json'))
ns=[n['type'] for n in c['linux']['namespaces']]
assert 'user' in ns and 'network' not in ns and c['linux']['uidMappings'][0]['containerID']==0" \
        && ok "spec --rootless: user namespace, no network namespace" || bad "spec --rootless"
}
# The default spec runs (after making it non-interactive).
t_spec_config_runs() {
    spec || bad "spec"
    $PY -c "
import json; p='$TMP/spec/config.json'; c=json.load(open(p))
c['process']['terminal']=False; c['process']['args']=['/bin/sh','-c','exit 6']; json.dump(c,open(p,'w'))"
    ln -s "$ROOTFS" "$TMP/spec/rootfs"
    b run --bundle "$TMP/spec" "$RUN_ID-spec" >/dev/null 2>"$TMP/err"; rc=$?
    [ $rc = 6 ] && ok "berth runs the config.json berth spec wrote" || bad "run of berth spec's config: $rc $(cat "$TMP/err")"
}

# ---- exec --------------------------------------------------------------------
# target: a running container $id (sleep 1000) whose init is $init.
target() {
    id=$RUN_ID-x
    make_bundle "$TMP/b1" "" /bin/sleep 1000
    b run -d --bundle "$TMP/b1" "$id" || { bad "run -d"; exit 1; }
    init=$(state_field "$id" pid)
}

t_exec_passes_the_exit_code() {
    target
    out=$(b exec "$id" /bin/sh -c 'echo in-exec; exit 7' 2>&1); rc=$?
    [ $rc = 7 ] && ok "exec passes the exit code" || bad "exec exit code $rc ($out)"
    [ "$out" = in-exec ] && ok "exec output" || bad "exec output: $out"
}
t_exec_killed_by_a_signal_137() {
    target
    out=$(b exec "$id" /bin/sh -c 'kill -9 $$' 2>&1); rc=$?
    [ $rc = 137 ] && ok "exec killed by a signal: 128+9" || bad "exec signal exit $rc"
}
t_exec_in_the_container_namespaces() {
    target
    out=$(b exec "$id" /bin/cat /proc/1/cmdline | tr '\0' ' ')
    echo "$out" | grep -q "sleep 1000" && ok "exec is in the container's pid namespace" || bad "exec /proc/1: $out"
    out=$(b exec "$id" /bin/hostname)
    [ "$out" = berth-test ] && ok "exec is in the container's uts namespace" || bad "exec hostname: $out"
    out=$(b exec "$id" /bin/ls /sys/class/net | tr '\n' ' ')
    [ "$out" = "lo " ] && ok "exec is in the container's network namespace" || bad "exec net: $out"
}
t_exec_stdin() {
    target
    out=$(echo from-stdin | b exec "$id" /bin/cat)
    [ "$out" = from-stdin ] && ok "exec stdin" || bad "exec stdin: $out"
}
t_exec_user() {
    need_checker
    target
    out=$(b exec --user 1000:1001 "$id" /bin/berth-check ids | tr '\n' '|')
    [ "$out" = "uid 1000 1000 1000|gid 1001 1001 1001|groups -|" ] && ok "exec --user" || bad "exec --user: $out"
}
t_exec_env_and_cwd() {
    target
    out=$(b exec --env FOO=bar --cwd /proc "$id" /bin/sh -c 'echo $FOO $(pwd)')
    [ "$out" = "bar /proc" ] && ok "exec --env --cwd" || bad "exec env/cwd: $out"
}
spec_caps="CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE"
t_exec_has_the_spec_capabilities() {
    need_checker
    target
    out=$(b exec "$id" /bin/berth-check caps)
    echo "$out" | grep -qx "effective $spec_caps" && ok "exec has the spec's capabilities" || bad "exec caps: $out"
    echo "$out" | grep -qx "inheritable -" && ok "exec: no inheritable capabilities" || bad "exec caps: $out"
    echo "$out" | grep -qx "ambient -" && ok "exec: no ambient capabilities" || bad "exec caps: $out"
}
t_exec_cap_adds_one() {
    need_checker
    target
    out=$(b exec --cap CAP_SYS_ADMIN "$id" /bin/berth-check caps)
    echo "$out" | grep -qx "effective CAP_KILL,CAP_NET_BIND_SERVICE,CAP_SYS_ADMIN,CAP_AUDIT_WRITE" && ok "exec --cap adds one" || bad "exec --cap: $out"
}
t_exec_unknown_cap_refused() {
    target
    b exec --cap CAP_BOGUS "$id" /bin/true 2>"$TMP/err" && bad "exec --cap CAP_BOGUS accepted" || { grep -q CAP_BOGUS "$TMP/err" && ok "exec --cap of an unknown name refused" || bad "bogus cap message: $(cat "$TMP/err")"; }
}
# The spec sets noNewPrivileges; a process.json without it does not get it.
t_exec_process_file() {
    need_checker
    target
    cat >"$TMP/proc.json" <<'JSON'
{"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "echo $P; pwd; berth-check nnp"],
 "env": ["PATH=/bin", "P=from-process-json"], "cwd": "/dev", "noNewPrivileges": false}
JSON
    out=$(b exec --process "$TMP/proc.json" "$id" | tr '\n' '|')
    [ "$out" = "from-process-json|/dev|no_new_privs 0|" ] && ok "exec --process" || bad "exec --process: $out"
}
t_exec_no_new_privs() {
    need_checker
    target
    out=$(b exec --no-new-privs "$id" /bin/berth-check nnp)
    [ "$out" = "no_new_privs 1" ] && ok "exec --no-new-privs" || bad "exec nnp: $out"
}
t_exec_empty_process_args_refused() {
    target
    echo '{"args": []}' >"$TMP/bad.json"
    b exec --process "$TMP/bad.json" "$id" 2>"$TMP/err" && bad "empty process.args accepted" || ok "exec --process with empty args refused: $(head -1 "$TMP/err")"
}
t_exec_missing_binary() {
    target
    b exec "$id" /no/such/binary 2>"$TMP/err"; rc=$?
    [ $rc != 0 ] && grep -q "no/such/binary" "$TMP/err" && ok "exec of a missing binary fails naming it" || bad "missing binary: $rc $(cat "$TMP/err")"
}
t_exec_into_a_missing_container() {
    b exec "$RUN_ID-none" /bin/true 2>/dev/null && bad "exec into a missing container" || ok "exec into a missing container fails"
}

# --detach --pid-file: the process is in the container's cgroup and pid namespace.
t_exec_detach_joins_the_container() {
    target
    b exec -d --pid-file "$TMP/exec.pid" "$id" /bin/sleep 300 || bad "exec -d"
    epid=$(cat "$TMP/exec.pid" 2>/dev/null)
    [ -n "$epid" ] && [ -d /proc/$epid ] || { bad "exec -d pid file: $epid"; return; }
    ok "exec -d --pid-file names a live process"
    grep -q "pids:/berth/$id\$" /proc/$epid/cgroup && ok "exec joined the container's cgroup" || bad "exec cgroup: $(grep pids /proc/$epid/cgroup)"
    [ "$(readlink /proc/$epid/ns/pid)" = "$(readlink /proc/$init/ns/pid)" ] && ok "exec joined the pid namespace" || bad "exec pid ns"
    [ "$(readlink /proc/$epid/ns/mnt)" = "$(readlink /proc/$init/ns/mnt)" ] && ok "exec joined the mount namespace" || bad "exec mnt ns"
    [ "$(readlink /proc/$epid/root)" = / ] && ok "exec's root is the container's" || bad "exec root"
    ls -l /proc/$epid/fd | grep -v -E ' (0|1|2) -> ' | grep -q -- '->' && bad "exec leaked fds: $(ls -l /proc/$epid/fd)" || ok "exec leaks no fd"
    kill -9 "$epid"
}
# exec --cgroup: an existing sub-cgroup of the container's, per controller.
cgroup_target() {
    target
    [ -d "$cg/pids/berth/$id" ] || skip "no v1 pids controller"
    mkdir "$cg/pids/berth/$id/sub"
    # Removed before berth deletes the container (which would wait for it).
    spid=
    case_cleanup='[ -n "$spid" ] && kill -9 "$spid"; wait_for 5 rmdir "$cg/pids/berth/$id/sub"'
}
t_exec_cgroup_joins_a_sub_cgroup() {
    cgroup_target
    b exec -d --cgroup pids:sub --pid-file "$TMP/sub.pid" "$id" /bin/sleep 300 || bad "exec --cgroup pids:sub"
    spid=$(cat "$TMP/sub.pid" 2>/dev/null)
    grep -q "pids:/berth/$id/sub\$" /proc/$spid/cgroup && grep -q "memory:/berth/$id\$" /proc/$spid/cgroup \
        && ok "exec --cgroup pids:sub joins the sub-cgroup for pids only" || bad "exec --cgroup: $(cat /proc/$spid/cgroup)"
}
t_exec_cgroup_missing_refused() {
    cgroup_target
    b exec --cgroup pids:missing "$id" /bin/true 2>"$TMP/err" && bad "exec --cgroup of a missing sub-cgroup accepted" \
        || { grep -q "does not exist" "$TMP/err" && ok "exec --cgroup of a missing sub-cgroup refused" || bad "missing sub-cgroup: $(cat "$TMP/err")"; }
}
t_exec_cgroup_cannot_escape() {
    cgroup_target
    b exec --cgroup ../../x "$id" /bin/true 2>"$TMP/err" && bad "exec --cgroup ../../x accepted" \
        || { grep -q "not a path below" "$TMP/err" && ok "exec --cgroup cannot leave the container's cgroup" || bad "escaping --cgroup: $(cat "$TMP/err")"; }
}
t_exec_preserve_fds() {
    target
    echo preserved >"$TMP/fd3"
    out=$(b exec --preserve-fds 1 "$id" /bin/cat /proc/self/fd/3 3<"$TMP/fd3")
    [ "$out" = preserved ] && ok "exec --preserve-fds" || bad "preserve-fds: $out"
}
# --tty without a console socket: berth proxies the terminal.
t_exec_tty_proxy() {
    command -v script >/dev/null || skip "needs script (util-linux)"
    target
    out=$(script -qec "$BERTH --root $ROOT exec -t $id /bin/sh -c 'tty; exit 4'" /dev/null </dev/null | tr -d '\r\0')
    echo "$out" | grep -q "/dev/pts/[0-9]" && ok "exec -t: a terminal" || bad "exec -t: $out"
}
# --tty --console-socket: the master arrives over SCM_RIGHTS, as conmon gets it.
t_exec_tty_console_socket() {
    target
    cat >"$TMP/recv.py" <<'PY'
import os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path); s.listen(1)
open(path + ".ready", "w").close()
c, _ = s.accept()
msg, fds, flags, addr = socket.recv_fds(c, 4096, 4)
assert len(fds) == 1, fds
out = b""
deadline = time.time() + 10
while time.time() < deadline:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
print(msg.decode(), out.decode(errors="replace").replace("\r", "").strip())
PY
    $PY "$TMP/recv.py" "$TMP/console.sock" >"$TMP/recv.out" 2>&1 &
    rpid=$!
    wait_for 5 test -e "$TMP/console.sock.ready" || bad "the console socket listener did not start"
    b exec -t --console-socket "$TMP/console.sock" "$id" /bin/sh -c 'test -t 0 && test -t 1 && echo tty-ok; stty size'; rc=$?
    wait $rpid
    [ $rc = 0 ] && grep -q "^/dev/ptmx tty-ok" "$TMP/recv.out" && ok "exec -t --console-socket: the pty master over SCM_RIGHTS" || bad "console socket: rc $rc, $(cat "$TMP/recv.out")"
}
t_exec_tty_detach_needs_a_console_socket() {
    target
    b exec -t -d "$id" /bin/true 2>/dev/null && bad "exec -t -d without a console socket accepted" || ok "exec -t -d needs a console socket"
}

# ---- ps ------------------------------------------------------------------------
t_ps_table() {
    target
    out=$(b ps "$id")
    echo "$out" | head -1 | grep -q PID && echo "$out" | grep -q "sleep 1000" && ok "ps table" || bad "ps: $out"
    echo "$out" | grep -q "$PY\|ops_test" && bad "ps shows host processes: $out"
}
t_ps_json_lists_the_cgroup_pids() {
    target
    json=$(b ps --format json "$id")
    want=$(sort -n "$cg/pids/berth/$id/cgroup.procs" | tr '\n' ' ')
    got=$(echo "$json" | $PY -c 'import json,sys; print(" ".join(str(p) for p in sorted(json.load(sys.stdin))))')
    [ "$got " = "$want" ] && ok "ps --format json: the cgroup's pids" || bad "ps json: $got vs $want"
}
t_ps_with_ps_options() {
    target
    out=$(b ps "$id" -- -o pid,comm)
    echo "$out" | grep -q "^ *$init sleep" && ok "ps with ps options" || bad "ps -o: $out"
}

# ---- pause, resume ------------------------------------------------------------
freezer() { cat "$cg/freezer/berth/$id/freezer.state"; }
t_pause_freezes() {
    target
    b pause "$id" || bad "pause"
    [ "$(freezer)" = FROZEN ] && ok "pause froze the cgroup" || bad "freezer: $(freezer)"
    status_is "$id" paused && ok "state: paused" || bad "state after pause: $(b state "$id")"
}
t_pause_twice_refused() {
    target
    b pause "$id" || bad "pause"
    b pause "$id" 2>/dev/null && bad "pause twice" || ok "pause of a paused container refused"
}
t_exec_into_a_paused_container_refused() {
    target
    b pause "$id" || bad "pause"
    b exec "$id" /bin/true 2>/dev/null && bad "exec into a paused container" || ok "exec into a paused container refused"
}
t_resume_thaws() {
    target
    b pause "$id" || bad "pause"
    b resume "$id" || bad "resume"
    [ "$(freezer)" = THAWED ] && ok "resume thawed" || bad "freezer after resume: $(freezer)"
    status_is "$id" running && ok "state: running again" || bad "state after resume"
}
t_resume_of_a_running_container_refused() {
    target
    b resume "$id" 2>/dev/null && bad "resume of a running container" || ok "resume of a running container refused"
}

# ---- update ----------------------------------------------------------------------
t_update_flags() {
    target
    b update --memory 8m --pids-limit 12 --cpu-quota 50000 --cpu-period 100000 --cpu-shares 512 "$id" || bad "update flags"
    [ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 8388608 ] && ok "update --memory" || bad "memory limit $(cat $cg/memory/berth/$id/memory.limit_in_bytes)"
    [ "$(cat $cg/pids/berth/$id/pids.max)" = 12 ] && ok "update --pids-limit" || bad "pids.max"
    [ "$(cat $cg/cpu/berth/$id/cpu.cfs_quota_us)" = 50000 ] && ok "update --cpu-quota" || bad "cfs quota"
    [ "$(cat $cg/cpu/berth/$id/cpu.shares)" = 512 ] && ok "update --cpu-shares" || bad "cpu.shares"
}
t_update_resources_file() {
    target
    echo '{"pids": {"limit": 20}}' >"$TMP/res.json"
    b update --resources "$TMP/res.json" "$id" && [ "$(cat $cg/pids/berth/$id/pids.max)" = 20 ] && ok "update --resources FILE" || bad "update -r"
}
t_update_resources_stdin() {
    target
    echo '{"memory": {"limit": 16777216}}' | b update -r - "$id" && [ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 16777216 ] && ok "update -r - (stdin)" || bad "update -r -"
}
t_update_merges_into_the_saved_resources() {
    target
    b update --cpu-quota 50000 --cpu-period 100000 "$id" || bad "update cpu"
    echo '{"pids": {"limit": 20}}' | b update -r - "$id" || bad "update pids"
    echo '{"memory": {"limit": 16777216}}' | b update -r - "$id" || bad "update memory"
    $PY -c "
import json; r=json.load(open('$ROOT/$id/resources.json'))
assert r['pids']['limit']==20 and r['memory']['limit']==16777216 and r['cpu']['quota']==50000, r
assert r['devices'][0]['allow'] is False, r" && ok "update merged into the saved resources" || bad "resources.json: $(cat "$ROOT/$id/resources.json")"
}
# The merged set is applied: --memory-swap alone keeps the saved 16 MiB limit
# (v1 needs memsw >= limit, so the limit is written with it).
t_update_memory_swap_alone() {
    target
    [ -f $cg/memory/berth/$id/memory.memsw.limit_in_bytes ] || skip "no memory.memsw (swap accounting off)"
    b update --memory 16m "$id" || bad "update --memory"
    b update --memory-swap 33554432 "$id" && [ "$(cat $cg/memory/berth/$id/memory.memsw.limit_in_bytes)" = 33554432 ] \
        && [ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 16777216 ] && ok "update --memory-swap alone, on the saved limit" \
        || bad "update --memory-swap: memsw $(cat $cg/memory/berth/$id/memory.memsw.limit_in_bytes)"
}
t_update_bad_values_refused() {
    target
    b update --pids-limit 20 "$id" || bad "update --pids-limit"
    b update --memory lots "$id" 2>"$TMP/err" && bad "update --memory lots accepted" || { grep -q -- "--memory" "$TMP/err" && ok "bad update value refused naming the flag" || bad "msg: $(cat "$TMP/err")"; }
    echo '{"pids": {"limit": "x"}}' | b update -r - "$id" 2>"$TMP/err" && bad "bad resources accepted" || ok "bad --resources refused: $(head -1 "$TMP/err")"
    [ "$(cat $cg/pids/berth/$id/pids.max)" = 20 ] && ok "a refused update changes nothing" || bad "pids.max changed by a refused update"
}

# The init finishes exiting only once the detached exec's process (now a
# child of the host's pid 1 or subreaper) is reaped: wait for it.
t_stopped_container_refuses_exec_update_pause() {
    target
    b exec -d "$id" /bin/sleep 300 || bad "exec -d"
    b kill "$id" KILL
    wait_for 10 status_is "$id" stopped && ok "KILL stopped it" || bad "state after KILL: $(b state "$id" 2>&1)"
    b exec "$id" /bin/true 2>"$TMP/err" && bad "exec into a stopped container" || ok "exec into a stopped container refused"
    b update --pids-limit 5 "$id" 2>/dev/null && bad "update of a stopped container" || ok "update of a stopped container refused"
    b pause "$id" 2>/dev/null && bad "pause of a stopped container" || ok "pause of a stopped container refused"
}

# ---- hooks -----------------------------------------------------------------------
t_hooks_run_with_the_state_on_stdin() {
    hid=$RUN_ID-h
    make_bundle "$TMP/b2" "
h = lambda name: {'path': '/bin/sh', 'args': ['sh', '-c', 'cat > $TMP/hook-' + name]}
c['hooks'] = {k: [h(k)] for k in ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']}
c['hooks']['createContainer'] = [{'path': '$BUSYBOX', 'args': ['sh', '-c', 'cat > /dev/null; echo ran > $TMP/hook-createContainer']}]
c['hooks']['startContainer'] = [{'path': '/bin/sh', 'args': ['sh', '-c', 'cat > /dev/null; echo ran > /dev/shm/startContainer']}]
" /bin/sh -c 'cat /dev/shm/startContainer 2>/dev/null || echo none'
    out=$(b run --bundle "$TMP/b2" "$hid" 2>"$TMP/err"); rc=$?
    [ $rc = 0 ] || bad "run with hooks: $rc $(cat "$TMP/err")"
    for k in prestart createRuntime poststart poststop; do
        if [ -f "$TMP/hook-$k" ] && $PY -c "import json; s=json.load(open('$TMP/hook-$k')); assert s['id']=='$hid' and s['bundle']=='$TMP/b2', s" 2>/dev/null; then
            ok "$k hook ran with the state on stdin"
        else
            bad "$k hook: $(cat "$TMP/hook-$k" 2>&1)"
        fi
    done
    [ -f "$TMP/hook-createContainer" ] && ok "createContainer hook ran" || bad "createContainer hook did not run"
    [ "$out" = ran ] && ok "startContainer hook ran inside the container" || bad "startContainer: $out"
}
t_failing_prestart_hook_fails_run_without_leftovers() {
    hid=$RUN_ID-h
    make_bundle "$TMP/b3" "c['hooks'] = {'prestart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'echo hook-said-no >&2; exit 9']}]}" /bin/true
    snapshot "$TMP/before"
    b run --bundle "$TMP/b3" "$hid" 2>"$TMP/err" && bad "a failing prestart hook did not fail run" || {
        grep -q "prestart" "$TMP/err" && ok "a failing prestart hook fails run: $(head -1 "$TMP/err")" || bad "prestart failure message: $(cat "$TMP/err")"; }
    snapshot "$TMP/after"
    [ -d "$ROOT/$hid" ] && bad "failed prestart left state" || ok "failed prestart left no state"
    cmp -s "$TMP/before" "$TMP/after" && ok "failed prestart left no mount or cgroup" || bad "leftovers: $(diff "$TMP/before" "$TMP/after")"
}
t_failing_poststart_and_timed_out_poststop_do_not_fail_run() {
    hid=$RUN_ID-h
    make_bundle "$TMP/b4" "c['hooks'] = {'poststart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'exit 1']}], 'poststop': [{'path': '/bin/sleep', 'args': ['sleep', '10'], 'timeout': 1}]}" /bin/true
    b run --bundle "$TMP/b4" "$hid" 2>"$TMP/err"; rc=$?
    [ $rc = 0 ] && ok "failing poststart and a timed-out poststop hook do not fail run" || bad "poststart/poststop failures: $rc $(cat "$TMP/err")"
}

# ---- exec into a container with a user namespace (joined first, as runc) ----------
t_exec_joins_the_user_namespace() {
    private_rootfs
    uid_=$RUN_ID-u
    chown -R 100000:100000 "$ROOTFS"
    make_bundle "$TMP/u" "
c['linux']['namespaces'].append({'type': 'user'})
c['linux']['uidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
c['linux']['gidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
c['mounts'] = [m for m in c['mounts'] if m['destination'] not in ('/sys', '/sys/fs/cgroup')]
" /bin/sleep 100
    b run -d --bundle "$TMP/u" "$uid_" 2>"$TMP/err" || { bad "run with a user namespace: $(cat "$TMP/err")"; return; }
    out=$(b exec "$uid_" /bin/sh -c 'echo $(id -u) $(cat /proc/self/uid_map)' 2>&1)
    [ "$out" = "0 0 100000 65536" ] && ok "exec joins the user namespace" || bad "exec in userns: $out"
}

run_cases

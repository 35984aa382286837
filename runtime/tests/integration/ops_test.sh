#!/bin/sh
# exec, ps, pause/resume, update, features, spec and hooks against the real
# binary (runc's CLI): exit codes pass through exec, --process files, --user,
# --cap, --no-new-privs, --tty (our own proxy and a console socket receiving
# the pty master over SCM_RIGHTS), --detach/--pid-file (in the container's
# cgroup and pid namespace), --preserve-fds; ps table and JSON; the freezer;
# limits written by update and merged into the saved resources; hooks with the
# state on stdin, a failing prestart hook failing create without leftovers.
. "$(dirname "$0")/lib.sh"

# ---- features, spec ---------------------------------------------------------
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
mkdir -p "$TMP/spec"
b spec --bundle "$TMP/spec" && $PY -c "import json; c=json.load(open('$TMP/spec/config.json')); assert c['process']['args']==['sh'] and c['root']['path']=='rootfs'" \
    && ok "spec writes runc's default config.json" || bad "spec"
b spec --bundle "$TMP/spec" 2>"$TMP/err" && bad "spec overwrote config.json" || { grep -q "exists" "$TMP/err" && ok "spec refuses to overwrite" || bad "spec overwrite message: $(cat "$TMP/err")"; }
mkdir -p "$TMP/rl"
b spec --rootless --bundle "$TMP/rl" && $PY -c "
import json; c=json.load(open('$TMP/rl/config.json'))
ns=[n['type'] for n in c['linux']['namespaces']]
assert 'user' in ns and 'network' not in ns and c['linux']['uidMappings'][0]['containerID']==0" \
    && ok "spec --rootless: user namespace, no network namespace" || bad "spec --rootless"
# The default spec runs (after making it non-interactive).
$PY -c "
import json; p='$TMP/spec/config.json'; c=json.load(open(p))
c['process']['terminal']=False; c['process']['args']=['/bin/sh','-c','exit 6']; json.dump(c,open(p,'w'))"
ln -s "$ROOTFS" "$TMP/spec/rootfs"
b run --bundle "$TMP/spec" "$RUN_ID-spec" >/dev/null 2>"$TMP/err"; rc=$?
[ $rc = 6 ] && ok "berth runs the config.json berth spec wrote" || bad "run of berth spec's config: $rc $(cat "$TMP/err")"

# ---- exec --------------------------------------------------------------------
id=$RUN_ID-x
make_bundle "$TMP/b1" "" /bin/sleep 1000
b run -d --bundle "$TMP/b1" "$id" || bad "run -d"
init=$(b state "$id" | $PY -c 'import json,sys; print(json.load(sys.stdin)["pid"])')

out=$(b exec "$id" /bin/sh -c 'echo in-exec; exit 7' 2>&1); rc=$?
[ $rc = 7 ] && ok "exec passes the exit code" || bad "exec exit code $rc ($out)"
[ "$out" = in-exec ] && ok "exec output" || bad "exec output: $out"
out=$(b exec "$id" /bin/sh -c 'kill -9 $$' 2>&1); rc=$?
[ $rc = 137 ] && ok "exec killed by a signal: 128+9" || bad "exec signal exit $rc"
out=$(b exec "$id" /bin/cat /proc/1/cmdline | tr '\0' ' ')
echo "$out" | grep -q "sleep 1000" && ok "exec is in the container's pid namespace" || bad "exec /proc/1: $out"
out=$(b exec "$id" /bin/hostname)
[ "$out" = berth-test ] && ok "exec is in the container's uts namespace" || bad "exec hostname: $out"
out=$(b exec "$id" /bin/ls /sys/class/net | tr '\n' ' ')
[ "$out" = "lo " ] && ok "exec is in the container's network namespace" || bad "exec net: $out"
out=$(echo from-stdin | b exec "$id" /bin/cat)
[ "$out" = from-stdin ] && ok "exec stdin" || bad "exec stdin: $out"
out=$(b exec --user 1000:1001 "$id" /bin/sh -c 'echo $(id -u):$(id -g)')
[ "$out" = 1000:1001 ] && ok "exec --user" || bad "exec --user: $out"
out=$(b exec --env FOO=bar --cwd /proc "$id" /bin/sh -c 'echo $FOO $(pwd)')
[ "$out" = "bar /proc" ] && ok "exec --env --cwd" || bad "exec env/cwd: $out"
out=$(b exec "$id" /bin/grep CapEff /proc/self/status | awk '{print $2}')
[ "$out" = 0000000020000420 ] && ok "exec has the spec's capabilities" || bad "exec CapEff: $out"
out=$(b exec --cap CAP_SYS_ADMIN "$id" /bin/grep CapEff /proc/self/status | awk '{print $2}')
[ "$out" = 0000000020200420 ] && ok "exec --cap adds one" || bad "exec --cap CapEff: $out"
out=$(b exec "$id" /bin/grep CapInh /proc/self/status | awk '{print $2}')
[ "$out" = 0000000000000000 ] && ok "exec: no inheritable capabilities" || bad "exec CapInh: $out"
b exec --cap CAP_BOGUS "$id" /bin/true 2>"$TMP/err" && bad "exec --cap CAP_BOGUS accepted" || { grep -q CAP_BOGUS "$TMP/err" && ok "exec --cap of an unknown name refused" || bad "bogus cap message: $(cat "$TMP/err")"; }
# The spec sets noNewPrivileges; a process.json without it does not get it.
cat >"$TMP/proc.json" <<'JSON'
{"terminal": false, "user": {"uid": 0, "gid": 0}, "args": ["/bin/sh", "-c", "echo $P; pwd; grep NoNewPrivs /proc/self/status"],
 "env": ["PATH=/bin", "P=from-process-json"], "cwd": "/dev", "noNewPrivileges": false}
JSON
out=$(b exec --process "$TMP/proc.json" "$id" | tr '\n' ' ')
echo "$out" | grep -Eq "^from-process-json /dev NoNewPrivs:[[:space:]]0 $" && ok "exec --process" || bad "exec --process: $out"
out=$(b exec --no-new-privs "$id" /bin/grep NoNewPrivs /proc/self/status | awk '{print $2}')
[ "$out" = 1 ] && ok "exec --no-new-privs" || bad "exec nnp: $out"
echo '{"args": []}' >"$TMP/bad.json"
b exec --process "$TMP/bad.json" "$id" 2>"$TMP/err" && bad "empty process.args accepted" || ok "exec --process with empty args refused: $(head -1 "$TMP/err")"
b exec "$id" /no/such/binary 2>"$TMP/err"; rc=$?
[ $rc != 0 ] && grep -q "no/such/binary" "$TMP/err" && ok "exec of a missing binary fails naming it" || bad "missing binary: $rc $(cat "$TMP/err")"
b exec "$RUN_ID-none" /bin/true 2>/dev/null && bad "exec into a missing container" || ok "exec into a missing container fails"

# --detach --pid-file: the process is in the container's cgroup and pid namespace.
b exec -d --pid-file "$TMP/exec.pid" "$id" /bin/sleep 300 || bad "exec -d"
epid=$(cat "$TMP/exec.pid" 2>/dev/null)
if [ -n "$epid" ] && [ -d /proc/$epid ]; then
    ok "exec -d --pid-file names a live process"
    grep -q "pids:/berth/$id\$" /proc/$epid/cgroup && ok "exec joined the container's cgroup" || bad "exec cgroup: $(grep pids /proc/$epid/cgroup)"
    [ "$(readlink /proc/$epid/ns/pid)" = "$(readlink /proc/$init/ns/pid)" ] && ok "exec joined the pid namespace" || bad "exec pid ns"
    [ "$(readlink /proc/$epid/ns/mnt)" = "$(readlink /proc/$init/ns/mnt)" ] && ok "exec joined the mount namespace" || bad "exec mnt ns"
    [ "$(readlink /proc/$epid/root)" = / ] && ok "exec's root is the container's" || bad "exec root"
    ls -l /proc/$epid/fd | grep -v -E ' (0|1|2) -> ' | grep -q -- '->' && bad "exec leaked fds: $(ls -l /proc/$epid/fd)" || ok "exec leaks no fd"
else
    bad "exec -d pid file: $epid"
fi
# exec --cgroup: an existing sub-cgroup of the container's, per controller.
if [ -d "/sys/fs/cgroup/pids/berth/$id" ]; then
    mkdir "/sys/fs/cgroup/pids/berth/$id/sub"
    b exec -d --cgroup pids:sub --pid-file "$TMP/sub.pid" "$id" /bin/sleep 300 || bad "exec --cgroup pids:sub"
    spid=$(cat "$TMP/sub.pid" 2>/dev/null)
    grep -q "pids:/berth/$id/sub\$" /proc/$spid/cgroup && grep -q "memory:/berth/$id\$" /proc/$spid/cgroup \
        && ok "exec --cgroup pids:sub joins the sub-cgroup for pids only" || bad "exec --cgroup: $(cat /proc/$spid/cgroup)"
    b exec --cgroup pids:missing "$id" /bin/true 2>"$TMP/err" && bad "exec --cgroup of a missing sub-cgroup accepted" \
        || { grep -q "does not exist" "$TMP/err" && ok "exec --cgroup of a missing sub-cgroup refused" || bad "missing sub-cgroup: $(cat "$TMP/err")"; }
    b exec --cgroup ../../x "$id" /bin/true 2>"$TMP/err" && bad "exec --cgroup ../../x accepted" \
        || { grep -q "not a path below" "$TMP/err" && ok "exec --cgroup cannot leave the container's cgroup" || bad "escaping --cgroup: $(cat "$TMP/err")"; }
    kill -9 "$spid" 2>/dev/null
fi
# --preserve-fds: fd 3 reaches the process.
echo preserved >"$TMP/fd3"
out=$(b exec --preserve-fds 1 "$id" /bin/cat /proc/self/fd/3 3<"$TMP/fd3")
[ "$out" = preserved ] && ok "exec --preserve-fds" || bad "preserve-fds: $out"
# --tty without a console socket: berth proxies the terminal.
if command -v script >/dev/null; then
    out=$(script -qec "$BERTH --root $ROOT exec -t $id /bin/sh -c 'tty; exit 4'" /dev/null </dev/null | tr -d '\r\0'); rc=$?
    echo "$out" | grep -q "/dev/pts/[0-9]" && ok "exec -t: a terminal" || bad "exec -t: $out"
fi
# --tty --console-socket: the master arrives over SCM_RIGHTS, as conmon gets it.
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
i=0; while [ ! -e "$TMP/console.sock.ready" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
b exec -t --console-socket "$TMP/console.sock" "$id" /bin/sh -c 'test -t 0 && test -t 1 && echo tty-ok; stty size'; rc=$?
wait $rpid
[ $rc = 0 ] && grep -q "^/dev/ptmx tty-ok" "$TMP/recv.out" && ok "exec -t --console-socket: the pty master over SCM_RIGHTS" || bad "console socket: rc $rc, $(cat "$TMP/recv.out")"
b exec -t -d "$id" /bin/true 2>/dev/null && bad "exec -t -d without a console socket accepted" || ok "exec -t -d needs a console socket"

# ---- ps ------------------------------------------------------------------------
out=$(b ps "$id")
echo "$out" | head -1 | grep -q PID && echo "$out" | grep -q "sleep 1000" && ok "ps table" || bad "ps: $out"
echo "$out" | grep -q "$PY\|ps_test\|lifecycle" && bad "ps shows host processes" || true
json=$(b ps --format json "$id")
want=$(cat /sys/fs/cgroup/pids/berth/"$id"/cgroup.procs | sort -n | tr '\n' ' ')
got=$(echo "$json" | $PY -c 'import json,sys; print(" ".join(str(p) for p in sorted(json.load(sys.stdin))))')
[ "$got " = "$want" ] && ok "ps --format json: the cgroup's pids" || bad "ps json: $got vs $want"
out=$(b ps "$id" -- -o pid,comm)
echo "$out" | grep -q "^ *$init sleep" && ok "ps with ps options" || bad "ps -o: $out"

# ---- pause, resume ------------------------------------------------------------
b pause "$id" || bad "pause"
[ "$(cat /sys/fs/cgroup/freezer/berth/"$id"/freezer.state)" = FROZEN ] && ok "pause froze the cgroup" || bad "freezer: $(cat /sys/fs/cgroup/freezer/berth/"$id"/freezer.state)"
b state "$id" | grep -q '"status": "paused"' && ok "state: paused" || bad "state after pause: $(b state "$id")"
b pause "$id" 2>/dev/null && bad "pause twice" || ok "pause of a paused container refused"
b exec "$id" /bin/true 2>/dev/null && bad "exec into a paused container" || ok "exec into a paused container refused"
b resume "$id" || bad "resume"
[ "$(cat /sys/fs/cgroup/freezer/berth/"$id"/freezer.state)" = THAWED ] && ok "resume thawed" || bad "freezer after resume"
b state "$id" | grep -q '"status": "running"' && ok "state: running again" || bad "state after resume"
b resume "$id" 2>/dev/null && bad "resume of a running container" || ok "resume of a running container refused"

# ---- update ----------------------------------------------------------------------
cg=/sys/fs/cgroup
b update --memory 8m --pids-limit 12 --cpu-quota 50000 --cpu-period 100000 --cpu-shares 512 "$id" || bad "update flags"
[ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 8388608 ] && ok "update --memory" || bad "memory limit $(cat $cg/memory/berth/$id/memory.limit_in_bytes)"
[ "$(cat $cg/pids/berth/$id/pids.max)" = 12 ] && ok "update --pids-limit" || bad "pids.max"
[ "$(cat $cg/cpu/berth/$id/cpu.cfs_quota_us)" = 50000 ] && ok "update --cpu-quota" || bad "cfs quota"
[ "$(cat $cg/cpu/berth/$id/cpu.shares)" = 512 ] && ok "update --cpu-shares" || bad "cpu.shares"
echo '{"pids": {"limit": 20}}' >"$TMP/res.json"
b update --resources "$TMP/res.json" "$id" && [ "$(cat $cg/pids/berth/$id/pids.max)" = 20 ] && ok "update --resources FILE" || bad "update -r"
echo '{"memory": {"limit": 16777216}}' | b update -r - "$id" && [ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 16777216 ] && ok "update -r - (stdin)" || bad "update -r -"
$PY -c "
import json; r=json.load(open('$ROOT/$id/resources.json'))
assert r['pids']['limit']==20 and r['memory']['limit']==16777216 and r['cpu']['quota']==50000, r
assert r['devices'][0]['allow'] is False, r" && ok "update merged into the saved resources" || bad "resources.json: $(cat "$ROOT/$id/resources.json")"
# The merged set is applied: --memory-swap alone keeps the saved 16 MiB limit
# (v1 needs memsw >= limit, so the limit is written with it).
if [ -f $cg/memory/berth/$id/memory.memsw.limit_in_bytes ]; then
    b update --memory-swap 33554432 "$id" && [ "$(cat $cg/memory/berth/$id/memory.memsw.limit_in_bytes)" = 33554432 ] \
        && [ "$(cat $cg/memory/berth/$id/memory.limit_in_bytes)" = 16777216 ] && ok "update --memory-swap alone, on the saved limit" \
        || bad "update --memory-swap: memsw $(cat $cg/memory/berth/$id/memory.memsw.limit_in_bytes)"
fi
b update --memory lots "$id" 2>"$TMP/err" && bad "update --memory lots accepted" || { grep -q -- "--memory" "$TMP/err" && ok "bad update value refused naming the flag" || bad "msg: $(cat "$TMP/err")"; }
echo '{"pids": {"limit": "x"}}' | b update -r - "$id" 2>"$TMP/err" && bad "bad resources accepted" || ok "bad --resources refused: $(head -1 "$TMP/err")"
[ "$(cat $cg/pids/berth/$id/pids.max)" = 20 ] && ok "a refused update changes nothing" || bad "pids.max changed by a refused update"

# The init finishes exiting only once the detached exec's process (now a
# child of the host's pid 1 or subreaper) is reaped: wait for it.
b kill "$id" KILL
i=0; until b state "$id" | grep -q '"status": "stopped"' || [ $i -ge 100 ]; do sleep 0.1; i=$((i+1)); done
b state "$id" | grep -q '"status": "stopped"' && ok "KILL stopped it" || bad "state after KILL: $(b state "$id" 2>&1)"
b exec "$id" /bin/true 2>"$TMP/err" && bad "exec into a stopped container" || ok "exec into a stopped container refused"
b update --pids-limit 5 "$id" 2>/dev/null && bad "update of a stopped container" || ok "update of a stopped container refused"
b pause "$id" 2>/dev/null && bad "pause of a stopped container" || ok "pause of a stopped container refused"
b delete "$id"

# ---- hooks -----------------------------------------------------------------------
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
make_bundle "$TMP/b3" "c['hooks'] = {'prestart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'echo hook-said-no >&2; exit 9']}]}" /bin/true
snapshot "$TMP/before"
b run --bundle "$TMP/b3" "$hid" 2>"$TMP/err" && bad "a failing prestart hook did not fail run" || {
    grep -q "prestart" "$TMP/err" && ok "a failing prestart hook fails run: $(head -1 "$TMP/err")" || bad "prestart failure message: $(cat "$TMP/err")"; }
snapshot "$TMP/after"
[ -d "$ROOT/$hid" ] && bad "failed prestart left state" || ok "failed prestart left no state"
cmp -s "$TMP/before" "$TMP/after" && ok "failed prestart left no mount or cgroup" || bad "leftovers: $(diff "$TMP/before" "$TMP/after")"
make_bundle "$TMP/b4" "c['hooks'] = {'poststart': [{'path': '/bin/sh', 'args': ['sh', '-c', 'exit 1']}], 'poststop': [{'path': '/bin/sleep', 'args': ['sleep', '10'], 'timeout': 1}]}" /bin/true
b run --bundle "$TMP/b4" "$hid" 2>"$TMP/err"; rc=$?
[ $rc = 0 ] && ok "failing poststart and a timed-out poststop hook do not fail run" || bad "poststart/poststop failures: $rc $(cat "$TMP/err")"
# ---- exec into a container with a user namespace (joined first, as runc) ----------
uid_=$RUN_ID-u
chown -R 100000:100000 "$ROOTFS"
make_bundle "$TMP/u" "
c['linux']['namespaces'].append({'type': 'user'})
c['linux']['uidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
c['linux']['gidMappings'] = [{'containerID': 0, 'hostID': 100000, 'size': 65536}]
c['mounts'] = [m for m in c['mounts'] if m['destination'] not in ('/sys', '/sys/fs/cgroup')]
" /bin/sleep 100
if b run -d --bundle "$TMP/u" "$uid_" 2>"$TMP/err"; then
    out=$(b exec "$uid_" /bin/sh -c 'echo $(id -u) $(cat /proc/self/uid_map)' 2>&1)
    [ "$out" = "0 0 100000 65536" ] && ok "exec joins the user namespace" || bad "exec in userns: $out"
    b delete -f "$uid_"
else
    bad "run with a user namespace: $(cat "$TMP/err")"
fi
finish

#!/bin/sh
# The runc-compatible lifecycle against the real binary: create (the init
# waits on the exec fifo), state, start, kill, delete, run (foreground exit
# code, --detach), list (table and JSON), --pid-file, signal names.
. "$(dirname "$0")/lib.sh"

id=$RUN_ID-a
make_bundle "$TMP/b1" "" /bin/sh -c 'echo hello; exit 3'
out=$(b run --bundle "$TMP/b1" "$id" 2>&1); rc=$?
[ $rc = 3 ] && ok "run returns the exit code" || bad "run exit code $rc ($out)"
echo "$out" | grep -q hello && ok "run output" || bad "run output: $out"
[ -d "$ROOT/$id" ] && bad "run left its state behind" || ok "run deleted the container"

make_bundle "$TMP/b2" "" /bin/sleep 100
b create --bundle "$TMP/b2" --pid-file "$TMP/pid" "$id" || bad "create"
st=$(b state "$id")
echo "$st" | grep -q '"status": "created"' && ok "state: created" || bad "state after create: $st"
pid=$(cat "$TMP/pid")
[ -n "$pid" ] && [ -d /proc/$pid ] && ok "pid file names the init" || bad "pid file: $pid"
echo "$st" | grep -q "\"pid\": $pid" && ok "state pid" || bad "state pid"
b create --bundle "$TMP/b2" "$id" 2>"$TMP/err"; rc=$?
[ $rc != 0 ] && grep -q "already exists" "$TMP/err" && ok "duplicate id refused" || bad "duplicate id: $rc $(cat $TMP/err)"
b start "$id" || bad "start"
b state "$id" | grep -q '"status": "running"' && ok "state: running" || bad "state after start"
tr '\0' ' ' </proc/$pid/cmdline | grep -q "sleep 100" && ok "the init became the process" || bad "cmdline: $(tr '\0' ' ' </proc/$pid/cmdline)"
b start "$id" 2>/dev/null && bad "start twice succeeded" || ok "start twice refused"
b list | grep -q "^$id .*running" && ok "list table" || bad "list: $(b list)"
b list --format json | $PY -c 'import json,sys; l=json.load(sys.stdin); assert l[0]["status"]=="running"' && ok "list json" || bad "list json"
b delete "$id" 2>/dev/null && bad "delete of a running container without --force" || ok "delete needs --force"
# The init of a pid namespace ignores signals it has no handler for, KILL aside.
b kill "$id" KILL || bad "kill KILL"
sleep 0.2
b state "$id" | grep -q '"status": "stopped"' && ok "KILL stopped sleep" || bad "state after kill: $(b state $id)"
b kill "$id" KILL 2>/dev/null && bad "kill of a stopped container succeeded" || ok "kill stopped refused"
b delete "$id" || bad "delete stopped"
[ -d "$ROOT/$id" ] && bad "state left" || ok "delete removed state"
ls -d /sys/fs/cgroup/*/berth/"$id" 2>/dev/null && bad "cgroup left" || ok "delete removed cgroups"

b run -d --bundle "$TMP/b2" "$id" || bad "run -d"
b state "$id" | grep -q running && ok "run -d: running" || bad "run -d state"
b kill "$id" SIGKILL && sleep 0.2 && b state "$id" | grep -q stopped && ok "kill SIGKILL" || bad "kill SIGKILL"
b delete "$id"
b run -d --bundle "$TMP/b2" "$id" || bad "run -d"
b delete --force "$id" && ok "delete --force of a running container" || bad "delete --force"
[ -d "$ROOT/$id" ] && bad "state left after delete -f"
b delete --force "$id" && ok "delete --force of a missing container" || bad "delete -f missing"
b delete "$id" 2>/dev/null && bad "delete missing succeeded" || ok "delete missing fails"
b kill "$id" NOSUCH 2>/dev/null && bad "bad signal accepted" || ok "bad signal refused"

# kill --all signals every process of the cgroup.
make_bundle "$TMP/b3" "" /bin/sh -c 'sleep 100 & sleep 100 & wait'
b run -d --bundle "$TMP/b3" "$id" || bad "run -d b3"
sleep 0.3
n=$(cat /sys/fs/cgroup/pids/berth/"$id"/cgroup.procs | wc -l)
[ "$n" = 3 ] && ok "three processes in the cgroup" || bad "cgroup.procs has $n"
b kill --all "$id" TERM || bad "kill --all"
sleep 0.3
n=$(cat /sys/fs/cgroup/pids/berth/"$id"/cgroup.procs | wc -l)
[ "$n" = 0 ] && ok "kill --all TERM reached every process" || bad "after kill --all: $n left"
b state "$id" | grep -q stopped && ok "kill --all: stopped" || bad "kill --all state"
b delete "$id"

# Created but never started: delete without --force works (as runc).
b create --bundle "$TMP/b2" "$id" && b delete "$id" && ok "delete a created container" || bad "delete created"
# Foreground run is killed by a signal: 128+9.
make_bundle "$TMP/b4" 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]' /bin/sh -c 'kill -9 $$'
b run --bundle "$TMP/b4" "$id"; rc=$?
[ $rc = 137 ] && ok "killed process gives 137" || bad "killed exit code $rc"
finish

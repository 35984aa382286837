#!/bin/sh
# The runc-compatible lifecycle against the real binary: create (the init
# waits on the exec fifo), state, start, kill, delete, run (foreground exit
# code, --detach), list (table and JSON), --pid-file, signal names. One
# behaviour per case (see lib.sh).
. "$(dirname "$0")/lib.sh"

# sleeper: bundle b2 (sleep 100), made by the cases that need it.
sleeper() { make_bundle "$TMP/b2" "" /bin/sleep 100; id=$RUN_ID-a; }
# created / running: a container of b2 in that state, or the case fails.
created() { sleeper; b create --bundle "$TMP/b2" --pid-file "$TMP/pid" "$id" || { bad "create"; exit 1; }; }
running() { created; b start "$id" || { bad "start"; exit 1; }; }

t_run_exit_code() {
    id=$RUN_ID-a
    make_bundle "$TMP/b1" "" /bin/sh -c 'echo hello; exit 3'
    out=$(b run --bundle "$TMP/b1" "$id" 2>&1); rc=$?
    [ $rc = 3 ] && ok "run returns the exit code" || bad "run exit code $rc ($out)"
    echo "$out" | grep -q hello && ok "run output" || bad "run output: $out"
    [ -d "$ROOT/$id" ] && bad "run left its state behind" || ok "run deleted the container"
}

t_create_state_created() {
    created
    st=$(b state "$id")
    echo "$st" | grep -q '"status": "created"' && ok "state: created" || bad "state after create: $st"
    pid=$(cat "$TMP/pid")
    [ -n "$pid" ] && [ -d /proc/$pid ] && ok "pid file names the init" || bad "pid file: $pid"
    echo "$st" | grep -q "\"pid\": $pid" && ok "state pid" || bad "state pid"
}

t_create_duplicate_id_refused() {
    created
    b create --bundle "$TMP/b2" "$id" 2>"$TMP/err"; rc=$?
    [ $rc != 0 ] && grep -q "already exists" "$TMP/err" && ok "duplicate id refused" || bad "duplicate id: $rc $(cat $TMP/err)"
}

t_start_execs_the_process() {
    running
    pid=$(cat "$TMP/pid")
    b state "$id" | grep -q '"status": "running"' && ok "state: running" || bad "state after start"
    # `start` returns once the init is past the exec fifo; its exec follows.
    wait_for 10 sh -c "tr '\\0' ' ' </proc/$pid/cmdline | grep -q 'sleep 100'" && ok "the init became the process" \
        || bad "cmdline: $(tr '\0' ' ' </proc/$pid/cmdline)"
}

t_start_twice_refused() {
    running
    b start "$id" 2>/dev/null && bad "start twice succeeded" || ok "start twice refused"
}

t_list_table_and_json() {
    running
    b list | grep -q "^$id .*running" && ok "list table" || bad "list: $(b list)"
    b list --format json | $PY -c 'import json,sys; l=json.load(sys.stdin); assert l[0]["status"]=="running"' && ok "list json" || bad "list json"
}

t_delete_running_needs_force() {
    running
    b delete "$id" 2>/dev/null && bad "delete of a running container without --force" || ok "delete needs --force"
}

# The init of a pid namespace ignores signals it has no handler for, KILL aside.
t_kill_stops() {
    running
    b kill "$id" KILL || bad "kill KILL"
    wait_for 5 status_is "$id" stopped && ok "KILL stopped sleep" || bad "state after kill: $(b state $id)"
    b kill "$id" KILL 2>/dev/null && bad "kill of a stopped container succeeded" || ok "kill stopped refused"
}

t_delete_stopped_removes_state_and_cgroups() {
    running
    b kill "$id" KILL && wait_for 5 status_is "$id" stopped || bad "kill KILL"
    b delete "$id" || bad "delete stopped"
    [ -d "$ROOT/$id" ] && bad "state left" || ok "delete removed state"
    ls -d /sys/fs/cgroup/*/berth/"$id" 2>/dev/null && bad "cgroup left" || ok "delete removed cgroups"
}

t_run_detach() {
    sleeper
    b run -d --bundle "$TMP/b2" "$id" || bad "run -d"
    b state "$id" | grep -q running && ok "run -d: running" || bad "run -d state"
    b kill "$id" SIGKILL && wait_for 5 status_is "$id" stopped && ok "kill SIGKILL" || bad "kill SIGKILL"
}

t_delete_force() {
    sleeper
    b run -d --bundle "$TMP/b2" "$id" || bad "run -d"
    b delete --force "$id" && ok "delete --force of a running container" || bad "delete --force"
    [ -d "$ROOT/$id" ] && bad "state left after delete -f"
    b delete --force "$id" && ok "delete --force of a missing container" || bad "delete -f missing"
}

t_delete_missing_fails() {
    b delete "$RUN_ID-none" 2>/dev/null && bad "delete missing succeeded" || ok "delete missing fails"
}

t_kill_bad_signal_refused() {
    running
    b kill "$id" NOSUCH 2>/dev/null && bad "bad signal accepted" || ok "bad signal refused"
    status_is "$id" running && ok "still running" || bad "state after a bad signal: $(b state "$id")"
}

# kill --all signals every process of the cgroup.
procs_are() { [ "$(wc -l </sys/fs/cgroup/pids/berth/"$id"/cgroup.procs)" = "$1" ]; }
t_kill_all() {
    id=$RUN_ID-a
    make_bundle "$TMP/b3" "" /bin/sh -c 'sleep 100 & sleep 100 & wait'
    b run -d --bundle "$TMP/b3" "$id" || bad "run -d b3"
    wait_for 5 procs_are 3 && ok "three processes in the cgroup" || bad "cgroup.procs has $(wc -l </sys/fs/cgroup/pids/berth/"$id"/cgroup.procs)"
    b kill --all "$id" TERM || bad "kill --all"
    wait_for 5 procs_are 0 && ok "kill --all TERM reached every process" || bad "after kill --all: $(cat /sys/fs/cgroup/pids/berth/"$id"/cgroup.procs)"
    wait_for 5 status_is "$id" stopped && ok "kill --all: stopped" || bad "kill --all state"
}

# Created but never started: delete without --force works (as runc).
t_delete_created() {
    created
    b delete "$id" && [ ! -d "$ROOT/$id" ] && ok "delete a created container" || bad "delete created"
}

# Foreground run is killed by a signal: 128+9.
t_run_killed_gives_137() {
    id=$RUN_ID-a
    make_bundle "$TMP/b4" 'c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]' /bin/sh -c 'kill -9 $$'
    b run --bundle "$TMP/b4" "$id"; rc=$?
    [ $rc = 137 ] && ok "killed process gives 137" || bad "killed exit code $rc"
}

run_cases

#!/bin/sh
# CVE-2019-5736 against the init of `create`: the init runs berth's code
# from its clone until its final exec, and waits for `start` meanwhile. A
# container holding CAP_SYS_PTRACE in the pid namespace it joins (as a
# pod's containers share one) sees that init and scans its /proc/<pid>/exe
# (exe_scanner.c, as in exe_protect_test.sh): it must not get a writable
# path to the host's berth binary, whether berth protected itself in place
# (its read-only view adopted as its executable, no exec) or by
# re-executing from that view (forced with the test hook pr_set_mm_map).
# The tests run a copy of berth, so a failure corrupts only the copy.
. "$(dirname "$0")/lib.sh"

# holds_exe_of SCANNER_PID PID: the scanner holds an fd of PID's executable.
holds_exe_of() {
    _exe=$(stat -L -c '%d %i' "/proc/$2/exe" 2>/dev/null) || return 1
    for _f in /proc/"$1"/fd/*; do
        [ "$(stat -L -c '%d %i' "$_f" 2>/dev/null)" = "$_exe" ] && return 0
    done
    return 1
}

# shared_pid_attack DISABLED_SYSCALLS: the scanner runs with CAP_SYS_PTRACE;
# a container joining its pid namespace is created (its init waits for
# start); once the scanner holds the init's executable, `start` lets the
# init exec and the scanner tries to write through what it holds.
shared_pid_attack() {
    scanner_setup xc
    make_bundle "$TMP/pt" "c['process']['capabilities'] = {k: sorted(set(v + ['CAP_SYS_PTRACE'])) for k, v in c['process']['capabilities'].items()}; c['mounts'].append({'destination': '/out', 'type': 'bind', 'source': '$TMP/out', 'options': ['rbind', 'rw']}); c['process']['noNewPrivileges'] = False" \
        /out/exe_scanner $devino 25 /out/result
    b run -d --bundle "$TMP/pt" "$id" || { bad "run the CAP_SYS_PTRACE scanner"; return; }
    spid=$(state_field "$id" pid)
    make_bundle "$TMP/joiner" "c['linux']['namespaces'] = [{'type': 'pid', 'path': '/proc/$spid/ns/pid'} if n['type'] == 'pid' else n for n in c['linux']['namespaces']]" /bin/true
    BERTH_DISABLE_SYSCALLS=$1 b create --bundle "$TMP/joiner" "$id-j" || { bad "create in the scanner's pid namespace"; return; }
    ipid=$(state_field "$id-j" pid)
    wait_for 20 holds_exe_of "$spid" "$ipid" || bad "the scanner never held the waiting init's executable"
    b start "$id-j" || bad "start the joined container"
    wait_for 30 test -s "$TMP/out/result"
    res=$(cat "$TMP/out/result" 2>/dev/null)
    case $res in
        "captured 0 "*|"") bad "the scanner never saw the init ($res)" ;;
        *" writable 0") ok "the waiting init's executable: $res" ;;
        *) bad "the host binary was writable from the container through the waiting init: $res" ;;
    esac
    [ "$(sha256sum "$BERTH" | cut -d' ' -f1)" = "$sum" ] && ok "host binary unchanged" || bad "host binary changed"
}

t_create_init_out_of_reach_in_place() {
    shared_pid_attack ""
}

t_create_init_out_of_reach_reexec() {
    "$BERTH" version --json | grep -q '"test-hooks"' || skip "berth was built without test hooks (-Dtest_hooks=true)"
    shared_pid_attack pr_set_mm_map
}

# Where the kernel allows it (CAP_SYS_ADMIN, PR_SET_MM_MAP), berth protects
# itself without an exec: the cheap way is the one taken.
t_protected_in_place_without_reexec() {
    make_bundle "$TMP/t" "" /bin/true
    cp "$BERTH" "$TMP/berth"
    out=$("$TMP/berth" --debug --root "$ROOT" run --bundle "$TMP/t" "$RUN_ID-ip" 2>&1)
    case $out in
        *"protected in place"*) ok "protected in place" ;;
        *"protected by re-executing"*) skip "this kernel refused PR_SET_MM_MAP: $(echo "$out" | grep -m1 protected)" ;;
        *) bad "no protection logged: $out" ;;
    esac
}

run_cases

#!/bin/sh
# config.json sections, each checked from inside the container: process
# (args, env, cwd, user, umask, rlimits, noNewPrivileges, oomScoreAdj,
# capabilities), hostname/domainname, mounts (bind ro, tmpfs, rro),
# root.readonly, maskedPaths, readonlyPaths, sysctl, linux.devices, the
# default /dev, namespaces (user with mappings, cgroup, time offsets, joining
# by path), cgroups (/sys/fs/cgroup view, memory/pids limits), --no-pivot,
# annotations in the state, hooks, --preserve-fds, seccomp. One behaviour per
# case (lib.sh); what the runtime set up is read by berth-check (the static
# checker in the rootfs) where busybox would only grep /proc.
. "$(dirname "$0")/lib.sh"

# check EDIT SCRIPT [BERTH-RUN-OPTIONS...]: runs SCRIPT with sh in a bundle
# edited by EDIT; the script prints "PASS" when everything it checks holds.
check() {
    id=$RUN_ID-cfg
    edit=$1 script=$2; shift 2
    make_bundle "$TMP/c" "$edit" /bin/sh -c "$script"
    out=$(b run --bundle "$TMP/c" "$@" "$id" 2>&1); rc=$?
    if [ $rc = 0 ] && echo "$out" | grep -q PASS; then ok "$CASE"; else bad "$CASE (rc $rc): $out"; fi
    b delete -f "$id" 2>/dev/null
    rm -rf "$TMP/c"
}
# sees EDIT LINE...: berth-check's lines in a bundle edited by EDIT include
# a match of every LINE (a basic regular expression matching a whole line).
# berth-check runs its fixed checks and those of $CHECK_ARGS.
sees() {
    need_checker
    edit=$1; shift
    id=$RUN_ID-cfg
    make_bundle "$TMP/c" "$edit" /bin/berth-check caps nnp seccomp ids umask oom fds cgroup $CHECK_ARGS
    out=$(b run --bundle "$TMP/c" "$id" 2>&1); rc=$?
    [ $rc = 0 ] || bad "berth-check exited $rc: $out"
    for l in "$@"; do
        echo "$out" | grep -qx -- "$l" && ok "$l" || bad "want '$l' in: $(echo "$out" | tr '\n' '|')"
    done
    b delete -f "$id" 2>/dev/null
    rm -rf "$TMP/c"
}
CHECK_ARGS=

t_args_env_cwd() {
    check 'c["process"]["env"].append("FOO=bar baz"); c["process"]["cwd"] = "/tmp"' \
        '[ "$FOO" = "bar baz" ] && [ "$(pwd)" = /tmp ] && [ "$0" = /bin/sh ] && echo PASS'
}
t_cwd_is_created() { private_rootfs; check 'c["process"]["cwd"] = "/work/dir"' '[ "$(pwd)" = /work/dir ] && echo PASS'; }
t_hostname_and_domainname() {
    check 'c["hostname"] = "box1"; c["domainname"] = "example.org"' \
        '[ "$(hostname)" = box1 ] && [ "$(cat /proc/sys/kernel/domainname)" = example.org ] && echo PASS'
}
t_user_uid_gid_additional_gids() {
    sees 'c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}' \
        "uid 1000 1000 1000" "gid 1001 1001 1001" "groups 5,7"
}
t_umask() { sees 'c["process"]["user"]["umask"] = 63' "umask 0077"; }
t_default_umask_022() { sees '' "umask 0022"; }
t_rlimits() {
    CHECK_ARGS="rlimit nofile"
    sees 'c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]' "nofile 123 456"
}
t_no_new_privileges() { sees '' "no_new_privs 1"; }
t_no_new_privileges_off() { sees 'c["process"]["noNewPrivileges"] = False' "no_new_privs 0"; }
t_oom_score_adj() { sees 'c["process"]["oomScoreAdj"] = 123' "oom_score_adj 123"; }
t_capabilities() {
    sees '' "effective CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE" "permitted CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE" \
        "bounding CAP_KILL,CAP_NET_BIND_SERVICE,CAP_AUDIT_WRITE" "inheritable -" "ambient -"
}
t_only_stdio_fds() { sees '' "fds 0 1 2"; }
t_root_readonly() {
    CHECK_ARGS="mount /"
    sees '' "mount / .* ro.*"
    check '' 'touch /x 2>/dev/null || echo PASS'
}
t_root_writable() { private_rootfs; check 'c["root"]["readonly"] = False' 'touch /tmp/.berth-rw && rm /tmp/.berth-rw && echo PASS'; }
t_bind_ro_and_tmpfs() {
    private_rootfs
    mkdir -p "$TMP/src/sub"; echo data >"$TMP/src/file"
    edit="c['mounts'] += [{'destination': '/data', 'type': 'bind', 'source': '$TMP/src', 'options': ['rbind', 'ro', 'nosuid']}, {'destination': '/scratch', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['size=1m', 'noexec']}]"
    CHECK_ARGS="mount /data mount /scratch"
    sees "$edit" "mount /data .* ro,nosuid.*" "mount /scratch tmpfs rw.*,noexec"
    check "$edit" '[ "$(cat /data/file)" = data ] && ! touch /data/x 2>/dev/null && touch /scratch/y && echo PASS'
}
t_bind_of_a_file() {
    private_rootfs
    mkdir -p "$TMP/src"; echo data >"$TMP/src/file"
    check "c['mounts'] += [{'destination': '/etc/hostfile', 'type': 'bind', 'source': '$TMP/src/file', 'options': ['bind', 'ro']}]" \
        '[ "$(cat /etc/hostfile)" = data ] && echo PASS'
}
# rro: submounts read-only too (with mount_setattr and, when the kernel or
# BERTH_DISABLE_SYSCALLS lacks it, by remounting each one).
rro() {
    mkdir -p "$TMP/src/sub"; echo data >"$TMP/src/file"
    mount -t tmpfs tmpfs "$TMP/src/sub" || bad "mount a tmpfs on the source's sub dir"
    case_cleanup="umount '$TMP/src/sub'"
    check "c['mounts'] += [{'destination': '/data', 'type': 'bind', 'source': '$TMP/src', 'options': ['rbind', 'rro']}]" \
        '! touch /data/sub/x 2>/dev/null && ! touch /data/x 2>/dev/null && echo PASS'
}
t_rro_submounts_read_only() { private_rootfs; rro; }
t_rro_without_mount_setattr() {
    private_rootfs
    # A test hook: compiled into test builds only (-Dtest_hooks=true).
    "$BERTH" version --json | grep -q '"test-hooks"' || skip "berth was built without test hooks"
    export BERTH_DISABLE_SYSCALLS=mount_setattr
    rro
}
t_masked_and_readonly_paths() {
    CHECK_ARGS="mount /proc/sys"
    sees '' "mount /proc/sys proc ro.*"
    check '' '[ -z "$(cat /proc/kcore 2>/dev/null)" ] && [ -z "$(ls /sys/firmware)" ] && ! echo 1 >/proc/sys/kernel/domainname 2>/dev/null && echo PASS'
}
t_sysctl_namespaced() {
    check 'c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}' \
        '[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] && [ "$(cat /proc/sys/kernel/shmmni)" = 1234 ] && echo PASS'
}
t_sysctl_not_namespaced_refused() {
    id=$RUN_ID-cfg
    make_bundle "$TMP/c" 'c["linux"]["sysctl"] = {"kernel.panic": "1"}' /bin/true
    b create --bundle "$TMP/c" "$id" 2>"$TMP/err" && bad "non-namespaced sysctl accepted" \
        || { grep -q "kernel.panic" "$TMP/err" && ok "non-namespaced sysctl refused" || bad "message: $(cat "$TMP/err")"; }
}
t_devices_and_default_dev() {
    check 'c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]' \
        '[ -c /dev/fuse ] && [ -c /dev/null ] && [ -c /dev/urandom ] && [ -L /dev/ptmx ] && [ -L /dev/fd ] && [ -L /dev/stdin ] && [ -d /dev/shm ] && echo x >/dev/null && head -c1 /dev/zero | wc -c | grep -q 1 && echo PASS'
}
t_sys_fs_cgroup_shows_the_container_cgroup() {
    check '' '[ -d /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && [ ! -d /sys/fs/cgroup/memory/berth ] && echo PASS'
}
t_memory_and_pids_limits() {
    check 'c["linux"]["resources"]["memory"] = {"limit": 33554432}; c["linux"]["resources"]["pids"] = {"limit": 20}' \
        '[ "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)" = 33554432 ] && [ "$(cat /sys/fs/cgroup/pids/pids.max)" = 20 ] && echo PASS'
}
t_cgroups_path() {
    case_cleanup="rmdir /sys/fs/cgroup/*/berth-test 2>/dev/null"
    sees 'c["linux"]["cgroupsPath"] = "/berth-test/'$RUN_ID'-p"' "[0-9]*:memory:/berth-test/$RUN_ID-p"
}
t_user_namespace_with_mappings() {
    private_rootfs
    check 'c["linux"]["namespaces"].append({"type": "user"}); c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]; c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]; c["root"]["readonly"] = False; c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]' \
        'grep -q "0 *100000 *65536" /proc/self/uid_map && [ "$(id -u)" = 0 ] && echo PASS'
}
t_cgroup_namespace() { sees 'c["linux"]["namespaces"].append({"type": "cgroup"})' "0::/" "[0-9]*:memory:/"; }
t_time_namespace_offsets() {
    [ -e /proc/self/ns/time ] || skip "the kernel has no time namespaces"
    check 'c["linux"]["namespaces"].append({"type": "time"}); c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400000, "nanosecs": 0}}' \
        'up=$(cut -d. -f1 /proc/uptime); [ "$up" -gt 86400000 ] && echo PASS'
}
t_no_pivot() { check '' '[ -x /bin/busybox ] && [ ! -e /bin/berth-not-here ] && grep -q " / " /proc/mounts && echo PASS' --no-pivot; }
t_rootfs_propagation_private() { check 'c["linux"]["rootfsPropagation"] = "rprivate"' 'echo PASS'; }
t_rootfs_propagation_shared() {
    check 'c["linux"]["rootfsPropagation"] = "rshared"' 'awk "\$5 == \"/\"" /proc/self/mountinfo | grep -q "shared:" && echo PASS'
}
# Joining namespaces by path: those of a running container.
holder() {
    make_bundle "$TMP/n" "" /bin/sleep 100
    b run -d --bundle "$TMP/n" "$RUN_ID-n" || { bad "run the namespace holder"; exit 1; }
    npid=$(state_field "$RUN_ID-n" pid)
}
t_join_network_namespace_by_path() {
    holder
    check 'c["linux"]["namespaces"] = [n if n["type"] != "network" else {"type": "network", "path": "/proc/'$npid'/ns/net"} for n in c["linux"]["namespaces"]]' \
        '[ "$(readlink /proc/self/ns/net)" = "'"$(readlink /proc/$npid/ns/net)"'" ] && echo PASS'
}
t_join_pid_ipc_uts_namespaces_by_path() {
    holder
    check 'c["linux"]["namespaces"] = [{"type": "mount"}] + [{"type": t, "path": "/proc/'$npid'/ns/" + p} for t, p in (("pid", "pid"), ("ipc", "ipc"), ("uts", "uts"))]; c.pop("hostname")' \
        'ps | grep -q "sleep 100" && [ "$(hostname)" = berth-test ] && [ "$(readlink /proc/self/ns/ipc)" = "'"$(readlink /proc/$npid/ns/ipc)"'" ] && echo PASS'
}
t_personality_linux32() {
    [ "$(uname -m)" = x86_64 ] || skip "LINUX32 is checked on x86_64 hosts"
    check 'c["linux"]["personality"] = {"domain": "LINUX32"}' '[ "$(uname -m)" = i686 ] && echo PASS'
}
t_annotations_in_state() {
    id=$RUN_ID-cfg
    make_bundle "$TMP/a" 'c["annotations"] = {"org.example.key": "value"}' /bin/sleep 100
    b create --bundle "$TMP/a" "$id" && b state "$id" | grep -q '"org.example.key": "value"' && ok "annotations in state" || bad "annotations"
}
# Hooks: createRuntime (runtime namespace), poststart, poststop get the state.
t_hooks_get_the_state() {
    id=$RUN_ID-cfg
    cat >"$TMP/hook.sh" <<HOOK
#!/bin/sh
cat >"$TMP/hook-\$1.json"
HOOK
    chmod +x "$TMP/hook.sh"
    make_bundle "$TMP/h" "c['hooks'] = {'createRuntime': [{'path': '$TMP/hook.sh', 'args': ['hook', 'createRuntime']}], 'poststart': [{'path': '$TMP/hook.sh', 'args': ['hook', 'poststart']}], 'poststop': [{'path': '$TMP/hook.sh', 'args': ['hook', 'poststop']}]}" /bin/true
    b run --bundle "$TMP/h" "$id" >/dev/null 2>&1
    for k in createRuntime poststart poststop; do
        grep -q "\"id\":\"$id\"" "$TMP/hook-$k.json" 2>/dev/null && ok "hook $k got the state" || bad "hook $k"
    done
}
# --preserve-fds: fd 3 reaches the container, fd 4 does not.
t_preserve_fds() {
    id=$RUN_ID-cfg
    make_bundle "$TMP/p" "" /bin/sh -c 'cat <&3; [ -e /proc/self/fd/4 ] && echo LEAK; true'
    echo preserved >"$TMP/fd3"
    out=$(b run --preserve-fds 1 --bundle "$TMP/p" "$id" 3<"$TMP/fd3" 4<"$TMP/fd3" 2>&1)
    [ "$out" = preserved ] && ok "--preserve-fds" || bad "--preserve-fds: $out"
}
# seccomp: mkdir fails with EPERM (errnoRet 1), and the filter is in place.
t_seccomp() {
    edit='c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}'
    sees "$edit" "seccomp 2"
    check "$edit" '! mkdir /tmp/x 2>/dev/null && echo PASS'
}
# No filter is added without a profile: the container has the seccomp mode
# of the test itself (2 under the ENOSYS filter of the old-kernel runs).
t_no_seccomp_without_a_profile() { sees '' "seccomp $(awk '/^Seccomp:/ {print $2}' /proc/$$/status)"; }
# A profile that kills on execveat must not kill the container's start
# (berth-dmz is exec'd with execve through /proc/self/fd).
t_seccomp_killing_execveat() {
    check 'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_KILL"}]}' 'echo PASS'
}

run_cases

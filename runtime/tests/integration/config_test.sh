#!/bin/sh
# config.json sections, each checked from inside the container: process
# (args, env, cwd, user, umask, rlimits, noNewPrivileges, oomScoreAdj,
# capabilities), hostname/domainname, mounts (bind ro, tmpfs, rro),
# root.readonly, maskedPaths, readonlyPaths, sysctl, linux.devices, the
# default /dev, namespaces (user with mappings, cgroup, time offsets, joining
# by path), cgroups (/sys/fs/cgroup view, memory/pids limits), --no-pivot,
# annotations in the state, hooks, --preserve-fds, seccomp.
. "$(dirname "$0")/lib.sh"

id=$RUN_ID-cfg
# check NAME EDIT SCRIPT: runs SCRIPT with sh in a bundle edited by EDIT;
# the script prints "PASS" when everything it checks holds.
check() {
    name=$1 edit=$2 script=$3; shift 3
    make_bundle "$TMP/c" "$edit" /bin/sh -c "$script"
    out=$(b run --bundle "$TMP/c" "$@" "$id" 2>&1); rc=$?
    if [ $rc = 0 ] && echo "$out" | grep -q PASS; then ok "$name"; else bad "$name (rc $rc): $out"; fi
    b delete -f "$id" 2>/dev/null
    rm -rf "$TMP/c"
}

check "args, env, cwd" 'c["process"]["env"].append("FOO=bar baz"); c["process"]["cwd"] = "/tmp"' \
    '[ "$FOO" = "bar baz" ] && [ "$(pwd)" = /tmp ] && [ "$0" = /bin/sh ] && echo PASS'
check "cwd is created" 'c["process"]["cwd"] = "/work/dir"' '[ "$(pwd)" = /work/dir ] && echo PASS'
check "hostname and domainname" 'c["hostname"] = "box1"; c["domainname"] = "example.org"' \
    '[ "$(hostname)" = box1 ] && [ "$(cat /proc/sys/kernel/domainname)" = example.org ] && echo PASS'
check "user uid/gid/additionalGids" 'c["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 7]}' \
    '[ "$(id -u)" = 1000 ] && [ "$(id -g)" = 1001 ] && id -G | grep -q "5" && id -G | grep -q "7" && echo PASS'
check "umask" 'c["process"]["user"]["umask"] = 63' '[ "$(umask)" = 0077 ] && echo PASS'
check "default umask 022" '' '[ "$(umask)" = 0022 ] && echo PASS'
check "rlimits" 'c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456}]' \
    '[ "$(ulimit -n)" = 123 ] && [ "$(ulimit -Hn)" = 456 ] && echo PASS'
check "noNewPrivileges" '' 'grep -q "NoNewPrivs:.*1" /proc/self/status && echo PASS'
check "noNewPrivileges off" 'c["process"]["noNewPrivileges"] = False' 'grep -q "NoNewPrivs:.*0" /proc/self/status && echo PASS'
check "oomScoreAdj" 'c["process"]["oomScoreAdj"] = 123' '[ "$(cat /proc/self/oom_score_adj)" = 123 ] && echo PASS'
check "capabilities" '' 'grep -q "CapEff:.*0000000020000420" /proc/self/status && grep -q "CapInh:.*0000000000000000" /proc/self/status && echo PASS'
check "root.readonly" '' 'touch /x 2>/dev/null || echo PASS'
check "root writable" 'c["root"]["readonly"] = False' 'touch /tmp/.berth-rw && rm /tmp/.berth-rw && echo PASS'
mkdir -p "$TMP/src/sub"; echo data >"$TMP/src/file"
check "bind ro + tmpfs" "c['mounts'] += [{'destination': '/data', 'type': 'bind', 'source': '$TMP/src', 'options': ['rbind', 'ro', 'nosuid']}, {'destination': '/scratch', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['size=1m', 'noexec']}]" \
    '[ "$(cat /data/file)" = data ] && ! touch /data/x 2>/dev/null && touch /scratch/y && grep -q " /scratch tmpfs .*noexec" /proc/mounts && grep " /data " /proc/mounts | grep -q "ro,nosuid" && echo PASS'
check "bind of a file" "c['mounts'] += [{'destination': '/etc/hostfile', 'type': 'bind', 'source': '$TMP/src/file', 'options': ['bind', 'ro']}]" \
    '[ "$(cat /etc/hostfile)" = data ] && echo PASS'
mount -t tmpfs tmpfs "$TMP/src/sub"
check "rro: submounts read-only too" "c['mounts'] += [{'destination': '/data', 'type': 'bind', 'source': '$TMP/src', 'options': ['rbind', 'rro']}]" \
    '! touch /data/sub/x 2>/dev/null && ! touch /data/x 2>/dev/null && echo PASS'
BERTH_DISABLE_SYSCALLS=mount_setattr check "rro without mount_setattr" "c['mounts'] += [{'destination': '/data', 'type': 'bind', 'source': '$TMP/src', 'options': ['rbind', 'rro']}]" \
    '! touch /data/sub/x 2>/dev/null && ! touch /data/x 2>/dev/null && echo PASS'
umount "$TMP/src/sub"
check "maskedPaths and readonlyPaths" '' \
    '[ -z "$(cat /proc/kcore 2>/dev/null)" ] && [ -z "$(ls /sys/firmware)" ] && ! echo 1 >/proc/sys/kernel/domainname 2>/dev/null && grep -q " /proc/sys proc ro" /proc/mounts && echo PASS'
check "sysctl (namespaced)" 'c["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}' \
    '[ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] && [ "$(cat /proc/sys/kernel/shmmni)" = 1234 ] && echo PASS'
host_fwd=$(cat /proc/sys/net/ipv4/ip_forward)
make_bundle "$TMP/c" 'c["linux"]["sysctl"] = {"kernel.panic": "1"}' /bin/true
b create --bundle "$TMP/c" "$id" 2>"$TMP/err" && bad "non-namespaced sysctl accepted" || { grep -q "kernel.panic" "$TMP/err" && ok "non-namespaced sysctl refused"; }
rm -rf "$TMP/c"
check "linux.devices and default /dev" 'c["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438}]' \
    '[ -c /dev/fuse ] && [ -c /dev/null ] && [ -c /dev/urandom ] && [ -L /dev/ptmx ] && [ -L /dev/fd ] && [ -L /dev/stdin ] && [ -d /dev/shm ] && echo x >/dev/null && head -c1 /dev/zero | wc -c | grep -q 1 && echo PASS'
check "/sys/fs/cgroup shows the container cgroup" '' \
    '[ -d /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && [ ! -d /sys/fs/cgroup/memory/berth ] && echo PASS'
check "memory and pids limits" 'c["linux"]["resources"]["memory"] = {"limit": 33554432}; c["linux"]["resources"]["pids"] = {"limit": 20}' \
    '[ "$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)" = 33554432 ] && [ "$(cat /sys/fs/cgroup/pids/pids.max)" = 20 ] && echo PASS'
check "cgroupsPath" 'c["linux"]["cgroupsPath"] = "/berth-test/'$id'-p"' \
    'grep -q ":memory:/berth-test/'$id'-p" /proc/self/cgroup && echo PASS'
rmdir /sys/fs/cgroup/*/berth-test 2>/dev/null
check "user namespace with mappings" 'c["linux"]["namespaces"].append({"type": "user"}); c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]; c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]; c["root"]["readonly"] = False; c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]' \
    'grep -q "0 *100000 *65536" /proc/self/uid_map && [ "$(id -u)" = 0 ] && echo PASS'
check "cgroup namespace" 'c["linux"]["namespaces"].append({"type": "cgroup"})' \
    'grep -q "^0::/$" /proc/self/cgroup && grep -q ":memory:/$" /proc/self/cgroup && echo PASS'
if [ -e /proc/self/ns/time ]; then
check "time namespace offsets" 'c["linux"]["namespaces"].append({"type": "time"}); c["linux"]["timeOffsets"] = {"boottime": {"secs": 86400000, "nanosecs": 0}}' \
    'up=$(cut -d. -f1 /proc/uptime); [ "$up" -gt 86400000 ] && echo PASS'
fi
check "--no-pivot" '' '[ -x /bin/busybox ] && [ ! -e /bin/berth-not-here ] && grep -q " / " /proc/mounts && echo PASS' --no-pivot
check "rootfsPropagation private" 'c["linux"]["rootfsPropagation"] = "rprivate"' 'echo PASS'
# Joining namespaces by path: the net namespace of a running container.
make_bundle "$TMP/n" 'c["process"]["args"] = ["/bin/sleep", "100"]' /bin/sleep 100
b run -d --bundle "$TMP/n" "$id-n" || bad "run the namespace holder"
npid=$(b state "$id-n" | $PY -c 'import json,sys; print(json.load(sys.stdin)["pid"])')
check "join a network namespace by path" 'c["linux"]["namespaces"] = [n if n["type"] != "network" else {"type": "network", "path": "/proc/'$npid'/ns/net"} for n in c["linux"]["namespaces"]]' \
    '[ "$(readlink /proc/self/ns/net)" = "'"$(readlink /proc/$npid/ns/net)"'" ] && echo PASS'
check "join pid, ipc and uts namespaces by path" 'c["linux"]["namespaces"] = [{"type": "mount"}] + [{"type": t, "path": "/proc/'$npid'/ns/" + p} for t, p in (("pid", "pid"), ("ipc", "ipc"), ("uts", "uts"))]; c.pop("hostname")' \
    'ps | grep -q "sleep 100" && [ "$(hostname)" = berth-test ] && [ "$(readlink /proc/self/ns/ipc)" = "'"$(readlink /proc/$npid/ns/ipc)"'" ] && echo PASS'
b delete -f "$id-n"
if [ "$(uname -m)" = x86_64 ]; then
check "personality LINUX32" 'c["linux"]["personality"] = {"domain": "LINUX32"}' '[ "$(uname -m)" = i686 ] && echo PASS'
fi
check "rootfsPropagation shared" 'c["linux"]["rootfsPropagation"] = "rshared"' 'awk "\$5 == \"/\"" /proc/self/mountinfo | grep -q "shared:" && echo PASS'
# Annotations reach the state.
make_bundle "$TMP/a" 'c["annotations"] = {"org.example.key": "value"}' /bin/sleep 100
b create --bundle "$TMP/a" "$id" && b state "$id" | grep -q '"org.example.key": "value"' && ok "annotations in state" || bad "annotations"
b delete -f "$id"
# Hooks: createRuntime (runtime namespace), startContainer (container), poststop.
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
# --preserve-fds: fd 3 reaches the container, fd 4 does not.
make_bundle "$TMP/p" "" /bin/sh -c 'cat <&3; [ -e /proc/self/fd/4 ] && echo LEAK; true'
echo preserved >"$TMP/fd3"
out=$(b run --preserve-fds 1 --bundle "$TMP/p" "$id" 3<"$TMP/fd3" 4<"$TMP/fd3" 2>&1)
[ "$out" = preserved ] && ok "--preserve-fds" || bad "--preserve-fds: $out"
# seccomp: mkdir fails with EPERM (errnoRet 1).
check "seccomp" 'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}' \
    '! mkdir /tmp/x 2>/dev/null && echo PASS'
# A profile that kills on execveat must not kill the container's start
# (berth-dmz is exec'd with execve through /proc/self/fd).
check "seccomp killing execveat" 'c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_KILL"}]}' \
    'echo PASS'
finish
